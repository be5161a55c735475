"""Units by interface: objects with the unit methods run like subclasses, as in TNT."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit import State, TrainUnit, evaluate, fit, train
from torchkit.loop.progress import Progress


class DuckFitUnit:
    """Provides TrainUnit's and EvalUnit's methods without subclassing either."""

    def __init__(self) -> None:
        self.train_progress = Progress()
        self.eval_progress = Progress()
        self.net = torch.nn.Linear(2, 1)
        self.seen: list[str] = []

    def tracked_modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net}

    def get_next_train_batch(self, state: State, data_iter: Any) -> Any:
        return next(data_iter)

    def get_next_eval_batch(self, state: State, data_iter: Any) -> Any:
        return next(data_iter)

    def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self.seen.append(f"train:{self.net.training}")
        return self.net(data).sum()

    def eval_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self.seen.append(f"eval:{self.net.training}")
        return self.net(data).sum()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):  # every hook a no-op
            return lambda *args: None
        raise AttributeError(name)


def test_an_object_with_the_unit_methods_runs_train_evaluate_and_fit() -> None:
    data = [torch.ones(1, 2)] * 2
    unit = DuckFitUnit()
    fit(unit, data, data, max_epochs=2)
    assert unit.train_progress.num_steps_completed == 4
    assert unit.eval_progress.num_epochs_completed == 2
    assert unit.seen[:3] == ["train:True", "train:True", "eval:False"]
    train(DuckFitUnit(), data, max_epochs=1)
    evaluate(DuckFitUnit(), data)


class TrainOnlyDuck:
    train_progress = Progress()

    def train_step(self, state: State, data: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: train(DuckFitUnit, [1]), r"train_unit=DuckFitUnit is invalid for train\(\): "
         r"expected a unit instance, got the class. Instantiate it"),
        (lambda: fit(DuckFitUnit, [1], [1]), r"unit=DuckFitUnit is invalid for fit\(\): expected "
         r"a unit instance, got the class"),
        (lambda: train(TrainOnlyDuck(), [1]), r"train_unit=TrainOnlyDuck instance is invalid for "
         r"train\(\).*missing: get_next_train_batch, on_train_start"),
        (lambda: train(lambda s, d: None, [1]), r"train_unit=function instance is invalid"),
        (lambda: evaluate("unit", [1]), r"eval_unit=str instance is invalid for evaluate\(\)"),
        (lambda: fit(TrainOnlyDuck(), [1], [1]), r"unit=TrainOnlyDuck instance is invalid for "
         r"fit\(\).*missing: get_next_train_batch"),
    ],
)  # fmt: skip
def test_objects_without_the_unit_methods_are_clear_errors(call: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        call()


class _Batches(TrainUnit[Any]):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[float] = []

    def train_step(self, state: State, data: torch.Tensor) -> None:
        self.got.append(float(data))


def test_get_next_batch_is_used_as_the_train_fetch_hook() -> None:
    class Doubling(_Batches):
        def get_next_batch(self, state: State, data_iter: Any) -> torch.Tensor:
            return next(data_iter) * 2

    unit = Doubling()
    train(unit, [torch.tensor(1.0), torch.tensor(2.0)], max_epochs=1)
    assert unit.got == [2.0, 4.0]


def test_an_unrelated_get_next_batch_helper_is_left_alone() -> None:
    class Helper(_Batches):
        def get_next_batch(self) -> None:  # a helper of the user's, not a fetch hook
            raise AssertionError("must not be called")

    unit = Helper()
    train(unit, [torch.tensor(1.0)], max_epochs=1)
    assert unit.got == [1.0]


def test_both_fetch_hooks_is_a_clear_error() -> None:
    class Both(_Batches):
        def get_next_batch(self, state: State, data_iter: Any) -> Any:
            return next(data_iter)

        def get_next_train_batch(self, state: State, data_iter: Any) -> Any:
            return next(data_iter)

    with pytest.raises(TypeError, match=r"Both defines both get_next_batch and "
                       r"get_next_train_batch.*Keep get_next_train_batch"):  # fmt: skip
        train(Both(), [torch.tensor(1.0)], max_epochs=1)
