"""``prepare_module``: activation checkpointing, strategy wrapping and ``torch.compile``."""

from __future__ import annotations

import logging
from typing import Any

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


class FSDPOptimizerWrapper:
    """A ``Stateful`` view of an optimizer over an FSDP (v1) module, through FSDP's optimizer
    state-dict APIs, so the state is keyed by parameter names (TNT's
    ``torchtnt.utils.prepare_module.FSDPOptimizerWrapper``). torchkit's own checkpointing
    wraps optimizers itself; this is for code that uses TNT's wrapper directly.

    Args:
        module: the ``FullyShardedDataParallel`` module the optimizer updates.
        optimizer: the optimizer.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> w = FSDPOptimizerWrapper(net, torch.optim.SGD(net.parameters(), lr=0.1))
        >>> w.module is net
        True
    """

    def __init__(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.module = module
        self.optimizer = optimizer

    def state_dict(self) -> dict[str, Any]:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        return dict(FSDP.optim_state_dict(self.module, self.optimizer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        to_load = FSDP.optim_state_dict_to_load(self.module, self.optimizer, state_dict)
        self.optimizer.load_state_dict(to_load)


class FSDP2OptimizerWrapper:
    """A ``Stateful`` view of an optimizer over an FSDP2 (``fully_shard``) module, through
    ``torch.distributed.checkpoint.state_dict`` (TNT's ``FSDP2OptimizerWrapper``). It also
    works for an unsharded module.

    Args:
        module: the module the optimizer updates.
        optimizer: the optimizer.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> w = FSDP2OptimizerWrapper(net, torch.optim.SGD(net.parameters(), lr=0.1))
        >>> sorted(w.state_dict())
        ['param_groups', 'state']
    """

    def __init__(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.module = module
        self.optimizer = optimizer

    def state_dict(self) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return dict(get_optimizer_state_dict(self.module, self.optimizer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(self.module, self.optimizer, state_dict)
