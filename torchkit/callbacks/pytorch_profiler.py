"""``PyTorchProfiler``: drives a ``torch.profiler.profile`` from the loop."""

from __future__ import annotations

from typing import Any

from torchkit.callbacks.callback import Callback
from torchkit.loop.state import EntryPoint, State


class PyTorchProfiler(Callback):
    """Starts ``profiler`` when a phase starts, calls ``profiler.step()`` after every step and
    stops it when the phase ends (or raises). Build the profiler with a ``schedule`` and an
    ``on_trace_ready`` handler to keep traces small.

    Args:
        profiler: a ``torch.profiler.profile`` (not yet started).

    Raises:
        TypeError: ``profiler`` has no ``start``/``step``/``stop``.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1,
        ...           callbacks=[PyTorchProfiler(prof)])
        >>> prof.step_num
        2
    """

    def __init__(self, profiler: Any) -> None:
        if not all(callable(getattr(profiler, m, None)) for m in ("start", "step", "stop")):
            raise TypeError(
                f"profiler={profiler!r} is invalid: expected a torch.profiler.profile. Pass "
                "e.g. torch.profiler.profile(schedule=torch.profiler.schedule(...))."
            )
        self.profiler = profiler
        self._running = False

    def _start(self) -> None:
        if not self._running:
            self.profiler.start()
            self._running = True

    def _stop(self) -> None:
        if self._running:
            self.profiler.stop()
            self._running = False

    def _step(self) -> None:
        if self._running:
            self.profiler.step()

    def on_train_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        self._step()

    def on_train_end(self, state: State, unit: Any) -> None:
        self._stop()

    def on_eval_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        self._step()

    def on_eval_end(self, state: State, unit: Any) -> None:
        if state.entry_point == EntryPoint.EVALUATE:  # inside fit, eval is part of training
            self._stop()

    def on_predict_start(self, state: State, unit: Any) -> None:
        self._start()

    def on_predict_step_end(self, state: State, unit: Any) -> None:
        self._step()

    def on_predict_end(self, state: State, unit: Any) -> None:
        self._stop()

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        self._stop()
