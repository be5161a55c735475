"""Stop conditions: max_steps / max_epochs / max_steps_per_epoch, stop(), resume, warnings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from torchkit import Progress, State, evaluate, fit, predict, train
from torchkit.callbacks import Lambda

from .recording import RecordingUnit, batches, progress_tuple


@pytest.mark.parametrize(
    ("max_epochs", "max_steps", "max_steps_per_epoch", "expected"),
    [
        # expected = (epochs, steps, steps_in_epoch, steps_in_prev_epoch); 4 batches per epoch
        (2, None, None, (2, 8, 0, 4)),
        (None, 6, None, (2, 6, 0, 2)),  # max_steps cuts epoch 2 short; it still counts
        (None, 8, None, (2, 8, 0, 4)),  # max_steps reached exactly at the end of the data
        (3, None, 3, (3, 9, 0, 3)),
        (3, 5, 3, (2, 5, 0, 2)),  # max_steps wins over max_epochs
        (1, 10, 10, (1, 4, 0, 4)),  # the data runs out first
        (5, 3, None, (1, 3, 0, 3)),
        (2, 0, None, (0, 0, 0, 0)),
        (0, None, None, (0, 0, 0, 0)),
        (2, None, 0, (2, 0, 0, 0)),  # empty epochs still count
        (2.0, 6.0, 3.0, (2, 6, 0, 3)),  # integral floats are accepted
    ],
)
def test_train_progress_counters(
    max_epochs: Any, max_steps: Any, max_steps_per_epoch: Any, expected: tuple[int, ...]
) -> None:
    unit = RecordingUnit()
    train(
        unit,
        batches(4),
        max_epochs=max_epochs,
        max_steps=max_steps,
        max_steps_per_epoch=max_steps_per_epoch,
    )
    assert progress_tuple(unit.train_progress) == expected
    assert unit.log.count("unit:train_step") == expected[1]
    assert unit.log.count("unit:on_train_epoch_end") == expected[0]
    assert unit.log.count("unit:on_train_end") == 1


def test_train_steps_really_update_the_model() -> None:
    unit = RecordingUnit()
    before = unit.net.weight.detach().clone()
    train(unit, batches(4), max_steps=3)
    assert not torch.equal(before, unit.net.weight)


@pytest.mark.parametrize(
    ("max_steps_per_epoch", "expected_steps"), [(None, 5), (2, 2), (5, 5), (9, 5), (0, 0)]
)
@pytest.mark.parametrize("entry", ["evaluate", "predict"])
def test_eval_and_predict_progress_counters(
    entry: str, max_steps_per_epoch: int | None, expected_steps: int
) -> None:
    unit = RecordingUnit()
    fn = evaluate if entry == "evaluate" else predict
    fn(unit, batches(5), max_steps_per_epoch=max_steps_per_epoch)
    progress = unit.eval_progress if entry == "evaluate" else unit.predict_progress
    assert progress_tuple(progress) == (1, expected_steps, 0, expected_steps)


def test_fit_progress_counters() -> None:
    unit = RecordingUnit()
    fit(
        unit,
        batches(4),
        batches(3),
        max_epochs=3,
        max_train_steps_per_epoch=3,
        max_eval_steps_per_epoch=2,
        evaluate_every_n_epochs=1,
    )
    assert progress_tuple(unit.train_progress) == (3, 9, 0, 3)
    assert progress_tuple(unit.eval_progress) == (3, 6, 0, 2)
    assert progress_tuple(unit.predict_progress) == (0, 0, 0, 0)


def test_fit_max_steps_ends_mid_epoch_and_epoch_still_closes() -> None:
    unit = RecordingUnit()
    fit(unit, batches(4), batches(1), max_steps=6, evaluate_every_n_epochs=1)
    assert progress_tuple(unit.train_progress) == (2, 6, 0, 2)
    # the epoch cut short by max_steps still closes, and its epoch-end eval runs
    assert unit.eval_progress.num_epochs_completed == 2


# stop() ----------------------------------------------------------------------------------


def _stop_at(step: int) -> Lambda:
    def fn(state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == step:
            state.stop()

    return Lambda(on_train_step_end=fn)


def test_stop_ends_after_current_step_and_epoch_still_closes() -> None:
    unit = RecordingUnit()
    state = train(unit, batches(4), max_epochs=5, callbacks=[_stop_at(3)])
    assert state.should_stop
    assert progress_tuple(unit.train_progress) == (1, 3, 0, 3)
    assert unit.log.count("unit:train_step") == 3
    assert unit.log.count("unit:on_train_epoch_end") == 1
    assert unit.log[-1] == "unit:on_train_end"
    # no further fetch after the stopping step
    assert unit.log.count("unit:get_next_train_batch") == 3


def test_stop_from_train_step_in_second_epoch() -> None:
    class StopUnit(RecordingUnit):
        def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
            out = super().train_step(state, data)
            if self.train_progress.num_steps_completed == 5:  # 6th step: counted after return
                state.stop()
            return out

    unit = StopUnit()
    train(unit, batches(4), max_epochs=5)
    assert progress_tuple(unit.train_progress) == (2, 6, 0, 2)


def test_stop_in_on_train_start_runs_no_epoch() -> None:
    unit = RecordingUnit()
    train(unit, batches(4), max_epochs=2, callbacks=[Lambda(on_train_start=lambda s, u: s.stop())])
    assert progress_tuple(unit.train_progress) == (0, 0, 0, 0)
    assert "unit:on_train_epoch_start" not in unit.log
    assert unit.log[-1] == "unit:on_train_end"


def test_stop_in_evaluate_ends_the_eval_epoch() -> None:
    unit = RecordingUnit()
    cb = Lambda(on_eval_step_end=lambda s, u: s.stop())
    evaluate(unit, batches(4), callbacks=[cb])
    assert progress_tuple(unit.eval_progress) == (1, 1, 0, 1)
    assert unit.log[-1] == "unit:on_eval_end"


def test_stop_during_eval_inside_fit_stops_training() -> None:
    unit = RecordingUnit()
    cb = Lambda(on_eval_step_end=lambda s, u: s.stop())
    fit(
        unit,
        batches(4),
        batches(3),
        max_epochs=3,
        evaluate_every_n_steps=2,
        evaluate_every_n_epochs=1,
        callbacks=[cb],
    )
    assert progress_tuple(unit.train_progress) == (1, 2, 0, 2)
    # the stopped eval still closes its epoch; the epoch-end eval then runs with 0 steps (TNT)
    assert progress_tuple(unit.eval_progress) == (2, 1, 0, 0)


def test_fit_counts_one_empty_eval_epoch_after_stop_as_tnt() -> None:
    unit = RecordingUnit()
    fit(unit, batches(2), batches(1), max_epochs=3, callbacks=[_stop_at(1)])
    assert progress_tuple(unit.train_progress) == (1, 1, 0, 1)
    # TNT runs the epoch-end eval after the stopped train epoch: it counts, with 0 steps
    assert progress_tuple(unit.eval_progress) == (1, 0, 0, 0)
    tail = unit.log[unit.log.index("unit:on_train_epoch_end") :]
    assert tail == [
        "unit:on_train_epoch_end", "unit:on_eval_start", "unit:on_eval_epoch_start",
        "unit:on_eval_epoch_end", "unit:on_eval_end", "unit:on_train_end",
    ]  # fmt: skip


# resume -----------------------------------------------------------------------------------


def test_resume_mid_epoch_skips_epoch_start_and_finishes_the_epoch() -> None:
    unit = RecordingUnit()
    unit.train_progress.load_state_dict(
        Progress(
            num_epochs_completed=1, num_steps_completed=6, num_steps_completed_in_epoch=2
        ).state_dict()
    )
    epoch_starts: list[int] = []
    cb = Lambda(
        on_train_epoch_start=lambda s, u: epoch_starts.append(u.train_progress.num_epochs_completed)
    )
    train(unit, batches(4), max_epochs=3, max_steps_per_epoch=4, callbacks=[cb])
    # the resumed epoch runs its 2 remaining steps; epoch 3 runs 4
    assert progress_tuple(unit.train_progress) == (3, 12, 0, 4)
    assert unit.log.count("unit:on_train_epoch_start") == 1
    assert epoch_starts == [2]  # only the fresh third epoch
    assert unit.log.count("unit:on_train_epoch_end") == 2


def test_resume_mid_epoch_at_max_epochs_boundary_runs_only_the_resumed_epoch() -> None:
    unit = RecordingUnit()
    unit.train_progress = Progress(1, 5, 1)
    train(unit, batches(4), max_epochs=2, max_steps_per_epoch=4)
    assert progress_tuple(unit.train_progress) == (2, 8, 0, 4)
    assert "unit:on_train_epoch_start" not in unit.log


class _ExhaustedThenFull:
    """An unsized loader restored at the end of its epoch: the first iterator yields nothing."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.iters = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.iters += 1
        if self.iters == 1:
            return iter([])
        return iter(batches(self.n))


