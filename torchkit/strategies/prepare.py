"""``prepare_module``: activation checkpointing, strategy wrapping and ``torch.compile``."""

from __future__ import annotations

import logging

import torch

from torchkit.strategies.compile import apply_torch_compile, check_compile_options
from torchkit.strategies.params import ActivationCheckpointParams, TorchCompileParams
from torchkit.strategies.strategy import Strategy, resolve_strategy

logger = logging.getLogger(__name__)


def prepare_module(
    module: torch.nn.Module,
    device: torch.device | str,
    *,
    strategy: str | Strategy | None = None,
    torch_compile_params: TorchCompileParams | None = None,
    activation_checkpoint_params: ActivationCheckpointParams | None = None,
) -> torch.nn.Module:
    """Make ``module`` ready to train: checkpointing, then the strategy, then compile.

    Activation checkpointing wraps submodules first, so sharding (FSDP2) sees the wrapped
    blocks. ``torch.compile`` is applied last, in place (``module.compile``), to the whole
    module or to each block of ``recursive_module_types``, so parameter names and
    ``state_dict`` keys stay those of the uncompiled module.

    Args:
        module: the user's module.
        device: the device to train on.
        strategy: a ``Strategy`` or a name (``"noop"``, ``"ddp"``, ``"fsdp"``, ``"fsdp2"``).
        torch_compile_params: compile the module with these arguments.
        activation_checkpoint_params: wrap the submodules it selects.

    Returns:
        The module to train (possibly a wrapper such as ``DistributedDataParallel``).

    Raises:
        ValueError: an unknown strategy name or compile option (raised before the module
            is changed).
        RuntimeError: a distributed strategy without a process group.

    Example:
        >>> m = prepare_module(torch.nn.Linear(2, 2), "cpu")
        >>> m.weight.device.type
        'cpu'
    """
    dev = torch.device(device) if isinstance(device, str) else device
    strat = resolve_strategy(strategy)
    if torch_compile_params is not None:
        check_compile_options(torch_compile_params)  # before any change to the module
    if activation_checkpoint_params is not None:
        apply_activation_checkpointing(module, activation_checkpoint_params)
    module = strat.prepare(module, dev)
    if torch_compile_params is not None:
        apply_torch_compile(module, torch_compile_params)
    return module


def apply_activation_checkpointing(
    module: torch.nn.Module, params: ActivationCheckpointParams
) -> None:
    """Wrap, in place, each submodule ``params.check_fn`` selects in a checkpoint wrapper."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing as apply_ac,
    )

    impl = (
        CheckpointImpl.REENTRANT
        if params.checkpoint_impl == "reentrant"
        else CheckpointImpl.NO_REENTRANT
    )

    def wrapper(m: torch.nn.Module) -> torch.nn.Module:
        return checkpoint_wrapper(m, checkpoint_impl=impl)

    apply_ac(module, checkpoint_wrapper_fn=wrapper, check_fn=params.check_fn)
