"""``TimeWaitForBatchLogger``: logs how long the loop waited for data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import as_logger_list, check_interval, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.callbacks.iteration_time_logger import recent_mean
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import PhaseState, State


class TimeWaitForBatchLogger(Callback):
    """Every ``every_n_steps`` steps, logs ``<phase>/data_wait_time_s``: the mean time the
    loop spent between the end of the previous step and having the next batch (the loop's
    ``data_wait_time`` timer) over the last ``every_n_steps`` steps. A large value means the
    dataloader is the bottleneck.

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        every_n_steps: logging interval in steps.

    Raises:
        ValueError: ``every_n_steps`` < 1.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[TimeWaitForBatchLogger(lg, every_n_steps=4)])
        >>> list(lg.log_buffer[4])
        ['train/data_wait_time_s']
    """

    def __init__(
        self, loggers: MetricLogger | Sequence[MetricLogger], every_n_steps: int = 100
    ) -> None:
        self.loggers = as_logger_list("loggers", loggers)
        self.every_n_steps = check_interval("every_n_steps", every_n_steps)

    def _log(self, phase_state: PhaseState | None, phase: str, progress: Any) -> None:
        step = progress.num_steps_completed
        if step % self.every_n_steps:
            return
        mean = recent_mean(phase_state, "data_wait_time", self.every_n_steps)
        if mean is not None:
            log_to_all(self.loggers, {f"{phase}/data_wait_time_s": mean}, step)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        self._log(state.train_state, "train", unit.train_progress)

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        self._log(state.eval_state, "eval", unit.eval_progress)

    def on_predict_step_end(self, state: State, unit: Any) -> None:
        self._log(state.predict_state, "predict", unit.predict_progress)
