"""torchkit: a lightweight, unit-based PyTorch training-loop toolkit."""

from torchkit.callbacks.callback import Callback
from torchkit.loop import (
    ActivePhase,
    Duration,
    EntryPoint,
    EvalSet,
    Evaluators,
    Phase,
    PhaseState,
    Progress,
    State,
    evaluate,
    fit,
    predict,
    test,
    train,
)
from torchkit.units import (
    AppStateMixin,
    AutoPredictUnit,
    AutoUnit,
    EvalUnit,
    PredictUnit,
    TestUnit,
    TrainStepResults,
    TrainUnit,
)

__version__ = "0.1.0"

__all__ = [
    "ActivePhase",
    "AppStateMixin",
    "AutoPredictUnit",
    "AutoUnit",
    "Callback",
    "Duration",
    "EntryPoint",
    "EvalSet",
    "EvalUnit",
    "Evaluators",
    "Phase",
    "PhaseState",
    "PredictUnit",
    "Progress",
    "State",
    "TestUnit",
    "TrainStepResults",
    "TrainUnit",
    "evaluate",
    "fit",
    "predict",
    "test",
    "train",
]
