"""Module train/eval modes per phase (restored after) and grad mode per phase."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit import Callback, State, evaluate, fit, predict, train

from .recording import RecordingUnit, batches


class ModeUnit(RecordingUnit):
    """Records (phase, net.training, frozen submodule .training) at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.0))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.modes: list[tuple[str, bool, bool]] = []

    def _record(self, phase: str) -> None:
        self.modes.append((phase, self.net.training, self.net[1].training))

    def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("train")
        return super().train_step(state, data)

    def eval_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("eval")
        return super().eval_step(state, data)

    def predict_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("predict")
        return super().predict_step(state, data)


def _run(entry: str, unit: Any, **kwargs: Any) -> None:
    if entry == "train":
        train(unit, batches(2), max_epochs=1, **kwargs)
    elif entry == "evaluate":
        evaluate(unit, batches(2), **kwargs)
    elif entry == "predict":
        predict(unit, batches(2), **kwargs)
    else:
        fit(unit, batches(2), batches(1), max_epochs=2, **kwargs)


@pytest.mark.parametrize(
    ("entry", "expected_during"),
    [
        ("train", {("train", True, True)}),
        ("evaluate", {("eval", False, False)}),
        ("predict", {("predict", False, False)}),
        ("fit", {("train", True, True), ("eval", False, False)}),
    ],
)
@pytest.mark.parametrize("start_training", [True, False])
def test_modes_set_during_phase_and_restored_after(
    entry: str, expected_during: set[tuple[str, bool, bool]], start_training: bool
) -> None:
    unit = ModeUnit()
    unit.net.train(start_training)
    unit.net[1].eval()  # a submodule deliberately frozen in eval mode
    _run(entry, unit)
    assert set(unit.modes) == expected_during
    assert unit.net.training is start_training
    assert unit.net[0].training is start_training
    assert unit.net[1].training is False


def test_fit_returns_to_train_mode_after_each_eval() -> None:
    unit = ModeUnit()
    fit(unit, batches(2), batches(1), max_epochs=1, evaluate_every_n_steps=1)
    phases = [(p, t) for p, t, _ in unit.modes]
    # train, eval, train, eval, then the epoch-end eval
    assert phases == [
        ("train", True),
        ("eval", False),
        ("train", True),
        ("eval", False),
        ("eval", False),
    ]


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict", "fit"])
def test_modes_restored_after_an_exception(entry: str) -> None:
    class Boom(ModeUnit):
        def _record(self, phase: str) -> None:
            super()._record(phase)
            raise RuntimeError("boom")

    unit = Boom()
    unit.net.train(entry != "train")  # the opposite of what the phase sets
    unit.net[1].eval()
    with pytest.raises(RuntimeError, match="boom"):
        _run(entry, unit)
    assert unit.net.training is (entry != "train")
    assert unit.net[1].training is False


# grad mode --------------------------------------------------------------------------------


class GradUnit(RecordingUnit):
    def __init__(self) -> None:
        super().__init__()
        self.grad: list[tuple[str, bool, bool]] = []

    def _record(self, phase: str) -> None:
        self.grad.append((phase, torch.is_grad_enabled(), torch.is_inference_mode_enabled()))

    def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("train")
        return super().train_step(state, data)

    def eval_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("eval")
        out = super().eval_step(state, data)
        assert not out.requires_grad
        return out

    def predict_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._record("predict")
        out = super().predict_step(state, data)
        assert not out.requires_grad
        return out


@pytest.mark.parametrize(
    ("entry", "outer", "expected"),
    [
        # train enables grad even when the caller disabled it
        ("train", torch.no_grad, {("train", True, False)}),
        ("evaluate", torch.enable_grad, {("eval", False, False)}),
        ("predict", torch.enable_grad, {("predict", False, True)}),
        ("fit", torch.no_grad, {("train", True, False), ("eval", False, False)}),
    ],
)
def test_grad_mode_per_phase(entry: str, outer: Any, expected: set[tuple[str, bool, bool]]) -> None:
    unit = GradUnit()
    with outer():
        _run(entry, unit)
    assert set(unit.grad) == expected
    assert len(unit.grad) == {"train": 2, "evaluate": 2, "predict": 2, "fit": 6}[entry]


def test_grad_mode_restored_after_each_entry_point() -> None:
    unit = GradUnit()
    with torch.no_grad():
        train(unit, batches(1), max_epochs=1)
        assert not torch.is_grad_enabled()
    predict(unit, batches(1))
    assert torch.is_grad_enabled()
    assert not torch.is_inference_mode_enabled()


def test_predict_uses_no_grad_when_a_callback_requires_it() -> None:
    class NeedsNoGrad(Callback):
        requires_no_grad = True

    unit = GradUnit()
    predict(unit, batches(2), callbacks=[NeedsNoGrad()])
    assert set(unit.grad) == {("predict", False, False)}


def test_tensors_created_in_train_step_track_grad_after_eval_in_fit() -> None:
    # A train step after an in-fit evaluation must be back under enable_grad.
    unit = GradUnit()
    fit(unit, batches(3), batches(1), max_epochs=1, evaluate_every_n_steps=1)
    train_records = [g for g in unit.grad if g[0] == "train"]
    assert train_records == [("train", True, False)] * 3
