"""TensorBoardParameterMonitor writes parameter histograms per epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import TensorBoardParameterMonitor
from torchkit.loggers import InMemoryLogger, TensorBoardLogger


def test_histograms_per_parameter_and_epoch(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(str(tmp_path))
    train(ClassifierUnit(), loader(8, 4), max_epochs=2,
          callbacks=[TensorBoardParameterMonitor(tb)])  # fmt: skip
    tb.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    acc.Reload()
    assert set(acc.Tags()["histograms"]) == {"parameters/module.weight", "parameters/module.bias"}
    assert [e.step for e in acc.Histograms("parameters/module.weight")] == [1, 2]


def test_needs_a_histogram_logger() -> None:
    with pytest.raises(TypeError, match=r"logger=.* is invalid: expected a TensorBoardLogger"):
        TensorBoardParameterMonitor(InMemoryLogger())
