"""The tensors a publish copies: plain source tensors, or a full gather of sharded ones."""

from __future__ import annotations

import sys
from typing import Any

import torch

# Segments that wrappers insert into parameter names (activation checkpointing, compile,
# FSDP1); a full state dict leaves them out, so names are compared without them.
_WRAPPER_SEGMENTS = frozenset({"_checkpoint_wrapped_module", "_orig_mod", "_fsdp_wrapped_module"})


def clean_name(name: str) -> str:
    """``name`` without wrapper segments (``a._orig_mod.b`` -> ``a.b``).

    Example:
        >>> clean_name("block._checkpoint_wrapped_module.weight")
        'block.weight'
    """
    return ".".join(p for p in name.split(".") if p not in _WRAPPER_SEGMENTS)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside ``DistributedDataParallel`` / ``DataParallel`` wrappers."""
    while isinstance(
        module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    ) and isinstance(getattr(module, "module", None), torch.nn.Module):
        module = module.module
    return module


def is_sharded(module: torch.nn.Module) -> bool:
    """True when a parameter is a ``DTensor`` (FSDP2's ``fully_shard``)."""
    if "torch.distributed.tensor" not in sys.modules:  # no DTensor can exist yet
        return False
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def state_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter, then every buffer (non-persistent ones included), in module order."""
    return [*module.parameters(), *module.buffers()]


def state_names(module: torch.nn.Module) -> list[str]:
    """The names matching ``state_tensors(module)``, one for one."""
    return [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]


def gather_full_state(module: torch.nn.Module, *, rank0_only: bool) -> dict[str, Any]:
    """A full (unsharded) state dict of a sharded module: a collective every rank must call.

    With ``rank0_only`` the full tensors land on rank 0's CPU and other ranks get none.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=rank0_only)
    return get_model_state_dict(module, options=options)


def sources_from_full_state(
    full: dict[str, Any], module: torch.nn.Module, names: list[str]
) -> list[torch.Tensor]:
    """The source tensor for each of ``names``: from the gathered state dict, else (for
    non-persistent buffers, which a state dict leaves out) the local buffer."""
    local = {clean_name(n): b for n, b in module.named_buffers()}
    out: list[torch.Tensor] = []
    for name in names:
        tensor = full.get(name)
        if tensor is None:
            tensor = local.get(name)
        if tensor is None:
            raise RuntimeError(
                f"The gathered state dict has no entry {name!r}: the module's structure changed "
                "after LiveModel.from_module. Build the LiveModel from the final module."
            )
        out.append(tensor)
    return out
