"""``FSDPStrategy``: the original ``FullyShardedDataParallel`` wrapper (FSDP1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from torchkit.strategies.strategy import WrapperStrategy, require_process_group


@dataclass(frozen=True)
class FSDPStrategy(WrapperStrategy):
    """Fully sharded data parallel training with the FSDP1 wrapper.

    Prefer ``FSDP2Strategy`` for new code; this one exists for TNT compatibility.

    Args:
        auto_wrap_policy: FSDP's ``auto_wrap_policy`` callable (None: wrap only the root).
        use_orig_params: keep the original parameters visible (needed by ``torch.compile``).
        sync_module_states: broadcast rank 0's weights at wrap time.
        fsdp_kwargs: further keyword arguments for ``FullyShardedDataParallel``.

    Raises:
        RuntimeError: (from ``prepare``) no process group is initialised.

    Example:
        >>> FSDPStrategy(use_orig_params=True).use_orig_params
        True
    """

    auto_wrap_policy: Callable[..., Any] | None = None
    use_orig_params: bool = True
    sync_module_states: bool = False
    fsdp_kwargs: dict[str, Any] = field(default_factory=dict)

    def prepare(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        require_process_group("fsdp")
        from torch.distributed.fsdp import FullyShardedDataParallel

        kwargs: dict[str, Any] = {
            "auto_wrap_policy": self.auto_wrap_policy,
            "use_orig_params": self.use_orig_params,
            "sync_module_states": self.sync_module_states,
            "device_id": device,
        }
        kwargs.update(self.fsdp_kwargs)
        return FullyShardedDataParallel(module.to(device), **kwargs)

    def total_grad_norm(self, module: torch.nn.Module, norm_type: float) -> torch.Tensor:
        # FSDP1 shards flat parameters: only the wrapper can reduce the norm over ranks.
        # An infinite max_norm leaves the gradients unchanged.
        return self.clip_grad_norm_(module, float("inf"), norm_type)

    def clip_grad_norm_(
        self, module: torch.nn.Module, max_norm: float, norm_type: float
    ) -> torch.Tensor:
        clip: Callable[..., torch.Tensor] = module.clip_grad_norm_  # type: ignore[assignment]
        return clip(max_norm, norm_type)
