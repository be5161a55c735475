"""``LearningRateMonitor``: logs every optimizer param group's learning rate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from torchkit.callbacks._logging_utils import as_logger_list, check_choice, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State

logger = logging.getLogger(__name__)


def learning_rates(unit: Any) -> dict[str, float]:
    """``lr-<optimizer attribute>`` (plus ``/pg<i>`` with several param groups) -> lr."""
    out: dict[str, float] = {}
    for opt_name, opt in unit.tracked_optimizers().items():
        groups = opt.param_groups
        for i, group in enumerate(groups):
            key = f"lr-{opt_name}" if len(groups) == 1 else f"lr-{opt_name}/pg{i}"
            out[key] = float(group["lr"])
    return out


class LearningRateMonitor(Callback):
    """Logs the learning rate each step or epoch will use, read from the optimizers' param
    groups (Python floats: no host sync).

    With ``logging_interval="step"`` it logs at ``on_train_step_start`` under step
    ``num_steps_completed`` (the LR the coming step uses); with ``"epoch"`` at
    ``on_train_epoch_start`` under the same step counter.

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        logging_interval: ``"step"`` or ``"epoch"``.

    Raises:
        ValueError: an unknown ``logging_interval``.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2, lr=0.1), generate_random_dataloader(4, 2, 2),
        ...           max_epochs=1, callbacks=[LearningRateMonitor(lg, "step")])
        >>> lg.log_buffer
        {0: {'lr-optimizer': 0.1}, 1: {'lr-optimizer': 0.1}}
    """

    def __init__(
        self,
        loggers: MetricLogger | Sequence[MetricLogger],
        logging_interval: Literal["step", "epoch"] = "epoch",
    ) -> None:
        self.logging_interval = check_choice(
            "logging_interval", logging_interval, ("step", "epoch")
        )
        self.loggers = as_logger_list("loggers", loggers)

    def on_train_start(self, state: State, unit: Any) -> None:
        if not unit.tracked_optimizers():
            logger.warning(
                "LearningRateMonitor: %s tracks no optimizer, so there is no learning rate to "
                "log. Assign the optimizer to the unit (self.optimizer = ...) so it is tracked.",
                type(unit).__name__,
            )

    def _log(self, unit: Any) -> None:
        log_to_all(self.loggers, learning_rates(unit), unit.train_progress.num_steps_completed)

    def on_train_epoch_start(self, state: State, unit: Any) -> None:
        if self.logging_interval == "epoch":
            self._log(unit)

    def on_train_step_start(self, state: State, unit: Any) -> None:
        if self.logging_interval == "step":
            self._log(unit)
