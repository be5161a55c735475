"""LearningRateMonitor logs exactly the LR each step uses."""

from __future__ import annotations

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import State, train
from torchkit.callbacks import LearningRateMonitor
from torchkit.loggers import InMemoryLogger


class ScheduledUnit(ClassifierUnit):
    def __init__(self) -> None:
        super().__init__(lr=1.0)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)

    def train_step(self, state: State, data: tuple[torch.Tensor, torch.Tensor]) -> object:
        out = super().train_step(state, data)
        self.scheduler.step()  # a per-step schedule, as AutoUnit steps it
        return out


def _expected_trajectory(n: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_interval_logs_the_exact_scheduler_trajectory() -> None:
    lg = InMemoryLogger()
    train(ScheduledUnit(), loader(24, 4), max_epochs=1, callbacks=[LearningRateMonitor(lg, "step")])
    logged = [lg.log_buffer[s]["lr-optimizer"] for s in sorted(lg.log_buffer)]
    assert sorted(lg.log_buffer) == list(range(6))
    assert logged == _expected_trajectory(6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_epoch_interval_and_param_groups() -> None:
    unit = ClassifierUnit()
    unit.optimizer = torch.optim.SGD(
        [{"params": [unit.module.weight], "lr": 0.1}, {"params": [unit.module.bias], "lr": 0.2}]
    )
    lg = InMemoryLogger()
    train(unit, loader(8, 4), max_epochs=2, callbacks=[LearningRateMonitor(lg, "epoch")])
    assert lg.log_buffer == {
        0: {"lr-optimizer/pg0": 0.1, "lr-optimizer/pg1": 0.2},
        2: {"lr-optimizer/pg0": 0.1, "lr-optimizer/pg1": 0.2},
    }


def test_bad_interval() -> None:
    with pytest.raises(ValueError, match=r"logging_interval='batch' is invalid"):
        LearningRateMonitor(InMemoryLogger(), "batch")  # type: ignore[arg-type]
