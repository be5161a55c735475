"""``TrainProgressMonitor``: logs completed epochs against the train step counter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import as_logger_list, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State

TNT_KEY = "Training steps completed vs epochs"
"""TNT's series: the completed train steps, logged at the completed-epoch count."""


class TrainProgressMonitor(Callback):
    """Logs training progress when training starts and at every train epoch end, so a
    dashboard can map steps to epochs: TNT's ``"Training steps completed vs epochs"`` (the
    completed steps, with the completed epochs as the x-axis, exactly as TNT logs it) and
    ``train/epochs_completed`` at the current train step (the same mapping on the step axis
    the other torchkit series use).

    Args:
        loggers: one ``MetricLogger`` or a list of them.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=2,
        ...           callbacks=[TrainProgressMonitor(lg)])
        >>> {step: row["train/epochs_completed"] for step, row in lg.log_buffer.items()
        ...  if "train/epochs_completed" in row}
        {0: 0.0, 2: 1.0, 4: 2.0}
        >>> {epoch: row[TNT_KEY] for epoch, row in lg.log_buffer.items() if TNT_KEY in row}
        {0: 0.0, 1: 2.0, 2: 4.0}
    """

    def __init__(self, loggers: MetricLogger | Sequence[MetricLogger]) -> None:
        self.loggers = as_logger_list("loggers", loggers)

    def _log(self, unit: Any) -> None:
        p = unit.train_progress
        steps, epochs = p.num_steps_completed, p.num_epochs_completed
        log_to_all(self.loggers, {TNT_KEY: float(steps)}, epochs)
        log_to_all(self.loggers, {"train/epochs_completed": float(epochs)}, steps)

    def on_train_start(self, state: State, unit: Any) -> None:
        self._log(unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._log(unit)
