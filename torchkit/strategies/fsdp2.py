"""``FSDP2Strategy``: per-parameter sharding with ``fully_shard`` (FSDP2)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from torchkit.strategies.strategy import DataParallelStrategy, grads_of, require_process_group


def _fsdp2_api() -> tuple[Any, Any, Any]:
    """``fully_shard``, ``MixedPrecisionPolicy`` and ``CPUOffloadPolicy`` for this torch."""
    try:  # torch >= 2.6
        from torch.distributed.fsdp import (  # type: ignore[attr-defined,unused-ignore]
            CPUOffloadPolicy,
            MixedPrecisionPolicy,
            fully_shard,
        )
    except ImportError:  # torch 2.4 / 2.5
        from torch.distributed._composable.fsdp import (  # type: ignore[no-redef,attr-defined,unused-ignore]
            CPUOffloadPolicy,
            MixedPrecisionPolicy,
            fully_shard,
        )
    return fully_shard, MixedPrecisionPolicy, CPUOffloadPolicy


def _dtensor_type() -> type:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch 2.4
        from torch.distributed._tensor import DTensor  # type: ignore[no-redef,attr-defined,unused-ignore]
    return DTensor


@dataclass(frozen=True)
class FSDP2Strategy(DataParallelStrategy):
    """Fully sharded data parallel training with ``fully_shard`` (FSDP2, DTensor parameters).

    Each submodule whose class is in ``modules_to_shard`` (or whose class name is) gets its
    own ``fully_shard`` group, then the root module is sharded. Non-final micro-batches run
    with ``set_requires_gradient_sync(False)``; the gradient norm is reduced over all shards.

    Args:
        modules_to_shard: classes or class names of the submodules to shard separately
            (e.g. transformer blocks); empty shards only the root.
        reshard_after_forward: free the gathered parameters after forward (saves memory,
            costs a second all-gather in backward).
        mp_param_dtype: dtype parameters are cast to for compute (None: unchanged).
        mp_reduce_dtype: dtype gradients are reduced in (None: the parameter dtype).
        cpu_offload: keep sharded parameters and gradients on the CPU.

    Raises:
        RuntimeError: (from ``prepare``) no process group is initialised.

    Example:
        >>> s = FSDP2Strategy(modules_to_shard=("Linear",), reshard_after_forward=False)
        >>> s.reshard_after_forward
        False
    """

    modules_to_shard: tuple[type | str, ...] = ()
    reshard_after_forward: bool = True
    mp_param_dtype: torch.dtype | None = None
    mp_reduce_dtype: torch.dtype | None = None
    cpu_offload: bool = False

    def prepare(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        require_process_group("fsdp2")
        fully_shard, mp_policy_cls, offload_cls = _fsdp2_api()
        kwargs: dict[str, Any] = {"reshard_after_forward": self.reshard_after_forward}
        if self.mp_param_dtype is not None or self.mp_reduce_dtype is not None:
            kwargs["mp_policy"] = mp_policy_cls(
                param_dtype=self.mp_param_dtype, reduce_dtype=self.mp_reduce_dtype
            )
        if self.cpu_offload:
            kwargs["offload_policy"] = offload_cls()
        else:
            module = module.to(device)
        if device.type != "cuda":
            from torch.distributed.device_mesh import init_device_mesh

            kwargs["mesh"] = init_device_mesh(device.type, (dist.get_world_size(),))
        for sub in list(module.modules())[1:]:
            if self._should_shard(sub):
                fully_shard(sub, **kwargs)
        fully_shard(module, **kwargs)
        return module

    def _should_shard(self, sub: torch.nn.Module) -> bool:
        for spec in self.modules_to_shard:
            if isinstance(spec, str) and type(sub).__name__ == spec:
                return True
            if isinstance(spec, type) and isinstance(sub, spec):
                return True
        return False

    def no_sync(self, module: torch.nn.Module) -> AbstractContextManager[Any]:
        return _no_gradient_sync(module)

    def scale_grads_(self, module: torch.nn.Module, factor: float | torch.Tensor) -> None:
        # Sharded gradients are DTensors; scaling each rank's local shard is exact and
        # avoids mixing DTensors with plain tensors in one foreach call.
        dtensor = _dtensor_type()
        local: list[torch.Tensor] = [
            g.to_local() if isinstance(g, dtensor) else g  # type: ignore[attr-defined]
            for g in grads_of(module)
        ]
        if local:
            torch._foreach_mul_(local, factor)

    def total_grad_norm(self, module: torch.nn.Module, norm_type: float) -> torch.Tensor:
        total = super().total_grad_norm(module, norm_type)
        if isinstance(total, _dtensor_type()):
            # a partial norm over shards: reduce it so every rank sees the full norm
            total = total.full_tensor()  # type: ignore[attr-defined]
        return total


@contextlib.contextmanager
def _no_gradient_sync(module: torch.nn.Module) -> Iterator[None]:
    set_sync: Any = getattr(module, "set_requires_gradient_sync", None)
    if set_sync is None:
        raise TypeError(
            f"module={type(module).__name__} is not an FSDP2 module: FSDP2Strategy.no_sync needs "
            "the module returned by FSDP2Strategy.prepare (fully_shard)."
        )
    set_sync(False)
    try:
        yield
    finally:
        set_sync(True)
