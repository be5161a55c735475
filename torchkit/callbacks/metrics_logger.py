"""``MetricsLogger``: logs loss, torchmetrics, learning rate and grad norm to loggers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import (
    as_logger_list,
    check_interval,
    current_lrs,
    flush_all,
    log_to_all,
)
from torchkit.callbacks._metric_state import publish_eval, publish_test, publish_train
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import EntryPoint, State

logger = logging.getLogger(__name__)


class MetricsLogger(Callback):
    """Logs ``train/*`` every ``every_n_steps`` train steps and at each train epoch end,
    ``eval/*`` at each eval epoch end, and ``test/*`` at the end of the test phase.

    Train values: ``train/loss`` (the mean of the step losses since the previous logging point,
    summed on the device and read once), ``unit.train_metrics`` computed then reset,
    ``train/lr`` (from the optimizers' param groups) and ``train/grad_norm`` when the step
    reported one (``TrainStepResults.total_grad_norm``). Eval values: ``eval/loss`` (the epoch
    mean) and ``unit.eval_metrics`` computed then reset; test values likewise, from the test
    steps' losses and ``unit.test_metrics``. All tensors of a logging point are read with one
    host sync; nothing is read on other steps. Values are also published in ``state.metrics``
    (see ``docs/observability.md``).

    Train values are logged at the global train step; eval and test values inside ``fit`` too
    (so curves share an x-axis), and at the phase's step count under ``evaluate`` and ``test``.
    Loggers are flushed at the end of each entry point (and of fit's test phase) and when the
    run raises, so the values logged before a failure reach the files; closing them is up to
    you.

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        every_n_steps: train logging interval in steps.
        log_lr: also log learning rates.

    Raises:
        ValueError: ``every_n_steps`` < 1.
        TypeError: an element of ``loggers`` is not a logger.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[MetricsLogger(lg, every_n_steps=2)])
        >>> sorted(lg.log_buffer), sorted(lg.log_buffer[2])
        ([2, 4], ['train/loss', 'train/lr'])
    """

    records_step_losses = True

    def __init__(
        self,
        loggers: MetricLogger | Sequence[MetricLogger],
        every_n_steps: int = 100,
        *,
        log_lr: bool = True,
    ) -> None:
        self.every_n_steps = check_interval(
            "every_n_steps", every_n_steps, "Pass e.g. every_n_steps=10 to log every 10 steps"
        )
        self.loggers = as_logger_list("loggers", loggers)
        self.log_lr = log_lr
        self._last_logged_step = -1

    def _log_train(self, state: State, unit: Any) -> None:
        step = unit.train_progress.num_steps_completed
        if step == self._last_logged_step:
            return
        self._last_logged_step = step
        payload = dict(publish_train(state, unit))
        if self.log_lr:
            payload.update(current_lrs(unit, "train/lr"))
        log_to_all(self.loggers, payload, step)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed % self.every_n_steps == 0:
            self._log_train(state, unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._log_train(state, unit)

    def on_train_end(self, state: State, unit: Any) -> None:
        flush_all(self.loggers)

    def on_eval_epoch_end(self, state: State, unit: Any) -> None:
        log_to_all(self.loggers, publish_eval(state, unit), _step(state, unit, unit.eval_progress))

    def on_test_epoch_end(self, state: State, unit: Any) -> None:
        log_to_all(self.loggers, publish_test(state, unit), _step(state, unit, unit.test_progress))

    def on_test_end(self, state: State, unit: Any) -> None:
        flush_all(self.loggers)  # fit's test phase runs after on_train_end's flush

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        # what was logged before the failure is what you need to debug it: write it out
        try:
            flush_all(self.loggers)
        except Exception:  # never mask the run's own exception
            logger.warning("MetricsLogger could not flush its loggers", exc_info=True)

    def on_eval_end(self, state: State, unit: Any) -> None:
        if state.entry_point == EntryPoint.EVALUATE:
            flush_all(self.loggers)


def _step(state: State, unit: Any, phase_progress: Any) -> int:
    """Where eval/test values go: the global train step inside ``fit``, else the phase's own
    step count."""
    if state.entry_point == EntryPoint.FIT and hasattr(unit, "train_progress"):
        return int(unit.train_progress.num_steps_completed)
    return int(phase_progress.num_steps_completed)
