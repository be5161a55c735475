"""Strategies: device placement, DDP / FSDP / FSDP2 wrapping, precision, compile, AC, SWA."""

from torchkit.strategies.ddp import DDPStrategy
from torchkit.strategies.fsdp import FSDPStrategy
from torchkit.strategies.fsdp2 import FSDP2Strategy
from torchkit.strategies.params import (
    ActivationCheckpointParams,
    SWALRParams,
    SWAParams,
    TorchCompileParams,
)
from torchkit.strategies.precision import (
    AutocastPrecision,
    GradScalerPrecision,
    Precision,
    resolve_precision,
)
from torchkit.strategies.prepare import (
    FSDP2OptimizerWrapper,
    FSDPOptimizerWrapper,
    prepare_module,
)
from torchkit.strategies.strategy import NOOPStrategy, Strategy, resolve_strategy

__all__ = [
    "ActivationCheckpointParams",
    "AutocastPrecision",
    "DDPStrategy",
    "FSDP2OptimizerWrapper",
    "FSDP2Strategy",
    "FSDPOptimizerWrapper",
    "FSDPStrategy",
    "GradScalerPrecision",
    "NOOPStrategy",
    "Precision",
    "SWALRParams",
    "SWAParams",
    "Strategy",
    "TorchCompileParams",
    "prepare_module",
    "resolve_precision",
    "resolve_strategy",
]
