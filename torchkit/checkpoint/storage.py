"""fsspec storage for checkpoints: DCP readers/writers, the commit marker, integrity checks."""

from __future__ import annotations

import json
import logging
from typing import Any

from torchkit.checkpoint.errors import CorruptCheckpointError
from torchkit.checkpoint.naming import COMMIT_MARKER
from torchkit.utils.fs import protocol_of, url_to_fs

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _is_local(fs: Any) -> bool:
    return protocol_of(fs) in ("file", "local")


def make_writer(url: str) -> Any:
    """A DCP storage writer for ``url``: the native one for local paths, fsspec's otherwise."""
    from torch.distributed.checkpoint.filesystem import FileSystemWriter

    fs, inner = url_to_fs(url)
    if _is_local(fs):
        return FileSystemWriter(inner)
    from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

    return FsspecWriter(url)


def make_reader(url: str) -> Any:
    """A DCP storage reader for ``url``."""
    from torch.distributed.checkpoint.filesystem import FileSystemReader

    fs, inner = url_to_fs(url)
    if _is_local(fs):
        return FileSystemReader(inner)
    from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

    return FsspecReader(url)


def _file_sizes(fs: Any, inner: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path, info in fs.find(inner, detail=True).items():
        rel = str(path)[len(inner.rstrip("/")) + 1 :]
        if rel != COMMIT_MARKER:
            sizes[rel] = int(info.get("size") or 0)
    return sizes


def write_commit_marker(url: str, info: dict[str, Any]) -> None:
    """Commit the checkpoint at ``url``: record every file's size, then write the marker last.

    Until this file exists, discovery ignores the directory and ``restore`` refuses it.
    """
    fs, inner = url_to_fs(url)
    manifest = {"format_version": FORMAT_VERSION, "files": _file_sizes(fs, inner), **info}
    write_text_atomically(fs, f"{inner}/{COMMIT_MARKER}", json.dumps(manifest, sort_keys=True))


def write_text_atomically(fs: Any, path: str, text: str) -> None:
    """Write ``text`` to ``path`` on ``fs`` so a reader sees the old file or the whole new one:
    write a temporary file next to it, then move it into place."""
    tmp = f"{path}.tmp"
    with fs.open(tmp, "w") as f:
        f.write(text)
    fs.mv(tmp, path)


def is_committed(url: str) -> bool:
    """True when ``url`` is a committed checkpoint directory."""
    fs, inner = url_to_fs(url)
    return bool(fs.exists(f"{inner}/{COMMIT_MARKER}"))


def read_manifest(url: str) -> dict[str, Any]:
    """The commit marker's content; validates that ``url`` is a committed, complete checkpoint.

    Raises:
        FileNotFoundError: ``url`` does not exist.
        CorruptCheckpointError: no commit marker, an unreadable marker, or a file that is
            missing or has a different size than when it was committed (truncated).
    """
    fs, inner = url_to_fs(url)
    if not fs.exists(inner):
        raise FileNotFoundError(
            f"path={url!r} is invalid: it does not exist. Pass a checkpoint directory such as "
            "the one get_latest_checkpoint_path(dirpath) returns."
        )
    marker = f"{inner}/{COMMIT_MARKER}"
    if not fs.exists(marker):
        raise CorruptCheckpointError(
            f"Checkpoint {url!r} is not committed (no {COMMIT_MARKER} file): its save was "
            "interrupted or is still running. Restore an earlier checkpoint, e.g. the one "
            "get_latest_checkpoint_path(dirpath) returns."
        )
    try:
        with fs.open(marker, "r") as f:
            manifest: dict[str, Any] = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise CorruptCheckpointError(
            f"Checkpoint {url!r} has an unreadable {COMMIT_MARKER} file ({exc}). The checkpoint "
            "is damaged; restore an earlier one."
        ) from exc
    actual = _file_sizes(fs, inner)
    for rel, size in manifest.get("files", {}).items():
        if rel not in actual:
            raise CorruptCheckpointError(
                f"Checkpoint {url!r} is corrupt: file {rel!r} is missing. Restore an earlier "
                "checkpoint."
            )
        if actual[rel] != size:
            raise CorruptCheckpointError(
                f"Checkpoint {url!r} is corrupt: file {rel!r} has {actual[rel]} bytes but "
                f"{size} were committed (truncated or overwritten). Restore an earlier checkpoint."
            )
    return manifest


def remove_checkpoint(url: str) -> None:
    """Delete a checkpoint: the marker first, so a partly deleted directory is never valid."""
    fs, inner = url_to_fs(url)
    marker = f"{inner}/{COMMIT_MARKER}"
    if fs.exists(marker):
        fs.rm(marker)
    if fs.exists(inner):
        fs.rm(inner, recursive=True)


def remove_quietly(url: str) -> None:
    """Best-effort removal of a failed, uncommitted save (the storage may be what failed)."""
    try:
        remove_checkpoint(url)
    except Exception as exc:  # cleanup must not hide the original error
        logger.warning("Could not remove the incomplete checkpoint %s: %s", url, exc)
