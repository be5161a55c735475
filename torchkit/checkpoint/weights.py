"""Weights only: load a module from a checkpoint or a plain ``state_dict`` file, and export one."""

from __future__ import annotations

import io
from typing import Any

import torch

from torchkit.checkpoint.app_state import ModuleState, RestoreOptions
from torchkit.checkpoint.dcp_io import read_checkpoint
from torchkit.checkpoint.errors import CheckpointMismatchError, CorruptCheckpointError
from torchkit.checkpoint.naming import COMMIT_MARKER
from torchkit.utils.distributed import get_global_rank
from torchkit.utils.fs import url_to_fs


class _ModuleHolder:
    """The minimum of a unit that ``read_checkpoint`` needs, holding one module."""

    def __init__(self, name: str, module: torch.nn.Module) -> None:
        self._name = name
        self._module = module

    def tracked_modules(self) -> dict[str, torch.nn.Module]:
        return {self._name: self._module}

    def app_state(self) -> dict[str, Any]:
        return self.tracked_modules()

    def tracked_metrics(self) -> dict[str, Any]:
        return {}

    def tracked_optimizers(self) -> dict[str, Any]:
        return {}

    def tracked_lr_schedulers(self) -> dict[str, Any]:
        return {}

    def tracked_progress(self) -> dict[str, Any]:
        return {}


_WEIGHTS_ONLY = RestoreOptions(
    restore_optimizers=False,
    restore_lr_schedulers=False,
    restore_train_progress=False,
    restore_eval_progress=False,
    restore_predict_progress=False,
    restore_rng_state=False,
    restore_dataloader_state=False,
)


def load_module_weights(
    module: torch.nn.Module, path: str, *, module_name: str = "module", strict: bool = True
) -> None:
    """Load only weights into ``module``: from a torchkit checkpoint or a ``state_dict`` file.

    A checkpoint directory holds every tracked module under its unit attribute name; pick it
    with ``module_name``. A plain file is what ``torch.save(module.state_dict(), path)`` or
    ``export_module_weights`` wrote. Works with sharded (FSDP2) modules for checkpoints.

    Args:
        module: the module to load into (in place).
        path: a checkpoint directory or a state-dict file (local path or fsspec URL).
        module_name: the unit attribute the module was saved under (checkpoints only).
        strict: fail on missing or unexpected keys; ``False`` loads what matches.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointMismatchError: (strict) the keys differ; the message lists them.
        CorruptCheckpointError: the file or checkpoint cannot be read.

    Example:
        >>> import torch
        >>> src, dst = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> export_module_weights(src, "memory://doc/weights.pt")
        >>> load_module_weights(dst, "memory://doc/weights.pt")
        >>> bool(torch.equal(src.weight, dst.weight))
        True
    """
    fs, inner = url_to_fs(path)
    if not fs.exists(inner):
        raise FileNotFoundError(
            f"path={path!r} is invalid: it does not exist. Pass a checkpoint directory or a "
            "file written by torch.save(module.state_dict(), path)."
        )
    if fs.isdir(inner) and fs.exists(f"{inner}/{COMMIT_MARKER}"):
        opts = RestoreOptions(**{**_WEIGHTS_ONLY.__dict__, "strict": strict})
        read_checkpoint(path, _ModuleHolder(module_name, module), opts)
        return
    try:
        with fs.open(inner, "rb") as f:
            state_dict = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CorruptCheckpointError(
            f"Weights file {path!r} could not be read: {type(exc).__name__}: {exc}. Pass a "
            "committed checkpoint directory or a state_dict file."
        ) from exc
    if not isinstance(state_dict, dict):
        raise CorruptCheckpointError(
            f"Weights file {path!r} holds a {type(state_dict).__name__}, not a state_dict. "
            "Save it with torch.save(module.state_dict(), path)."
        )
    _load_plain(module, state_dict, path, strict)


def _load_plain(module: torch.nn.Module, sd: dict[str, Any], path: str, strict: bool) -> None:
    expected = set(ModuleState(module).state_dict())
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if strict and (missing or unexpected):
        raise CheckpointMismatchError(
            f"Weights file {path!r} does not match the module: missing keys {missing}, "
            f"unexpected keys {unexpected}. Pass strict=False to load only the matching keys."
        )
    ModuleState(module, strict=False).load_state_dict(
        {k: v for k, v in sd.items() if k in expected}
    )


def export_module_weights(module: torch.nn.Module, path: str) -> None:
    """Write ``module``'s full weights as a plain ``state_dict`` file, for inference.

    Sharded (FSDP/FSDP2) modules are gathered first, so every rank must call this; rank 0
    writes. The file is written under a temporary name and then renamed, so a reader never
    sees a partial file.

    Args:
        module: the module to export.
        path: the file to write (local path or fsspec URL).

    Example:
        >>> import torch
        >>> export_module_weights(torch.nn.Linear(2, 2), "memory://doc/lin.pt")
    """
    state_dict = _full_state_dict(module)
    if get_global_rank() != 0:
        return
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    fs, inner = url_to_fs(path)
    parent = inner.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{inner}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(buf.getvalue())
    fs.mv(tmp, inner)


def _full_state_dict(module: torch.nn.Module) -> dict[str, Any]:
    try:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    except ImportError:  # pragma: no cover - old torch
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return dict(get_model_state_dict(module, options=opts))
