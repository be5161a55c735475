"""set_epoch, the epoch counter inside on_*_epoch_end, and fit's evaluation schedule."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

from torchkit import PhaseState, Progress, State, evaluate, fit, predict, train
from torchkit.callbacks import Lambda

from .recording import RecordingUnit, batches, progress_tuple


class RecordingSampler(SequentialSampler):  # type: ignore[type-arg]
    """A real sampler that records ``set_epoch`` calls."""

    def __init__(self, data_source: Any) -> None:
        super().__init__(data_source)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def _dataset(n: int = 4) -> TensorDataset:
    return TensorDataset(torch.arange(n * 2, dtype=torch.float32).reshape(n, 2))


class TupleUnit(RecordingUnit):
    """Accepts the 1-tuples a TensorDataset yields."""

    def train_step(self, state: State, data: Any) -> torch.Tensor:
        return super().train_step(state, data[0])

    def eval_step(self, state: State, data: Any) -> torch.Tensor:
        return super().eval_step(state, data[0])

    def predict_step(self, state: State, data: Any) -> torch.Tensor:
        return super().predict_step(state, data[0])


def _loader() -> tuple[DataLoader[Any], RecordingSampler]:
    ds = _dataset()
    sampler = RecordingSampler(ds)
    return DataLoader(ds, batch_size=2, sampler=sampler), sampler


def test_train_calls_set_epoch_with_the_epoch_number() -> None:
    dl, sampler = _loader()
    unit = TupleUnit()
    train(unit, dl, max_epochs=3)
    assert sampler.epochs == [0, 1, 2]
    assert unit.train_progress.num_steps_completed == 6


def test_set_epoch_called_before_the_epoch_iterates() -> None:
    dl, sampler = _loader()
    seen: list[list[int]] = []
    cb = Lambda(on_train_step_start=lambda s, u: seen.append(list(sampler.epochs)))
    train(TupleUnit(), dl, max_epochs=2, callbacks=[cb])
    assert seen == [[0], [0], [0, 1], [0, 1]]


def test_set_epoch_found_through_a_batch_sampler() -> None:
    ds = _dataset()
    sampler = RecordingSampler(ds)
    dl = DataLoader(ds, batch_sampler=BatchSampler(sampler, batch_size=2, drop_last=False))
    train(TupleUnit(), dl, max_epochs=2)
    assert sampler.epochs == [0, 1]


def test_set_epoch_called_on_the_resumed_epoch() -> None:
    dl, sampler = _loader()
    unit = TupleUnit()
    unit.train_progress = Progress(1, 3, 1)
    train(unit, dl, max_epochs=3, max_steps_per_epoch=2)
    assert sampler.epochs == [1, 2]
    assert progress_tuple(unit.train_progress) == (3, 6, 0, 2)


@pytest.mark.parametrize("entry", ["evaluate", "predict"])
def test_eval_and_predict_call_set_epoch(entry: str) -> None:
    dl, sampler = _loader()
    unit = TupleUnit()
    (evaluate if entry == "evaluate" else predict)(unit, dl)
    assert sampler.epochs == [0]


def test_fit_calls_set_epoch_on_both_loaders() -> None:
    train_dl, train_sampler = _loader()
    eval_dl, eval_sampler = _loader()
    fit(TupleUnit(), train_dl, eval_dl, max_epochs=3)
    assert train_sampler.epochs == [0, 1, 2]
    assert eval_sampler.epochs == [0, 1, 2]  # eval reuses eval_progress across evaluations


# epoch counter inside on_*_epoch_end ------------------------------------------------------------


@pytest.mark.parametrize("phase", ["train", "eval", "predict"])
def test_epoch_counter_inside_epoch_end_counts_the_finished_epoch(phase: str) -> None:
    seen: list[tuple[int, int, int]] = []

    def record(state: State, unit: Any) -> None:
        p = getattr(unit, f"{phase}_progress")
        seen.append(
            (p.num_epochs_completed, p.num_steps_completed_in_epoch,
             p.num_steps_completed_in_prev_epoch)
        )  # fmt: skip

    unit = RecordingUnit()
    unit_seen: list[int] = []
    setattr(
        unit,
        f"on_{phase}_epoch_end",
        lambda state: unit_seen.append(getattr(unit, f"{phase}_progress").num_epochs_completed),
    )
    cb = Lambda(**{f"on_{phase}_epoch_end": record})
    if phase == "train":
        train(unit, batches(3), max_epochs=2, callbacks=[cb])
        assert seen == [(1, 0, 3), (2, 0, 3)]
        assert unit_seen == [1, 2]
    else:
        fn = evaluate if phase == "eval" else predict
        fn(unit, batches(3), callbacks=[cb])
        assert seen == [(1, 0, 3)]
        assert unit_seen == [1]


def test_epoch_counter_inside_epoch_start_does_not_count_the_new_epoch() -> None:
    seen: list[int] = []
    cb = Lambda(
        on_train_epoch_start=lambda s, u: seen.append(u.train_progress.num_epochs_completed)
    )
    train(RecordingUnit(), batches(2), max_epochs=3, callbacks=[cb])
    assert seen == [0, 1, 2]


# evaluation schedule in fit ------------------------------------------------------------------


def _eval_points(**kwargs: Any) -> tuple[list[tuple[int, int]], RecordingUnit]:
    """(train global steps, train epochs) at each on_eval_start."""
    points: list[tuple[int, int]] = []
    cb = Lambda(
        on_eval_start=lambda s, u: points.append(
            (u.train_progress.num_steps_completed, u.train_progress.num_epochs_completed)
        )
    )
    unit = RecordingUnit()
    fit(unit, batches(3), batches(2), callbacks=[cb], **kwargs)
    return points, unit


def test_evaluate_every_n_steps_counts_global_steps_across_epochs() -> None:
    # 3 steps per epoch: per-epoch counting would give steps 2 and 5, global counting 2, 4, 6, 8
    points, unit = _eval_points(
        max_epochs=3, evaluate_every_n_steps=2, evaluate_every_n_epochs=None
    )
    assert [s for s, _ in points] == [2, 4, 6, 8]
    assert progress_tuple(unit.eval_progress) == (4, 8, 0, 2)


def test_evaluate_every_n_steps_after_resume_uses_the_global_count() -> None:
    points: list[int] = []
    cb = Lambda(on_eval_start=lambda s, u: points.append(u.train_progress.num_steps_completed))
    unit = RecordingUnit()
    unit.train_progress = Progress(1, 3, 0, 3)
    fit(unit, batches(3), batches(1), max_epochs=2, evaluate_every_n_steps=4,
        evaluate_every_n_epochs=None, callbacks=[cb])  # fmt: skip
    assert points == [4]


@pytest.mark.parametrize(
    ("every_n_epochs", "expected_epochs"), [(1, [1, 2, 3, 4]), (2, [2, 4]), (3, [3]), (5, [])]
)
def test_evaluate_every_n_epochs(every_n_epochs: int, expected_epochs: list[int]) -> None:
    points, unit = _eval_points(max_epochs=4, evaluate_every_n_epochs=every_n_epochs)
    assert [e for _, e in points] == expected_epochs
    assert [s for s, _ in points] == [3 * e for e in expected_epochs]
    assert unit.eval_progress.num_epochs_completed == len(expected_epochs)


def test_no_evaluation_when_both_intervals_are_off() -> None:
    points, unit = _eval_points(
        max_epochs=2, evaluate_every_n_steps=None, evaluate_every_n_epochs=None
    )
    assert points == []
    assert unit.train_progress.num_steps_completed == 6


def test_evaluate_every_n_settable_from_a_callback() -> None:
    points: list[int] = []

    def on_train_start(state: State, unit: Any) -> None:
        assert state.eval_state is not None
        state.eval_state.evaluate_every_n_steps = 2
        state.eval_state.evaluate_every_n_epochs = None

    cb = Lambda(
        on_train_start=on_train_start,
        on_eval_start=lambda s, u: points.append(u.train_progress.num_steps_completed),
    )
    fit(RecordingUnit(), batches(3), batches(1), max_epochs=2, callbacks=[cb])
    assert points == [2, 4, 6]


@pytest.mark.parametrize("attr", ["evaluate_every_n_steps", "evaluate_every_n_epochs"])
def test_phase_state_evaluate_every_n_setter_validates(attr: str) -> None:
    ps = PhaseState(dataloader=[1])
    setattr(ps, attr, 3)
    assert getattr(ps, attr) == 3
    setattr(ps, attr, 4.0)
    assert getattr(ps, attr) == 4 and isinstance(getattr(ps, attr), int)
    setattr(ps, attr, None)
    assert getattr(ps, attr) is None
    with pytest.raises(ValueError, match=rf"Invalid value provided for {attr}: 0\..*None"):
        setattr(ps, attr, 0)
    with pytest.raises(ValueError, match=rf"{attr}: -2"):
        setattr(ps, attr, -2)
    with pytest.raises(ValueError, match=rf"{attr}: 1\.5"):
        setattr(ps, attr, 1.5)
    with pytest.raises(TypeError, match=rf"{attr}: '2'"):
        setattr(ps, attr, "2")
    assert getattr(ps, attr) is None  # a rejected value leaves the old one


@pytest.mark.parametrize(
    "attr", ["dataloader", "max_epochs", "max_steps", "max_steps_per_epoch", "step_output"]
)
def test_phase_state_limits_are_read_only(attr: str) -> None:
    ps = PhaseState(dataloader=[1], max_epochs=1)
    with pytest.raises(AttributeError):
        setattr(ps, attr, 5)
