"""Run directories: ``config.yaml`` + fingerprint, resume checks, atomic config writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torchkit.cli._errors import CLIError
from torchkit.utils.fs import join_url, url_to_fs

__all__ = ["RunDirPlan", "fingerprint", "plan_run_dir", "semantic_view", "write_config"]

FINGERPRINT_FILE = "fingerprint.json"
CONFIG_FILE = "config.yaml"

# Keys that change how a run is driven, logged or stored, never what it computes: a run
# resumed with other values for them continues the same training.
NON_SEMANTIC_TOP = {
    "config",
    "callbacks",
    "loggers",
    "log_every_n_steps",
    "run_dir",
    "resume",
    "checkpoint",
    "__path__",
}
NON_SEMANTIC_LOADER_ARGS = {
    "num_workers",
    "pin_memory",
    "pin_memory_device",
    "persistent_workers",
    "prefetch_factor",
    "timeout",
}


def semantic_view(config: Mapping[str, Any], limit_keys: Iterable[str]) -> dict[str, Any]:
    """The config's semantic part, flattened to ``{dotted key: value}``.

    Left out: the entry point's keyword arguments (``limit_keys``: limits and evaluation
    schedule), callbacks, loggers, paths, and dataloader worker settings. Kept: the unit
    (model, loss, optimizer, precision...), the data and the seed.
    """
    skip = NON_SEMANTIC_TOP | set(limit_keys)
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key not in skip:
            _flatten(key, value, flat)
    return {k: v for k, v in flat.items() if not _is_worker_setting(k)}


def _is_worker_setting(key: str) -> bool:
    """``train_dataloader.init_args.num_workers`` and the like (the loader's own arguments)."""
    parent, _, name = key.rpartition(".")
    return parent.endswith("dataloader.init_args") and name in NON_SEMANTIC_LOADER_ARGS


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, (list, tuple)) and value and not _is_scalar_list(value):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def _is_scalar_list(value: Any) -> bool:
    return all(isinstance(v, (int, float, str, bool)) or v is None for v in value)


def fingerprint(semantic: Mapping[str, Any]) -> str:
    """sha256 of the semantic view, independent of key order."""
    text = json.dumps(semantic, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunDirPlan:
    """What to do with the run directory, decided before any side effect."""

    run_dir: str
    config_name: str  # config.yaml for a new run, config.<n>.yaml for a resumed one
    resuming: bool
    fingerprint: str
    semantic: dict[str, Any]


def plan_run_dir(run_dir: str, resume: str, semantic: dict[str, Any]) -> RunDirPlan:
    """Read ``run_dir`` and decide: new run, resume, or refuse.

    Raises:
        CLIError: an unreadable fingerprint/config, a non-torchkit non-empty directory, an
            existing run with ``resume: never``, or a config that differs from the run's
            (semantic keys) under ``resume: auto``.
    """
    fs, root = url_to_fs(run_dir)
    digest = fingerprint(semantic)
    entries = fs.ls(root, detail=False) if fs.exists(root) else []
    names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
    if CONFIG_FILE not in names:
        if names:
            raise CLIError(
                "run_dir",
                run_dir,
                f"expected an empty directory or a torchkit run "
                f"directory, found {sorted(names)} but no {CONFIG_FILE}",
                "Pick a new run_dir; nothing was changed",
            )
        return RunDirPlan(run_dir, CONFIG_FILE, False, digest, semantic)
    if resume == "never":
        raise CLIError(
            "resume",
            resume,
            f"expected a fresh run_dir, but {run_dir} holds a run ({CONFIG_FILE})",
            "Pass --resume auto to continue it, or pick a new run_dir; nothing was overwritten",
        )
    saved = _read_fingerprint(fs, join_url(root, FINGERPRINT_FILE), run_dir)
    differing = sorted(
        k for k in set(saved) | set(semantic) if saved.get(k, _MISSING) != semantic.get(k, _MISSING)
    )
    if differing and resume != "force":
        shown = "; ".join(
            f"{k}: {saved.get(k, '<unset>')!r} -> {semantic.get(k, '<unset>')!r}"
            for k in differing[:12]
        )
        raise CLIError(
            "resume",
            resume,
            f"the config differs from the run in {run_dir} in "
            f"{len(differing)} semantic key(s): {shown}",
            "Restore those values, use a new run_dir, or pass --resume force to "
            "continue anyway; nothing was overwritten",
        )
    n = 1
    while f"config.{n}.yaml" in names:
        n += 1
    return RunDirPlan(run_dir, f"config.{n}.yaml", True, digest, semantic)


_MISSING = object()


def _read_fingerprint(fs: Any, path: str, run_dir: str) -> dict[str, Any]:
    try:
        with fs.open(path, "r") as f:
            data = json.load(f)
        semantic = data["semantic"]
        if not isinstance(semantic, dict):
            raise TypeError("semantic is not a mapping")
    except Exception as exc:
        raise CLIError(
            "run_dir",
            run_dir,
            f"expected a readable {FINGERPRINT_FILE} next to "
            f"{CONFIG_FILE} ({type(exc).__name__}: {exc})",
            "Restore the file from the run, or pick a new run_dir; nothing was overwritten",
        ) from None
    return semantic


def write_config(plan: RunDirPlan, text: str) -> None:
    """Write the resolved config (and, for a new run, the fingerprint) atomically.

    Each file is written under a temporary name and renamed; an existing file is never
    replaced (a concurrent writer loses with an error rather than overwriting).
    """
    fs, root = url_to_fs(plan.run_dir)
    fs.makedirs(root, exist_ok=True)
    files = [(plan.config_name, text)]
    if not plan.resuming:
        meta = {"fingerprint": plan.fingerprint, "semantic": plan.semantic}
        files.append((FINGERPRINT_FILE, json.dumps(meta, indent=1, sort_keys=True, default=str)))
    for name, content in files:
        final = join_url(root, name)
        if fs.exists(final):
            raise FileExistsError(f"{final} appeared while this run started; not overwriting it")
        tmp = join_url(root, f".{name}.tmp")
        with fs.open(tmp, "w") as f:
            f.write(content)
        fs.mv(tmp, final)
