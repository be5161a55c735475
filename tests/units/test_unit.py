"""TrainUnit / EvalUnit / PredictUnit: hooks, abstract steps, default fetch, iterator detection."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import torch

from torchkit import EvalUnit, PredictUnit, Progress, State, TrainUnit
from torchkit.loop.state import EntryPoint
from torchkit.units.unit import step_requires_iterator

HOOKS = {
    TrainUnit: ["on_train_start", "on_train_epoch_start", "train_step", "on_train_epoch_end",
                "on_train_end", "on_exception", "on_checkpoint_save", "get_next_train_batch"],
    EvalUnit: ["on_eval_start", "on_eval_epoch_start", "eval_step", "on_eval_epoch_end",
               "on_eval_end", "on_exception", "on_checkpoint_save", "get_next_eval_batch"],
    PredictUnit: ["on_predict_start", "on_predict_epoch_start", "predict_step",
                  "on_predict_epoch_end", "on_predict_end", "on_exception", "on_checkpoint_save",
                  "get_next_predict_batch"],
}  # fmt: skip


@pytest.mark.parametrize("cls", [TrainUnit, EvalUnit, PredictUnit])
def test_unit_has_every_hook(cls: type) -> None:
    for name in HOOKS[cls]:
        assert callable(getattr(cls, name)), name
        assert getattr(cls, name).__doc__, f"{cls.__name__}.{name} has no docstring"


@pytest.mark.parametrize("cls", [TrainUnit, EvalUnit, PredictUnit])
def test_step_is_abstract(cls: type) -> None:
    with pytest.raises(TypeError, match="abstract"):
        cls()


class Fit(TrainUnit[torch.Tensor], EvalUnit[torch.Tensor]):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(1, 1)

    def train_step(self, state: State, data: torch.Tensor) -> Any:
        return data

    def eval_step(self, state: State, data: torch.Tensor) -> Any:
        return data


def test_fit_unit_owns_both_progresses() -> None:
    u = Fit()
    assert isinstance(u.train_progress, Progress)
    assert isinstance(u.eval_progress, Progress)
    assert u.train_progress is not u.eval_progress
    assert set(u.tracked_progress()) == {"train_progress", "eval_progress"}
    assert set(u.tracked_modules()) == {"net"}


@pytest.mark.parametrize("name", ["get_next_train_batch", "get_next_eval_batch"])
def test_default_fetch_is_next(name: str) -> None:
    u = Fit()
    state = State(entry_point=EntryPoint.FIT)
    it = iter([1, 2])
    assert getattr(u, name)(state, it) == 1
    assert getattr(u, name)(state, it) == 2
    with pytest.raises(StopIteration):
        getattr(u, name)(state, it)


def test_default_hooks_are_no_ops() -> None:
    u = Fit()
    state = State(entry_point=EntryPoint.FIT)
    for name in (
        "on_train_start",
        "on_train_epoch_start",
        "on_train_epoch_end",
        "on_train_end",
        "on_eval_start",
        "on_eval_epoch_start",
        "on_eval_epoch_end",
        "on_eval_end",
    ):
        assert getattr(u, name)(state) is None  # fmt: skip
    assert u.on_exception(state, RuntimeError()) is None
    assert u.on_checkpoint_save(state, "memory://ckpt") is None
    assert u.train_progress == Progress()


class _Steps:
    def plain(self, state: State, data: torch.Tensor) -> None: ...

    def abc_iter(self, state: State, data: Iterator[torch.Tensor]) -> None: ...

    def typing_iter(self, state: State, data: typing.Iterator[int]) -> None: ...

    def bare_iter(self, state: State, data: Iterator) -> None: ...  # type: ignore[type-arg]

    def iterable(self, state: State, data: Iterable[int]) -> None: ...

    def unannotated(self, state, data):  # type: ignore[no-untyped-def]
        ...

    def one_arg(self, state: State) -> None: ...

    def bad_hint(self, state: NotDefinedAnywhere, data: Iterator[int]) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    def bad_hint_plain(self, state: NotDefinedAnywhere, data: int) -> None: ...  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(
    ("name", "expected"),
    [("plain", False), ("abc_iter", True), ("typing_iter", True), ("bare_iter", True),
     ("iterable", False), ("unannotated", False), ("one_arg", False), ("bad_hint", True),
     ("bad_hint_plain", False)],
)  # fmt: skip
def test_step_requires_iterator(name: str, expected: bool) -> None:
    assert step_requires_iterator(getattr(_Steps(), name)) is expected
