"""Units: the user's model code (TrainUnit/EvalUnit/PredictUnit) and attribute tracking."""

from torchkit.units.app_state_mixin import AppStateMixin
from torchkit.units.auto_predict_unit import AutoPredictUnit
from torchkit.units.auto_unit import AutoUnit, TrainStepResults
from torchkit.units.supervised_unit import LRSchedulerFactory, OptimizerFactory, SupervisedUnit
from torchkit.units.unit import (
    EvalUnit,
    PredictUnit,
    TestUnit,
    TEvalUnit,
    TPredictUnit,
    TrainUnit,
    TTestUnit,
    TTrainUnit,
)

__all__ = [
    "AppStateMixin",
    "AutoPredictUnit",
    "AutoUnit",
    "EvalUnit",
    "LRSchedulerFactory",
    "OptimizerFactory",
    "PredictUnit",
    "SupervisedUnit",
    "TEvalUnit",
    "TPredictUnit",
    "TTestUnit",
    "TTrainUnit",
    "TestUnit",
    "TrainStepResults",
    "TrainUnit",
]
