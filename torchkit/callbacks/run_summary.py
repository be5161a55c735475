"""``RunSummary``: where the time went and the best metric values, at the end of a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from torchkit.callbacks._logging_utils import as_logger_list, log_to_all
from torchkit.callbacks._metric_state import get_times, publish_eval, publish_test
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State
from torchkit.utils.distributed import get_global_rank

logger = logging.getLogger(__name__)


def is_lower_better(name: str) -> bool:
    """Names with ``loss``, ``error``, ``perplexity`` or ``time`` are minimised."""
    return any(w in name.lower() for w in ("loss", "error", "perplexity", "time", "mse", "mae"))


class RunSummary(Callback):
    """At the end of ``train``/``fit``, logs (INFO, rank 0) and returns in ``summary``:

    * ``run/wall_time_s`` and ``run/steps_per_second`` (train steps / wall time);
    * the wall time split into ``run/data_wait_s`` (waiting for batches), ``run/step_s``
      (train step calls, unit hooks included), ``run/eval_s`` (whole evaluations inside
      ``fit``), ``run/checkpoint_s`` (what checkpointers report through
      ``_metric_state.add_time(state, "checkpoint", s)``) and ``run/callbacks_s`` (the rest:
      callback hooks and loop overhead);
    * ``best/<metric>`` for every scalar that appeared in ``state.metrics`` (lowest for names
      with ``loss``/``error``/``time``, highest otherwise);
    * after a test phase (``test()``, or fit's ``test_dataloader``, which runs after the train
      summary is logged), the ``test/<metric>`` values: added to ``summary`` and printed as
      "Test results" (the loggers get them from ``MetricsLogger``).

    Args:
        loggers: optional loggers that also receive the figures (at the last train step).

    Example:
        >>> from torchkit import fit
        >>> from torchkit.testing import DummyFitUnit, generate_random_dataloader
        >>> dl = generate_random_dataloader(8, 2, 2)
        >>> rs = RunSummary()
        >>> _ = fit(DummyFitUnit(2), dl, dl, max_epochs=2, callbacks=[rs])
        >>> sorted(k for k in rs.summary if k.startswith("best/"))
        ['best/eval/loss']
    """

    records_step_losses = True

    def __init__(self, loggers: MetricLogger | Sequence[MetricLogger] | None = None) -> None:
        self.loggers = as_logger_list("loggers", loggers) if loggers is not None else []
        self.summary: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self._t_start = 0.0
        self._t_eval_start = 0.0
        self._eval_s = 0.0
        self._wait_s = 0.0
        self._step_s = 0.0
        self._steps_at_start = 0

    def on_train_start(self, state: State, unit: Any) -> None:
        self._t_start = time.perf_counter()
        self._steps_at_start = unit.train_progress.num_steps_completed
        self._eval_s = self._wait_s = self._step_s = 0.0

    def on_train_step_end(self, state: State, unit: Any) -> None:
        # The wait of this step is recorded before its end hooks; its step time only after,
        # so add the *previous* step's duration (the last one is added in on_train_end).
        ts = state.train_state
        if ts is None:
            return
        durations = ts.iteration_timer.recorded_durations
        waits = durations["data_wait_time"]
        if waits:
            self._wait_s += waits[-1]
        if unit.train_progress.num_steps_completed_in_epoch > 1:
            steps = durations["train_iteration_time"]
            if steps:
                self._step_s += steps[-1]

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._add_last_step_time(state)
        self._track_best(state)

    def _add_last_step_time(self, state: State) -> None:
        ts = state.train_state
        steps = ts.iteration_timer.recorded_durations["train_iteration_time"] if ts else None
        if steps:
            self._step_s += steps[-1]

    def on_eval_start(self, state: State, unit: Any) -> None:
        self._t_eval_start = time.perf_counter()

    def on_eval_epoch_end(self, state: State, unit: Any) -> None:
        publish_eval(state, unit)
        self._track_best(state)

    def on_eval_end(self, state: State, unit: Any) -> None:
        if state.train_state is not None:
            self._eval_s += time.perf_counter() - self._t_eval_start

    def _track_best(self, state: State) -> None:
        for name, value in state.metrics.items():
            if not isinstance(value, (int, float)):
                continue
            best = self.best.get(name)
            lower = is_lower_better(name)
            if best is None or (value < best if lower else value > best):
                self.best[name] = float(value)

    def on_train_end(self, state: State, unit: Any) -> None:
        wall = time.perf_counter() - self._t_start
        steps = unit.train_progress.num_steps_completed - self._steps_at_start
        times = get_times(state)
        checkpoint = times.get("checkpoint", 0.0)
        # a save made inside a step hook or an eval is counted once, as checkpoint time
        self._step_s = max(self._step_s - times.get("checkpoint_in_train_step", 0.0), 0.0)
        self._eval_s = max(self._eval_s - times.get("checkpoint_in_eval", 0.0), 0.0)
        accounted = self._wait_s + self._step_s + self._eval_s + checkpoint
        self.summary = {
            "run/wall_time_s": wall,
            "run/steps_per_second": steps / wall if wall > 0 else 0.0,
            "run/data_wait_s": self._wait_s,
            "run/step_s": self._step_s,
            "run/eval_s": self._eval_s,
            "run/checkpoint_s": checkpoint,
            "run/callbacks_s": max(wall - accounted, 0.0),
            **{f"best/{k}": v for k, v in sorted(self.best.items())},
        }
        log_to_all(self.loggers, self.summary, unit.train_progress.num_steps_completed)
        if get_global_rank() == 0:
            logger.info("Run summary:\n%s", self.format())

    def on_test_epoch_end(self, state: State, unit: Any) -> None:
        # kept and printed, not sent to the loggers: MetricsLogger logs these very keys
        values = publish_test(state, unit)
        self.summary.update(values)
        if values and get_global_rank() == 0:
            lines = "\n".join(f"  {name:<32} {value:12.4g}" for name, value in values.items())
            logger.info("Test results:\n%s", lines)

    def format(self) -> str:
        """The summary as aligned ``name  value`` lines, with each time's share of the wall."""
        wall = self.summary.get("run/wall_time_s", 0.0)
        lines = []
        for name, value in self.summary.items():
            share = ""
            if name.endswith("_s") and name != "run/wall_time_s" and wall > 0:
                share = f"  ({100 * value / wall:5.1f}%)"
            lines.append(f"  {name:<32} {value:12.4g}{share}")
        return "\n".join(lines)