def test_resuming_an_exhausted_epoch_is_not_an_error() -> None:
    unit = RecordingUnit()
    unit.train_progress = Progress(0, 4, 4)  # saved after the last step, before the epoch closed
    train(unit, _ExhaustedThenFull(4), max_epochs=2)
    assert progress_tuple(unit.train_progress) == (2, 8, 0, 4)


def test_train_is_done_when_resumed_at_max_steps() -> None:
    unit = RecordingUnit()
    unit.train_progress = Progress(2, 8, 0, 4)
    train(unit, batches(4), max_steps=8)
    assert progress_tuple(unit.train_progress) == (2, 8, 0, 4)
    assert "unit:train_step" not in unit.log
    assert unit.log == ["unit:on_train_start", "unit:on_train_end"]


# warning when unbounded ---------------------------------------------------------------------


def test_warns_when_neither_max_epochs_nor_max_steps(caplog: pytest.LogCaptureFixture) -> None:
    unit = RecordingUnit()
    with caplog.at_level(logging.WARNING, logger="torchkit.loop.train"):
        train(unit, batches(2), callbacks=[_stop_at(5)])
    warnings = [
        r
        for r in caplog.records
        if r.name == "torchkit.loop.train" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert "max_epochs" in warnings[0].getMessage()
    assert "max_steps" in warnings[0].getMessage()
    # "train: forever" - it kept going over epochs until stop()
    assert progress_tuple(unit.train_progress) == (3, 5, 0, 1)


def test_fit_warns_when_unbounded(caplog: pytest.LogCaptureFixture) -> None:
    unit = RecordingUnit()
    with caplog.at_level(logging.WARNING, logger="torchkit.loop.train"):
        fit(unit, batches(2), batches(1), callbacks=[_stop_at(1)])
    assert any(
        r.levelno == logging.WARNING and "max_epochs" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("kwargs", [{"max_epochs": 1}, {"max_steps": 1}])
def test_no_warning_when_bounded(caplog: pytest.LogCaptureFixture, kwargs: dict[str, int]) -> None:
    with caplog.at_level(logging.WARNING, logger="torchkit.loop.train"):
        train(RecordingUnit(), batches(2), **kwargs)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
