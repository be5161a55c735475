"""AsyncEvaluator: background evaluation of published snapshots, logged at their train step."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.live.units import OnStep
from torchkit import EvalUnit, State, TrainUnit, evaluate, train
from torchkit.live import AsyncEvaluator, LiveModel, PublishWeights
from torchkit.loggers import InMemoryLogger

Batch = tuple[torch.Tensor, torch.Tensor]


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long())


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


class Classifier(TrainUnit[Batch]):
    def __init__(self) -> None:
        super().__init__()
        self.module = _net()
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=0.2)

    def train_step(self, state: State, data: Batch) -> None:
        x, y = data
        nn.functional.cross_entropy(self.module(x), y).backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


def accuracy(module: nn.Module, batches: Iterable[Batch]) -> dict[str, torch.Tensor]:
    correct = total = 0
    for x, y in batches:
        correct += int((module(x).argmax(1) == y).sum())
        total += len(y)
    return {"accuracy": torch.tensor(correct / total)}


class AccuracyEval(EvalUnit[Batch]):
    """The synchronous reference: torchkit's ``evaluate`` on a copy of the weights."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.correct = self.total = 0

    def eval_step(self, state: State, data: Batch) -> None:
        x, y = data
        self.correct += int((self.module(x).argmax(1) == y).sum())
        self.total += len(y)


def _loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    # both draw from the global RNG: the train loader shuffles, and every DataLoader iterator
    # draws a base seed (the eval one too) unless given its own generator
    train_dl = DataLoader(_data(96, 0), batch_size=8, shuffle=True)
    eval_dl = DataLoader(_data(64, 1), batch_size=16, shuffle=True)
    return train_dl, eval_dl


def _run(with_evaluator: bool) -> tuple[Classifier, LiveModel, InMemoryLogger, dict[int, Any]]:
    torch.manual_seed(0)
    unit = Classifier()
    live = LiveModel.from_module(unit.module)
    lg = InMemoryLogger()
    published: dict[int, Any] = {}

    def keep(state: Any, u: Classifier) -> None:  # the weights published at each step
        with live.acquire() as snap:
            if snap.train_step not in published:
                published[snap.train_step] = {
                    k: v.clone() for k, v in snap.module.state_dict().items()
                }

    train_dl, eval_dl = _loaders()
    cbs: list[Any] = [PublishWeights(live, every_n_train_steps=2), OnStep(keep)]
    if with_evaluator:
        cbs.append(AsyncEvaluator(live, eval_dl, accuracy, lg))
    train(unit, train_dl, max_epochs=3, callbacks=cbs)
    return unit, live, lg, published


def test_logged_accuracy_equals_a_synchronous_evaluate_of_the_published_weights() -> None:
    _, _, lg, published = _run(with_evaluator=True)
    logged = {s: v["async_eval/accuracy"] for s, v in lg.log_buffer.items()}
    assert 2 in logged and 36 in logged  # the first publish and the end of training
    _, eval_dl = _loaders()
    for step, value in logged.items():
        module = _net()
        module.load_state_dict(published[step])
        ref = AccuracyEval(module)
        evaluate(ref, eval_dl)
        assert value == ref.correct / ref.total, step
    assert not any(t.name == "AsyncEvaluator" for t in threading.enumerate())


def test_training_is_bit_identical_with_and_without_it() -> None:
    with_eval, _, lg, _ = _run(with_evaluator=True)
    without, _, _, _ = _run(with_evaluator=False)
    assert len(lg.log_buffer) >= 2
    for a, b in zip(with_eval.module.state_dict().values(), without.module.state_dict().values()):
        assert torch.equal(a, b)


def broken_evaluation(module: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
    raise ArithmeticError("evaluation failed")


def test_an_evaluation_error_is_raised_in_the_training_thread_with_its_traceback() -> None:
    unit = Classifier()
    live = LiveModel.from_module(unit.module)
    train_dl, eval_dl = _loaders()
    cbs = [
        PublishWeights(live, every_n_train_steps=1),
        AsyncEvaluator(live, eval_dl, broken_evaluation, InMemoryLogger()),
    ]
    with pytest.raises(ArithmeticError, match="evaluation failed") as info:
        train(unit, train_dl, max_epochs=3, callbacks=cbs)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "broken_evaluation" in frames  # the original traceback, from the thread
    assert {"on_train_step_end", "on_train_end"} & set(frames)  # raised at a step boundary
    assert not any(t.name == "AsyncEvaluator" for t in threading.enumerate())
    assert all(s.readers == 0 for s in live._slots)  # the evaluation's hold was released


def test_bad_arguments() -> None:
    live = LiveModel.from_module(_net())
    with pytest.raises(TypeError, match=r"evaluate_fn=3 is invalid: expected a callable"):
        AsyncEvaluator(live, [], 3, [])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"live=None is invalid: expected a torchkit.live.LiveModel"
    ):
        AsyncEvaluator(None, [], accuracy, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"loggers\[0\]=1 is invalid"):
        AsyncEvaluator(live, [], accuracy, [1])  # type: ignore[list-item]
