"""``TrainProgressMonitor``: logs completed epochs against the train step counter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import as_logger_list, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State


class TrainProgressMonitor(Callback):
    """Logs ``train/epochs_completed`` at the current train step when training starts and at
    every train epoch end, so a dashboard can map steps to epochs.

    Args:
        loggers: one ``MetricLogger`` or a list of them.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=2,
        ...           callbacks=[TrainProgressMonitor(lg)])
        >>> {step: row["train/epochs_completed"] for step, row in lg.log_buffer.items()}
        {0: 0.0, 2: 1.0, 4: 2.0}
    """

    def __init__(self, loggers: MetricLogger | Sequence[MetricLogger]) -> None:
        self.loggers = as_logger_list("loggers", loggers)

    def _log(self, unit: Any) -> None:
        p = unit.train_progress
        log_to_all(
            self.loggers, {"train/epochs_completed": float(p.num_epochs_completed)},
            p.num_steps_completed,
        )  # fmt: skip

    def on_train_start(self, state: State, unit: Any) -> None:
        self._log(unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._log(unit)
