"""TimeWaitForBatchLogger reports time spent waiting for data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import torch

from tests.callbacks._units import ClassifierUnit
from torchkit import train
from torchkit.callbacks import TimeWaitForBatchLogger
from torchkit.loggers import InMemoryLogger


class SlowLoader:
    def __len__(self) -> int:
        return 4

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(4):
            time.sleep(0.02)
            yield torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)


def test_logs_data_wait() -> None:
    lg = InMemoryLogger()
    train(ClassifierUnit(), SlowLoader(), max_epochs=1,
          callbacks=[TimeWaitForBatchLogger(lg, every_n_steps=2)])  # fmt: skip
    assert sorted(lg.log_buffer) == [2, 4]
    assert 0.02 <= lg.log_buffer[4]["train/data_wait_time_s"] < 1.0


def test_bad_interval() -> None:
    with pytest.raises(ValueError, match=r"every_n_steps=-3 is invalid"):
        TimeWaitForBatchLogger(InMemoryLogger(), every_n_steps=-3)


def test_tnt_arguments_log_every_n_steps_and_warmup_steps() -> None:
    from tests.callbacks._units import loader

    lg = InMemoryLogger()
    cb = TimeWaitForBatchLogger(lg, log_every_n_steps=1, warmup_steps=2)
    train(ClassifierUnit(), loader(16, 4), max_epochs=1, callbacks=[cb])
    assert sorted(lg.log_buffer) == [3, 4]  # every step after the first two


def test_both_interval_spellings_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"every_n_steps=2, log_every_n_steps=3 is invalid"):
        TimeWaitForBatchLogger(InMemoryLogger(), log_every_n_steps=3, every_n_steps=2)
