"""Units: the user's model code (TrainUnit/EvalUnit/PredictUnit) and attribute tracking."""

from torchkit.units.app_state_mixin import AppStateMixin
from torchkit.units.unit import EvalUnit, PredictUnit, TrainUnit

__all__ = ["AppStateMixin", "EvalUnit", "PredictUnit", "TrainUnit"]
