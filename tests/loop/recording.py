"""Shared helpers for the loop tests: a unit and callbacks that record every hook they see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from torchkit import EvalUnit, PredictUnit, State, TestUnit, TrainUnit
from torchkit.callbacks import Lambda
from torchkit.callbacks.callback import HOOK_NAMES

Batch = torch.Tensor

UNIT_HOOKS = (
    "on_train_start",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_train_end",
    "on_eval_start",
    "on_eval_epoch_start",
    "on_eval_epoch_end",
    "on_eval_end",
    "on_predict_start",
    "on_predict_epoch_start",
    "on_predict_epoch_end",
    "on_predict_end",
    "on_test_start",
    "on_test_epoch_start",
    "on_test_epoch_end",
    "on_test_end",
)


def batches(n: int, dim: int = 2, batch_size: int = 2) -> list[torch.Tensor]:
    """``n`` deterministic batches of shape ``(batch_size, dim)``; batch ``i`` is filled with i."""
    return [torch.full((batch_size, dim), float(i)) for i in range(n)]


class RecordingUnit(TrainUnit[Batch], EvalUnit[Batch], PredictUnit[Batch], TestUnit[Batch]):
    """A tiny real model whose hooks, fetches and steps append ``"unit:<name>"`` to ``log``."""

    def __init__(self, log: list[str] | None = None, dim: int = 2) -> None:
        super().__init__()
        self.log: list[str] = [] if log is None else log
        self.net = torch.nn.Linear(dim, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.exceptions: list[BaseException] = []

    # steps -----------------------------------------------------------------
    def train_step(self, state: State, data: Batch) -> torch.Tensor:
        self.log.append("unit:train_step")
        loss = self.net(data).pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.opt.zero_grad()
        return loss.detach()

    def eval_step(self, state: State, data: Batch) -> torch.Tensor:
        self.log.append("unit:eval_step")
        return self.net(data).sum()

    def predict_step(self, state: State, data: Batch) -> torch.Tensor:
        self.log.append("unit:predict_step")
        return self.net(data)

    def test_step(self, state: State, data: Batch) -> torch.Tensor:
        self.log.append("unit:test_step")
        return self.net(data).sum()

    # fetches ---------------------------------------------------------------
    def get_next_train_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        self.log.append("unit:get_next_train_batch")
        return next(data_iter)

    def get_next_eval_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        self.log.append("unit:get_next_eval_batch")
        return next(data_iter)

    def get_next_predict_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        self.log.append("unit:get_next_predict_batch")
        return next(data_iter)

    def get_next_test_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        self.log.append("unit:get_next_test_batch")
        return next(data_iter)

    def on_exception(self, state: State, exc: BaseException) -> None:
        self.log.append("unit:on_exception")
        self.exceptions.append(exc)


def _make_unit_hook(name: str) -> Any:
    def hook(self: RecordingUnit, state: State) -> None:
        self.log.append(f"unit:{name}")

    hook.__name__ = name
    return hook


for _name in UNIT_HOOKS:
    setattr(RecordingUnit, _name, _make_unit_hook(_name))


def recording_lambda(log: list[str], tag: str = "cb") -> Lambda:
    """A ``Lambda`` with every hook, each appending ``"<tag>:<hook>"`` to ``log``."""

    def make(hook: str) -> Any:
        if hook == "on_exception":
            return lambda state, unit, exc: log.append(f"{tag}:{hook}")
        return lambda state, unit: log.append(f"{tag}:{hook}")

    return Lambda(**{hook: make(hook) for hook in HOOK_NAMES})


def progress_tuple(progress: Any) -> tuple[int, int, int, int]:
    """``(epochs, steps, steps_in_epoch, steps_in_prev_epoch)``."""
    return (
        progress.num_epochs_completed,
        progress.num_steps_completed,
        progress.num_steps_completed_in_epoch,
        progress.num_steps_completed_in_prev_epoch,
    )
