"""TrainProgressMonitor maps train steps to completed epochs."""

from __future__ import annotations

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import TrainProgressMonitor
from torchkit.loggers import InMemoryLogger


def test_logs_epochs_at_steps() -> None:
    lg = InMemoryLogger()
    train(ClassifierUnit(), loader(12, 4), max_epochs=2, callbacks=[TrainProgressMonitor(lg)])
    assert lg.log_buffer == {
        0: {"train/epochs_completed": 0.0},
        3: {"train/epochs_completed": 1.0},
        6: {"train/epochs_completed": 2.0},
    }
