"""The always-on iteration timer, a user Timer, and steps that take the data iterator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from torchkit import EvalUnit, PredictUnit, State, TrainUnit, evaluate, fit, predict, train
from torchkit.callbacks import Lambda
from torchkit.utils import Timer

from .recording import RecordingUnit, batches


def _capture_state() -> tuple[list[State], Lambda]:
    states: list[State] = []
    cb = Lambda(
        on_train_end=lambda s, u: states.append(s),
        on_eval_end=lambda s, u: states.append(s),
        on_predict_end=lambda s, u: states.append(s),
    )
    return states, cb


@pytest.mark.parametrize(
    ("entry", "phase"), [("train", "train"), ("evaluate", "eval"), ("predict", "predict")]
)
def test_iteration_timer_records_wait_and_step_times(entry: str, phase: str) -> None:
    states, cb = _capture_state()
    unit = RecordingUnit()
    if entry == "train":
        train(unit, batches(3), max_epochs=2, callbacks=[cb])
        n = 6
    else:
        (evaluate if entry == "evaluate" else predict)(unit, batches(3), callbacks=[cb])
        n = 3
    ps = getattr(states[-1], f"{phase}_state")
    durations = ps.iteration_timer.recorded_durations
    assert set(durations) == {"data_wait_time", f"{phase}_iteration_time"}
    assert len(durations["data_wait_time"]) == n
    assert len(durations[f"{phase}_iteration_time"]) == n
    assert all(d >= 0 for d in durations["data_wait_time"])
    assert all(d >= 0 for d in durations[f"{phase}_iteration_time"])


def test_iteration_timer_is_bounded() -> None:
    states, cb = _capture_state()
    train(RecordingUnit(), batches(2), max_steps=1500, callbacks=[cb])
    timer = states[-1].train_state.iteration_timer  # type: ignore[union-attr]
    assert len(timer.recorded_durations["train_iteration_time"]) == timer.max_len == 1000


def test_fit_keeps_train_and_eval_iteration_timers_apart() -> None:
    unit = RecordingUnit()
    state = fit(unit, batches(3), batches(2), max_epochs=2)
    assert state.train_state is not None and state.eval_state is not None
    train_d = state.train_state.iteration_timer.recorded_durations
    eval_d = state.eval_state.iteration_timer.recorded_durations
    assert len(train_d["train_iteration_time"]) == 6
    assert len(eval_d["eval_iteration_time"]) == 4
    assert "eval_iteration_time" not in train_d


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict"])
def test_user_timer_records_next_data_iter(entry: str) -> None:
    timer = Timer()
    unit = RecordingUnit()
    if entry == "train":
        train(unit, batches(3), max_epochs=1, timer=timer)
    else:
        (evaluate if entry == "evaluate" else predict)(unit, batches(3), timer=timer)
    key = f"{entry}.next(data_iter)"
    # three batches plus the fetch that raised StopIteration
    assert len(timer.recorded_durations[key]) == 4
    assert all(d >= 0 for d in timer.recorded_durations[key])


def test_user_timer_in_fit_records_both_phases() -> None:
    timer = Timer()
    fit(RecordingUnit(), batches(2), batches(2), max_epochs=1, timer=timer)
    assert len(timer.recorded_durations["train.next(data_iter)"]) == 3
    assert len(timer.recorded_durations["evaluate.next(data_iter)"]) == 3


def test_no_user_timer_leaves_state_timer_none() -> None:
    state = train(RecordingUnit(), batches(1), max_epochs=1)
    assert state.timer is None


# steps annotated with Iterator[...] ----------------------------------------------------------


class IterTrainUnit(TrainUnit[Iterator[torch.Tensor]]):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.received: list[Any] = []

    def train_step(self, state: State, data: Iterator[torch.Tensor]) -> Any:
        self.received.append(data)
        a, b = next(data), next(data)  # two batches per step
        return self.net(a).sum() + self.net(b).sum()


class IterEvalUnit(EvalUnit[Iterator[torch.Tensor]]):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []

    def eval_step(self, state: State, data: Iterator[torch.Tensor]) -> Any:
        self.received.append(data)
        return next(data)


class IterPredictUnit(PredictUnit[Iterator[torch.Tensor]]):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []

    def predict_step(self, state: State, data: Iterator[torch.Tensor]) -> Any:
        self.received.append(data)
        return next(data)


def test_train_step_annotated_iterator_receives_the_iterator() -> None:
    unit = IterTrainUnit()
    train(unit, batches(4), max_epochs=2)
    assert all(isinstance(d, Iterator) for d in unit.received)
    assert not any(isinstance(d, torch.Tensor) for d in unit.received)
    # two steps per epoch consume 4 batches; the third call hits StopIteration and ends it
    assert unit.train_progress.num_steps_completed == 4
    assert unit.train_progress.num_epochs_completed == 2
    assert len(unit.received) == 6


@pytest.mark.parametrize("cls", [IterEvalUnit, IterPredictUnit])
def test_eval_and_predict_steps_annotated_iterator(cls: type) -> None:
    unit = cls()
    if cls is IterEvalUnit:
        evaluate(unit, batches(3))
        progress = unit.eval_progress
    else:
        predict(unit, batches(3))
        progress = unit.predict_progress
    assert progress.num_steps_completed == 3
    assert len({id(d) for d in unit.received}) == 1  # one iterator for the whole epoch


def test_plain_annotation_receives_batches() -> None:
    unit = RecordingUnit()
    seen: list[Any] = []
    orig = unit.train_step

    def step(state: State, data: torch.Tensor) -> Any:
        seen.append(data)
        return orig(state, data)

    unit.train_step = step  # type: ignore[method-assign]
    train(unit, batches(2), max_epochs=1)
    assert [d[0, 0].item() for d in seen] == [0.0, 1.0]


class IterUnitWithUnresolvableHint(TrainUnit[Any]):
    """``state`` is annotated with a name that only exists for type checkers."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []

    def train_step(self, state: OnlyForTypeCheckers, data: Iterator[torch.Tensor]) -> Any:  # type: ignore[name-defined]  # noqa: F821
        self.received.append(data)
        return next(data)


def test_iterator_annotation_detected_when_another_hint_does_not_resolve() -> None:
    unit = IterUnitWithUnresolvableHint()
    train(unit, batches(2), max_epochs=1)
    assert all(isinstance(d, Iterator) for d in unit.received)
    assert unit.train_progress.num_steps_completed == 2
