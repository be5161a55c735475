"""``DDPStrategy``: ``DistributedDataParallel`` with its useful options and a comm hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from torchkit.strategies.strategy import WrapperStrategy, require_process_group


@dataclass(frozen=True)
class DDPStrategy(WrapperStrategy):
    """Data parallel training with ``torch.nn.parallel.DistributedDataParallel``.

    Gradients are all-reduced (averaged) once per optimizer step: ``AutoUnit`` runs
    non-final micro-batches of an accumulation window under ``no_sync``.

    Args:
        find_unused_parameters: DDP's option, for models whose forward skips parameters.
        static_graph: DDP's option, for a graph that is the same every step.
        gradient_as_bucket_view: let gradients alias DDP's buckets (saves memory).
        broadcast_buffers: broadcast buffers from rank 0 at every forward (None: DDP's
            default; passed only when set, as newer torch deprecates the argument).
        bucket_cap_mb: bucket size in MiB (None: DDP's default).
        sync_batchnorm: convert BatchNorm layers to ``SyncBatchNorm`` before wrapping.
        comm_hook: a DDP communication hook ``hook(state, bucket) -> Future``.
        comm_state: the state passed to ``comm_hook``.
        ddp_kwargs: further keyword arguments for ``DistributedDataParallel``.

    Raises:
        RuntimeError: (from ``prepare``) no process group is initialised.

    Example:
        >>> s = DDPStrategy(find_unused_parameters=True)
        >>> s.find_unused_parameters
        True
    """

    find_unused_parameters: bool = False
    static_graph: bool = False
    gradient_as_bucket_view: bool = False
    broadcast_buffers: bool | None = None
    bucket_cap_mb: float | None = None
    sync_batchnorm: bool = False
    comm_hook: Callable[..., Any] | None = None
    comm_state: Any = None
    ddp_kwargs: dict[str, Any] = field(default_factory=dict)

    def prepare(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        require_process_group("ddp")
        if self.sync_batchnorm:
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)  # type: ignore[no-untyped-call]
        module = module.to(device)
        kwargs: dict[str, Any] = {
            "find_unused_parameters": self.find_unused_parameters,
            "static_graph": self.static_graph,
            "gradient_as_bucket_view": self.gradient_as_bucket_view,
        }
        if self.broadcast_buffers is not None:
            kwargs["broadcast_buffers"] = self.broadcast_buffers
        if self.bucket_cap_mb is not None:
            kwargs["bucket_cap_mb"] = self.bucket_cap_mb
        if device.type == "cuda":
            kwargs["device_ids"] = [device.index if device.index is not None else 0]
        kwargs.update(self.ddp_kwargs)
        ddp = torch.nn.parallel.DistributedDataParallel(module, **kwargs)
        if self.comm_hook is not None:
            ddp.register_comm_hook(self.comm_state, self.comm_hook)
        return ddp
