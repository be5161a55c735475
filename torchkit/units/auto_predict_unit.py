"""``AutoPredictUnit``: inference with ``module(data)`` under autocast, on the right device."""

from __future__ import annotations

from typing import TypeVar

import torch

from torchkit.strategies.params import TorchCompileParams
from torchkit.strategies.precision import Precision
from torchkit.strategies.strategy import Strategy
from torchkit.units._auto_common import AutoModuleMixin
from torchkit.units.unit import PredictUnit

TPredictData = TypeVar("TPredictData")


class AutoPredictUnit(AutoModuleMixin, PredictUnit[TPredictData]):
    """Runs ``self.module(data)`` for each batch, moved to the device, under autocast.

    Override ``predict_step`` for batches that are not the module's direct input, or
    ``move_data_to_device`` for custom batch types.

    Args:
        module: the model.
        device: the device (None: ``cuda:LOCAL_RANK`` when CUDA exists, else CPU).
        strategy: ``"noop"``, ``"ddp"``, ``"fsdp"``, ``"fsdp2"`` or a ``Strategy``.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"``, a dtype or a ``Precision``.
        torch_compile_params: compile the module.
        enable_prefetch: read one batch ahead (async H2D copy on CUDA).

    Raises:
        ValueError: an unknown precision or strategy name.
        TypeError: ``module`` is not a ``torch.nn.Module``.
        RuntimeError: a distributed strategy without a process group.

    Example:
        >>> import torch
        >>> from torchkit import predict
        >>> unit = AutoPredictUnit(module=torch.nn.Linear(2, 1), device="cpu")
        >>> predict(unit, [torch.ones(3, 2)] * 2)
        >>> unit.predict_progress.num_steps_completed
        2
    """

    def __init__(
        self,
        *,
        module: torch.nn.Module,
        device: torch.device | str | None = None,
        strategy: str | Strategy | None = None,
        precision: str | torch.dtype | Precision | None = None,
        torch_compile_params: TorchCompileParams | None = None,
        enable_prefetch: bool = True,
    ) -> None:
        super().__init__()
        self._init_auto(
            module=module,
            device=device,
            strategy=strategy,
            precision=precision,
            torch_compile_params=torch_compile_params,
            activation_checkpoint_params=None,
            enable_prefetch=enable_prefetch,
        )
