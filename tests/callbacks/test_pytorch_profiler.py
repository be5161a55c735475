"""PyTorchProfiler starts, steps and stops a real profiler."""

from __future__ import annotations

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import PyTorchProfiler


def test_steps_once_per_train_step_and_records_ops() -> None:
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
    train(ClassifierUnit(), loader(12, 4), max_epochs=1, callbacks=[PyTorchProfiler(prof)])
    assert prof.step_num == 3
    assert any("linear" in e.key for e in prof.key_averages())


def test_rejects_non_profiler() -> None:
    with pytest.raises(TypeError, match=r"profiler=1 is invalid"):
        PyTorchProfiler(1)
