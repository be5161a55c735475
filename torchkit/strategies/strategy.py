"""The ``Strategy`` interface and the single-device ``NOOPStrategy``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

import torch

StrategyName = Literal["noop", "ddp", "fsdp", "fsdp2"]
_STRATEGY_NAMES: tuple[str, ...] = ("noop", "ddp", "fsdp", "fsdp2")

_NULL_CONTEXT = contextlib.nullcontext()


class Strategy:
    """How a module is placed, wrapped and synchronised; one small subclass per backend.

    ``AutoUnit`` only calls these methods, so a backend never shows up as an ``if`` in the
    training step. Subclasses override what differs from a single process.
    """

    def prepare(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """Move (and wrap) ``module`` for training on ``device``; returns the module to use."""
        return module.to(device)

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The user's module inside any wrapper (e.g. ``DistributedDataParallel.module``)."""
        return module

    def no_sync(self, module: torch.nn.Module) -> AbstractContextManager[Any]:
        """A context in which backward skips the gradient all-reduce (non-final micro-batch)."""
        return _NULL_CONTEXT

    @property
    def has_no_sync(self) -> bool:
        """True when ``no_sync`` does something (so single-device steps skip the context)."""
        return False

    def grad_average_world_size(self) -> int:
        """The number of ranks the backend averages gradients over (1 without a group)."""
        return 1

    def all_reduce_sum_(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` in place over the ranks taking part in training (on device)."""

    def scale_grads_(self, module: torch.nn.Module, factor: float | torch.Tensor) -> None:
        """Multiply every gradient in place by ``factor`` (a float or a 0-d device tensor)."""
        grads = grads_of(module)
        if grads:
            torch._foreach_mul_(grads, factor)

    def total_grad_norm(self, module: torch.nn.Module, norm_type: float) -> torch.Tensor:
        """The norm of all gradients taken together, as a full (not sharded) tensor."""
        grads = grads_of(module)
        if not grads:
            return torch.zeros(())
        return _total_norm(grads, norm_type)

    def clip_grad_norm_(
        self, module: torch.nn.Module, max_norm: float, norm_type: float
    ) -> torch.Tensor:
        """Clip gradients to ``max_norm`` and return the total norm before clipping."""
        total = self.total_grad_norm(module, norm_type)
        _clip_with_norm_(list(module.parameters()), max_norm, total)
        return total


def grads_of(module: torch.nn.Module) -> list[torch.Tensor]:
    """The gradients of ``module``'s parameters that have one."""
    return [p.grad for p in module.parameters() if p.grad is not None]


def _total_norm(grads: Sequence[torch.Tensor], norm_type: float) -> torch.Tensor:
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if get_total_norm is not None:  # torch >= 2.6
        return get_total_norm(list(grads), norm_type)
    norms = [torch.linalg.vector_norm(g, norm_type) for g in grads]
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)


def _clip_with_norm_(
    params: list[torch.nn.Parameter], max_norm: float, total: torch.Tensor
) -> None:
    clip = getattr(torch.nn.utils, "clip_grads_with_norm_", None)
    if clip is not None:  # torch >= 2.6
        clip(params, max_norm, total)
        return
    # no host sync: the coefficient stays on device and is clamped there
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        torch._foreach_mul_(grads, coef.to(grads[0].device))


@dataclass(frozen=True)
class NOOPStrategy(Strategy):
    """Single process, single device: the module is moved to the device and not wrapped.

    Example:
        >>> import torch
        >>> NOOPStrategy().prepare(torch.nn.Linear(2, 2), torch.device("cpu")).in_features
        2
    """


class DataParallelStrategy(Strategy):
    """Shared by the multi-process strategies: gradients are averaged over the world and the
    wrapper supports skipping the gradient sync (``no_sync``)."""

    @property
    def has_no_sync(self) -> bool:
        return True

    def grad_average_world_size(self) -> int:
        import torch.distributed as dist

        return dist.get_world_size()

    def all_reduce_sum_(self, tensor: torch.Tensor) -> None:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


class WrapperStrategy(DataParallelStrategy):
    """A strategy whose wrapper keeps the user's module in ``.module`` and has ``no_sync()``
    (DDP, FSDP1)."""

    def unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        inner = getattr(module, "module", module)
        return inner if isinstance(inner, torch.nn.Module) else module

    def no_sync(self, module: torch.nn.Module) -> AbstractContextManager[Any]:
        no_sync: Any = module.no_sync
        return no_sync()


def resolve_strategy(strategy: str | Strategy | None) -> Strategy:
    """Turn ``None``, a strategy name or a ``Strategy`` into a ``Strategy`` instance.

    Raises:
        ValueError: an unknown name.
        TypeError: neither a string nor a ``Strategy``.
    """
    if strategy is None:
        return NOOPStrategy()
    if isinstance(strategy, Strategy):
        return strategy
    if not isinstance(strategy, str):
        raise TypeError(
            f"strategy={strategy!r} is invalid: expected one of {_STRATEGY_NAMES} or a "
            "torchkit.strategies Strategy instance such as DDPStrategy()."
        )
    if strategy == "noop":
        return NOOPStrategy()
    if strategy == "ddp":
        from torchkit.strategies.ddp import DDPStrategy

        return DDPStrategy()
    if strategy == "fsdp2":
        from torchkit.strategies.fsdp2 import FSDP2Strategy

        return FSDP2Strategy()
    if strategy == "fsdp":
        from torchkit.strategies.fsdp import FSDPStrategy

        return FSDPStrategy()
    raise ValueError(
        f"strategy={strategy!r} is invalid: expected one of {_STRATEGY_NAMES} or a Strategy "
        "instance. Use 'ddp' for data parallel training or 'noop' for a single device."
    )


def require_process_group(name: str) -> None:
    """Raise a ``RuntimeError`` saying how to launch when no default process group exists."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"strategy={name!r} needs an initialised torch.distributed process group, but none "
            "exists. Launch with `torchrun --nproc_per_node=N your_script.py` and call "
            "torchkit.utils.init_from_env() (or torch.distributed.init_process_group()) "
            "before building the unit; use strategy='noop' for a single process."
        )
