"""TrainProgressMonitor maps train steps to completed epochs."""

from __future__ import annotations

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import TrainProgressMonitor
from torchkit.loggers import InMemoryLogger


def test_logs_epochs_at_steps() -> None:
    lg = InMemoryLogger()
    train(ClassifierUnit(), loader(12, 4), max_epochs=2, callbacks=[TrainProgressMonitor(lg)])
    key = "train/epochs_completed"
    epochs = {k: v[key] for k, v in lg.log_buffer.items() if key in v}
    assert epochs == {0: 0.0, 3: 1.0, 6: 2.0}


def test_logs_tnt_key_steps_against_epochs() -> None:
    lg = InMemoryLogger()
    train(ClassifierUnit(), loader(12, 4), max_epochs=2, callbacks=[TrainProgressMonitor(lg)])
    key = "Training steps completed vs epochs"
    assert {k: v[key] for k, v in lg.log_buffer.items() if key in v} == {0: 0.0, 1: 3.0, 2: 6.0}
