"""``stages.json``: which stages of a ``run_stages`` call are done, read back and validated
before anything is written, and committed atomically after every change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from torchkit.checkpoint.storage import write_text_atomically
from torchkit.utils.fs import join_url, url_to_fs

MANIFEST_NAME = "stages.json"
FORMAT_VERSION = 1
STATUSES = ("pending", "running", "done")


def manifest_url(dirpath: str) -> str:
    return join_url(dirpath, MANIFEST_NAME)


def new_entry(name: str) -> dict[str, Any]:
    return {"name": name, "status": "pending", "final_checkpoint": None,
            "start_epoch": 0, "start_step": 0}  # fmt: skip


def load_manifest(dirpath: str, names: Sequence[str]) -> dict[str, Any]:
    """The manifest for the stage list ``names``: the saved one (new stages appended to it
    are added as pending) or a fresh one when there is none. Nothing is written.

    Raises:
        ValueError: the file is unreadable, or it records another list of stages (a stage
            renamed, removed or moved); the message names ``stages.json`` and the stage.
    """
    url = manifest_url(dirpath)
    fs, inner = url_to_fs(url)
    if not fs.exists(inner):
        return {"format_version": FORMAT_VERSION, "stages": [new_entry(n) for n in names]}
    try:
        with fs.open(inner, "r") as f:
            manifest = json.loads(f.read())
        recorded = [str(e["name"]) for e in manifest["stages"]]
        if any(e["status"] not in STATUSES for e in manifest["stages"]):
            raise ValueError("an unknown status")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{MANIFEST_NAME} at {url!r} is unreadable ({type(exc).__name__}: {exc}); it was "
            "left unchanged. Restore it, or pass another dirpath to start a new run."
        ) from exc
    for i, rec in enumerate(recorded):
        given = names[i] if i < len(names) else None
        if given != rec:
            what = f"stage {i} is {given!r} in the list" if given else "the list ends before it"
            raise ValueError(
                f"{MANIFEST_NAME} at {url!r} belongs to another list of stages: it records "
                f"stage {i} as {rec!r} but {what} (recorded: {recorded}, given: {list(names)}). "
                "Pass the same stages in the same order (appending new ones is fine), or "
                "another dirpath; the file was left unchanged."
            )
    manifest["stages"] += [new_entry(n) for n in names[len(recorded) :]]
    return dict(manifest)


def write_manifest(dirpath: str, manifest: dict[str, Any]) -> None:
    """Commit ``manifest`` (temporary file, then a move: a reader never sees half of it)."""
    fs, inner = url_to_fs(manifest_url(dirpath))
    parent = inner.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    write_text_atomically(fs, inner, json.dumps(manifest, indent=2, sort_keys=True))
