"""``EmptyCudaCache``: releases cached CUDA memory every N steps."""

from __future__ import annotations

from typing import Any

import torch

from torchkit.callbacks._logging_utils import check_interval
from torchkit.callbacks.callback import Callback
from torchkit.loop.state import State


class EmptyCudaCache(Callback):
    """Calls ``torch.cuda.empty_cache()`` every ``step_interval`` train/eval steps (nothing
    happens without CUDA). Useful when memory fragments across phases of different shapes.

    Args:
        step_interval: steps between calls.

    Raises:
        ValueError: ``step_interval`` < 1.

    Example:
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1,
        ...           callbacks=[EmptyCudaCache(step_interval=1)])
    """

    def __init__(self, step_interval: int) -> None:
        self.step_interval = check_interval("step_interval", step_interval)
        self.num_calls = 0

    def _maybe_empty(self, progress: Any) -> None:
        if progress.num_steps_completed % self.step_interval == 0:
            self.num_calls += 1
            if torch.cuda.is_available() and _cuda_initialized():
                torch.cuda.empty_cache()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        self._maybe_empty(unit.train_progress)

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        self._maybe_empty(unit.eval_progress)


def _cuda_initialized() -> bool:
    """True once this process created a CUDA context (never creates one itself)."""
    return bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]
