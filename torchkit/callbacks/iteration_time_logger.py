"""``IterationTimeLogger``: logs the mean wall time of recent steps."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import as_logger_list, check_interval, log_to_all
from torchkit.callbacks._reachability import warn_every_n_steps
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import PhaseState, State


def recent_mean(phase_state: PhaseState | None, key: str, window: int) -> float | None:
    """Mean of the last ``window`` durations the loop recorded under ``key`` (seconds)."""
    if phase_state is None:
        return None
    values = phase_state.iteration_timer.recorded_durations.get(key)
    if not values:
        return None
    n = min(window, len(values))
    tail = itertools.islice(values, len(values) - n, None)
    return sum(tail) / n


class RecentTimerLogger(Callback):
    """Base for callbacks that log, every ``every_n_steps`` steps, the mean of the last
    ``window`` durations of one of the loop's iteration timers as ``<phase>/<name>``.

    Subclasses set ``timer_key`` (formatted with ``phase``) and ``metric_name``.
    """

    timer_key = ""
    metric_name = ""

    def __init__(
        self,
        loggers: MetricLogger | Sequence[MetricLogger],
        every_n_steps: int,
        window: int,
        warmup_steps: int = 0,
    ) -> None:
        self.loggers = as_logger_list("logger", loggers)
        self.every_n_steps = check_interval("log_every_n_steps", every_n_steps)
        self._window = window
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(
                f"warmup_steps={warmup_steps!r} is invalid: expected an int >= 0. Pass the "
                "number of first steps to leave out, e.g. warmup_steps=10."
            )
        self.warmup_steps = warmup_steps

    def _log(self, phase_state: PhaseState | None, phase: str, progress: Any) -> None:
        step = progress.num_steps_completed
        if step % self.every_n_steps or step <= self.warmup_steps:
            return
        # The current step's duration is recorded after its end hooks: read the finished ones.
        mean = recent_mean(phase_state, self.timer_key.format(phase=phase), self._window)
        if mean is not None:
            log_to_all(self.loggers, {f"{phase}/{self.metric_name}": mean}, step)

    def on_train_start(self, state: State, unit: Any) -> None:
        warn_every_n_steps(type(self).__name__, "every_n_steps", self.every_n_steps, state)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        self._log(state.train_state, "train", unit.train_progress)

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        self._log(state.eval_state, "eval", unit.eval_progress)

    def on_predict_step_end(self, state: State, unit: Any) -> None:
        self._log(state.predict_state, "predict", unit.predict_progress)


def resolve_every(log_every_n_steps: int, every_n_steps: int | None) -> int:
    """TNT's ``log_every_n_steps``, or torchkit's ``every_n_steps`` spelling of it."""
    if every_n_steps is None:
        return log_every_n_steps
    if log_every_n_steps != 1:
        raise ValueError(
            f"every_n_steps={every_n_steps!r}, log_every_n_steps={log_every_n_steps!r} is "
            "invalid: expected one of them. Pass log_every_n_steps (TNT's name) alone."
        )
    return every_n_steps


class IterationTimeLogger(RecentTimerLogger):
    """Every ``log_every_n_steps`` steps, logs ``<phase>/iteration_time_s``: the mean host
    wall time of the last ``moving_avg_window`` steps (the loop's ``<phase>_iteration_time`` timer,
    step call plus step hooks; no device sync, so with CUDA it measures launch time unless the
    step itself synchronises).

    Args:
        logger: one ``MetricLogger`` or a list of them.
        moving_avg_window: number of recent steps averaged.
        log_every_n_steps: logging interval in steps (TNT's name and default).
        every_n_steps: the same interval under torchkit's usual name.

    Raises:
        ValueError: an interval or window < 1.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[IterationTimeLogger(lg, log_every_n_steps=2)])
        >>> sorted(lg.log_buffer)
        [2, 4]
    """

    timer_key = "{phase}_iteration_time"
    metric_name = "iteration_time_s"

    def __init__(
        self,
        logger: MetricLogger | Sequence[MetricLogger],
        moving_avg_window: int = 1,
        log_every_n_steps: int = 1,
        *,
        every_n_steps: int | None = None,
    ) -> None:
        self.moving_avg_window = check_interval("moving_avg_window", moving_avg_window)
        every = resolve_every(log_every_n_steps, every_n_steps)
        super().__init__(logger, every, self.moving_avg_window)
