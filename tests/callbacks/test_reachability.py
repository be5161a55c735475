"""Options that could never take effect in the run warn once at train start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import State, TrainUnit, fit, train
from torchkit.callbacks import (
    DistributedCheckpointSaver,
    IterationTimeLogger,
    LearningRateMonitor,
    TimeLimitInterrupter,
)
from torchkit.checkpoint import BestCheckpointConfig
from torchkit.loggers import InMemoryLogger


class NoOptimizerUnit(TrainUnit[Any]):
    def train_step(self, state: State, data: Any) -> None:
        return None


def _ckpt(tmp: Path, **kw: Any) -> DistributedCheckpointSaver:
    return DistributedCheckpointSaver(str(tmp / "ck"), preemption_signals=None, **kw)


@pytest.mark.parametrize(
    ("make", "unit", "message"),
    [
        (lambda t: _ckpt(t, save_every_n_eval_epochs=1), ClassifierUnit,
         "save_every_n_eval_epochs=1 never triggers: this train() run never evaluates"),
        (lambda t: _ckpt(t, best_checkpoint_config=BestCheckpointConfig("eval/loss")),
         ClassifierUnit, "monitors 'eval/loss', but this train() run never evaluates"),
        (lambda t: _ckpt(t, save_every_n_train_steps=50), ClassifierUnit,
         "save_every_n_train_steps=50 is larger than max_steps=4"),
        (lambda t: TimeLimitInterrupter("00:01:00", interval="step", interval_freq=9),
         ClassifierUnit, "interval_freq=9 is larger than max_steps=4"),
        (lambda t: IterationTimeLogger(InMemoryLogger(), every_n_steps=10), ClassifierUnit,
         "every_n_steps=10 is larger than max_steps=4"),
        (lambda t: LearningRateMonitor(InMemoryLogger()), NoOptimizerUnit,
         "NoOptimizerUnit tracks no optimizer"),
    ],
)  # fmt: skip
def test_options_that_never_take_effect_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make: Any, unit: Any, message: str
) -> None:
    with caplog.at_level("WARNING"):
        train(unit(), loader(16, 4), max_steps=4, callbacks=[make(tmp_path)])
    assert sum(message in r.getMessage() for r in caplog.records) == 1


def test_reachable_options_stay_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cbs = [
        _ckpt(tmp_path, save_every_n_eval_epochs=1, save_every_n_train_steps=2,
              best_checkpoint_config=BestCheckpointConfig("eval/loss")),
        TimeLimitInterrupter("00:01:00", interval="step", interval_freq=2),
        IterationTimeLogger(InMemoryLogger(), every_n_steps=2),
        LearningRateMonitor(InMemoryLogger()),
    ]  # fmt: skip
    with caplog.at_level("WARNING", logger="torchkit.callbacks"):
        fit(ClassifierUnit(), loader(16, 4), loader(8, 4), max_steps=4, callbacks=cbs)
    assert not [
        r for r in caplog.records if "never" in r.getMessage() or "larger" in r.getMessage()
    ]
