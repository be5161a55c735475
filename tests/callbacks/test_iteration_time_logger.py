"""IterationTimeLogger logs the loop's own step durations."""

from __future__ import annotations

import time

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import State, train
from torchkit.callbacks import IterationTimeLogger
from torchkit.loggers import InMemoryLogger


class SlowUnit(ClassifierUnit):
    def train_step(self, state: State, data: object) -> object:
        time.sleep(0.01)
        return super().train_step(state, data)  # type: ignore[arg-type]


def test_logs_recent_step_time() -> None:
    lg = InMemoryLogger()
    train(SlowUnit(), loader(16, 4), max_epochs=1,
          callbacks=[IterationTimeLogger(lg, every_n_steps=2, moving_avg_window=2)])  # fmt: skip
    assert sorted(lg.log_buffer) == [2, 4]
    assert 0.01 <= lg.log_buffer[4]["train/iteration_time_s"] < 1.0


def test_bad_window() -> None:
    with pytest.raises(ValueError, match=r"moving_avg_window=0 is invalid"):
        IterationTimeLogger(InMemoryLogger(), moving_avg_window=0)


def test_tnt_positional_arguments_and_default_every_step() -> None:
    lg, every = InMemoryLogger(), InMemoryLogger()
    cbs = [IterationTimeLogger(lg, 2, 2), IterationTimeLogger(every)]  # window 2, every 2 steps
    train(ClassifierUnit(), loader(16, 4), max_epochs=1, callbacks=cbs)
    assert sorted(lg.log_buffer) == [2, 4]
    # TNT's default, every step; the first step's duration is not recorded yet in its hooks
    assert sorted(every.log_buffer) == [2, 3, 4]
