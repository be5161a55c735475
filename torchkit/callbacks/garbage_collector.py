"""``GarbageCollector``: runs Python's garbage collector on a fixed step schedule."""

from __future__ import annotations

import gc
from typing import Any

from torchkit.callbacks._logging_utils import check_interval
from torchkit.callbacks.callback import Callback
from torchkit.loop.state import EntryPoint, State


class GarbageCollector(Callback):
    """Turns automatic GC off while a phase runs and collects on a fixed step schedule, so
    collection pauses happen at the same step on every rank instead of stalling collectives
    at random (TNT's ``GarbageCollector``). After every step it collects generation
    ``generation`` (1, a cheap collection); every ``step_interval`` steps it runs a full
    collection. Under ``fit`` the count is train and eval steps together, as in TNT. GC is
    turned back on at the end (when it was on before).

    Args:
        step_interval: steps between full collections.
        generation: generation collected after every step (0, 1 or 2).

    Raises:
        ValueError: ``step_interval`` < 1 or a generation outside 0..2.

    Example:
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[GarbageCollector(step_interval=2)])
        >>> gc.isenabled()
        True
    """

    def __init__(self, step_interval: int, *, generation: int = 1) -> None:
        self.step_interval = check_interval("step_interval", step_interval)
        if generation not in (0, 1, 2):
            raise ValueError(
                f"generation={generation!r} is invalid: expected 0, 1 or 2. Pass 1 (default) "
                "for a cheap collection or 2 for a full one."
            )
        self.generation = generation
        self._was_enabled: bool | None = None
        self._depth = 0

    def _start(self) -> None:
        if self._depth == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self._depth += 1

    def _end(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0 and self._was_enabled:
            gc.enable()

    def _step(self, total_steps: int) -> None:
        gc.collect(self.generation)
        if total_steps % self.step_interval == 0:
            gc.collect()

    @staticmethod
    def _fit_steps(state: State, unit: Any) -> int:
        """Train plus eval steps under ``fit`` (TNT counts both together)."""
        if state.entry_point is EntryPoint.FIT:
            return int(unit.train_progress.num_steps_completed) + int(
                unit.eval_progress.num_steps_completed
            )
        return -1

    def on_train_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        fit_steps = self._fit_steps(state, unit)
        self._step(fit_steps if fit_steps >= 0 else unit.train_progress.num_steps_completed)

    def on_train_end(self, state: State, unit: Any) -> None:
        self._end()

    def on_eval_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        fit_steps = self._fit_steps(state, unit)
        self._step(fit_steps if fit_steps >= 0 else unit.eval_progress.num_steps_completed)

    def on_eval_end(self, state: State, unit: Any) -> None:
        self._end()

    def on_predict_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_predict_step_end(self, state: State, unit: Any) -> None:
        self._step(unit.predict_progress.num_steps_completed)

    def on_predict_end(self, state: State, unit: Any) -> None:
        self._end()

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        self._depth = 1
        self._end()
