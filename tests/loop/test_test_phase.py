"""TNT's test phase: ``TestUnit``, ``test()``, ``fit(test_dataloader=...)``, ``on_test_*``."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
import torch

import torchkit
from torchkit import (
    ActivePhase,
    Callback,
    EntryPoint,
    EvalUnit,
    Phase,
    State,
    TestUnit,
    TrainUnit,
    fit,
    test,  # an entry point named test: pytest must not collect it (``__test__ = False``)
)
from torchkit.callbacks import DistributedCheckpointSaver, EarlyStopping, Lambda, TQDMProgressBar
from torchkit.utils import EarlyStopChecker, Timer

from .recording import RecordingUnit, batches, recording_lambda

Batch = torch.Tensor


class FitAndTest(TrainUnit[Batch], EvalUnit[Batch], TestUnit[Batch]):
    """A real linear model; ``test_step`` records what the test phase sees."""

    def __init__(self, stop_at_step: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.5))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        self.stop_at_step = stop_at_step
        self.seen: list[dict[str, Any]] = []
        self.val_loss = 0.0

    def train_step(self, state: State, data: Batch) -> torch.Tensor:
        loss = self.net(data).pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.opt.zero_grad()
        if self.train_progress.num_steps_completed + 1 == self.stop_at_step:
            state.stop()
        return loss.detach()

    def eval_step(self, state: State, data: Batch) -> torch.Tensor:
        return self.net(data).sum()

    def test_step(self, state: State, data: Batch) -> torch.Tensor:
        self.seen.append(
            {
                "grad": torch.is_grad_enabled(),
                "training": [m.training for m in self.net.modules()],
                "phase": state.active_phase,
                "entry": state.entry_point,
                "weight": self.net[0].weight.detach().clone(),
                "train_steps": self.train_progress.num_steps_completed,
            }
        )
        return self.net(data).sum()


# -- test() ---------------------------------------------------------------------------------


def test_test_runs_one_epoch_in_eval_mode_under_no_grad_and_restores_modes() -> None:
    unit = FitAndTest()
    unit.net[1].eval()  # a submodule the user froze stays frozen afterwards
    assert test(unit, batches(3)) is None
    assert len(unit.seen) == 3
    assert all(not s["grad"] and s["training"] == [False, False, False] for s in unit.seen)
    assert all(s["phase"] is ActivePhase.TEST and s["entry"] is EntryPoint.TEST for s in unit.seen)
    assert [m.training for m in unit.net.modules()] == [True, True, False]
    p = unit.test_progress
    assert (p.num_epochs_completed, p.num_steps_completed, p.num_steps_completed_in_epoch) == (
        1, 3, 0,
    )  # fmt: skip
    test(unit, batches(2), max_steps_per_epoch=1)
    p = unit.test_progress
    assert (p.num_epochs_completed, p.num_steps_completed) == (2, 4)


def test_test_phase_names() -> None:
    assert str(ActivePhase.TEST) == "test" and ActivePhase.TEST.into_phase() is Phase.TEST
    assert torchkit.test is test and torchkit.loop.test is test
    assert test.__test__ is False  # type: ignore[attr-defined]
    assert State(entry_point=EntryPoint.TEST).test_state is None


def test_test_step_output_and_timer() -> None:
    outputs: list[Any] = []
    timer = Timer()
    cb = Lambda(on_test_step_end=lambda s, u: outputs.append(s.test_state.step_output))
    test(RecordingUnit(), batches(2), callbacks=[cb], timer=timer)
    assert len(outputs) == 2 and all(isinstance(o, torch.Tensor) for o in outputs)
    names = set(timer.recorded_durations)
    assert {"test.iter(dataloader)", "test.test_step", "test.next(data_iter)"} <= names


def test_iterator_annotated_test_step_receives_the_iterator() -> None:
    from collections.abc import Iterator

    class Consumes(TestUnit[Batch]):
        def __init__(self) -> None:
            super().__init__()
            self.got: list[int] = []

        def test_step(self, state: State, data: Iterator[Batch]) -> None:
            self.got.append(int(next(data)[0, 0]))

    unit = Consumes()
    test(unit, batches(3))
    assert unit.got == [0, 1, 2] and unit.test_progress.num_steps_completed == 3


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((RecordingUnit, [1]), {}, TypeError, r"test_unit=RecordingUnit is invalid.*Instantiate"),
        ((object(), [1]), {}, TypeError, r"torchkit\.TestUnit.*missing: test_step"),
        ((RecordingUnit(), 5), {}, TypeError, r"test_dataloader=5 is invalid"),
        ((RecordingUnit(), []), {}, ValueError, r"test_dataloader=\[\] is invalid.*length 0"),
        ((RecordingUnit(), [1]), {"max_steps_per_epoch": -1}, ValueError,
         r"max_steps_per_epoch: -1"),
    ],
)  # fmt: skip
def test_bad_test_arguments_raise_before_any_hook(
    args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    log: list[str] = []
    with pytest.raises(exc, match=match):
        test(*args, callbacks=[recording_lambda(log)], **kwargs)
    assert log == []


def test_unsized_empty_test_loader_raises_through_on_exception() -> None:
    log: list[str] = []
    unit = RecordingUnit(log)
    with pytest.raises(ValueError, match="test_dataloader yielded no batches in test epoch 1"):
        test(unit, iter([]), callbacks=[recording_lambda(log, "a")])
    assert log[-2:] == ["unit:on_exception", "a:on_exception"]


def test_exception_in_test_step_reaches_unit_and_callbacks_then_propagates() -> None:
    class Boom(FitAndTest):
        def test_step(self, state: State, data: Batch) -> torch.Tensor:
            raise RuntimeError("boom")

    seen: list[str] = []
    unit = Boom()
    unit.on_exception = lambda state, exc: seen.append(f"unit:{exc}")  # type: ignore[method-assign]
    cb = Lambda(on_exception=lambda s, u, exc: seen.append(f"cb:{exc}"))
    with pytest.raises(RuntimeError, match="boom"):
        test(unit, batches(2), callbacks=[cb])
    assert seen == ["unit:boom", "cb:boom"]
    assert unit.net.training  # modes restored on the way out


def test_duck_typed_test_unit_is_accepted() -> None:
    unit = MagicMock(spec=RecordingUnit)
    unit.tracked_modules.return_value = {}
    unit.test_progress = torchkit.Progress()
    unit.get_next_test_batch.side_effect = lambda state, it: next(it)
    test(unit, batches(2))
    assert unit.test_step.call_count == 2
    assert unit.on_test_end.call_count == 1


# -- fit(test_dataloader=...) ---------------------------------------------------------------


def test_fit_tests_once_with_the_final_weights() -> None:
    unit = FitAndTest()
    state = fit(unit, batches(2), batches(1), max_epochs=3, test_dataloader=batches(4),
                max_test_steps=3)  # fmt: skip
    assert len(unit.seen) == 3  # max_test_steps
    assert all(s["train_steps"] == 6 and s["entry"] is EntryPoint.FIT for s in unit.seen)
    assert all(torch.equal(s["weight"], unit.net[0].weight) for s in unit.seen)
    assert all(not s["grad"] and s["training"] == [False, False, False] for s in unit.seen)
    assert unit.net.training  # back to the mode fit found
    assert state.test_state is not None and state.test_state.max_steps_per_epoch == 3
    assert unit.test_progress.num_epochs_completed == 1
    assert unit.eval_progress.num_epochs_completed == 3  # eval and test counted apart


def test_fit_without_test_dataloader_runs_no_test_phase() -> None:
    unit = FitAndTest()
    state = fit(unit, batches(2), batches(1), max_epochs=1)
    assert unit.seen == [] and state.test_state is None
    assert unit.test_progress.num_epochs_completed == 0


def test_a_unit_without_test_step_given_a_test_dataloader_is_a_clear_type_error() -> None:
    class NoTest(TrainUnit[Batch], EvalUnit[Batch]):
        def train_step(self, state: State, data: Batch) -> None:
            pass

        def eval_step(self, state: State, data: Batch) -> None:
            pass

    log: list[str] = []
    with pytest.raises(TypeError) as info:
        fit(NoTest(), batches(2), batches(1), max_epochs=1, test_dataloader=batches(1),
            callbacks=[recording_lambda(log)])  # fmt: skip
    text = str(info.value)
    # TNT's phrase, then which methods are missing and the fix
    assert "Expected unit to implement TestUnit interface when test_dataloader is provided" in text
    assert "missing: test_step" in text and "TestUnit[Batch]" in text
    assert log == []  # nothing ran


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"test_dataloader": []}, ValueError, r"test_dataloader=\[\] is invalid"),
        ({"test_dataloader": 3}, TypeError, r"test_dataloader=3 is invalid"),
        ({"test_dataloader": [1], "max_test_steps": -1}, ValueError, r"max_test_steps: -1"),
        ({"max_test_steps": 1.5}, ValueError, r"max_test_steps: 1\.5"),
    ],
)
def test_bad_fit_test_arguments_raise_before_any_hook(
    kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    log: list[str] = []
    with pytest.raises(exc, match=match):
        fit(RecordingUnit(log), batches(2), batches(1), max_epochs=1,
            callbacks=[recording_lambda(log)], **kwargs)  # fmt: skip
    assert log == []


def test_early_stopped_fit_still_tests_in_full() -> None:
    # A deliberate difference from TNT, which runs this test epoch with 0 steps because
    # state.should_stop is still set (docs/migration.md).
    class Plateau(FitAndTest):
        def on_train_epoch_end(self, state: State) -> None:
            self.val_loss = 1.0  # never improves: patience 2 stops after epoch 3

    unit = Plateau()
    stopper = EarlyStopping("val_loss", EarlyStopChecker("min", 2))
    state = fit(unit, batches(2), batches(1), max_epochs=10, callbacks=[stopper],
                test_dataloader=batches(3))  # fmt: skip
    assert unit.train_progress.num_epochs_completed == 3
    assert len(unit.seen) == 3 and unit.test_progress.num_steps_completed == 3
    assert state.should_stop  # still reads True afterwards


def test_state_stop_inside_the_test_phase_ends_it() -> None:
    unit = FitAndTest(stop_at_step=2)  # training stops itself after step 2
    stop_test = Lambda(on_test_step_end=lambda s, u: s.stop())
    state = fit(unit, batches(4), batches(1), max_epochs=2, test_dataloader=batches(5),
                callbacks=[stop_test])  # fmt: skip
    assert unit.train_progress.num_steps_completed == 2
    assert len(unit.seen) == 1 and state.should_stop
    assert unit.test_progress.num_epochs_completed == 1  # the epoch still closes


def test_preempted_fit_skips_the_test_and_the_resumed_run_tests(tmp_path: Path) -> None:
    def sigterm_at_step_3(state: Any, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    unit = FitAndTest()
    saver = DistributedCheckpointSaver(str(tmp_path))
    state = fit(unit, batches(4), batches(1), max_steps=8, test_dataloader=batches(2),
                callbacks=[saver, Lambda(on_train_step_start=sigterm_at_step_3)])  # fmt: skip
    assert state.preempted and unit.train_progress.num_steps_completed == 3
    assert unit.seen == [] and unit.test_progress.num_epochs_completed == 0

    resumed = FitAndTest()
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), resumed)
    fit(resumed, batches(4), batches(1), max_steps=8, test_dataloader=batches(2),
        callbacks=[DistributedCheckpointSaver(str(tmp_path))])  # fmt: skip
    assert len(resumed.seen) == 2 and all(s["train_steps"] == 8 for s in resumed.seen)


def test_test_progress_is_checkpointed_with_the_unit(tmp_path: Path) -> None:
    unit = FitAndTest()
    assert unit.app_state()["test_progress"] is unit.test_progress
    test(unit, batches(2))
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_epochs=1)
    fit(unit, batches(2), batches(1), max_epochs=1, callbacks=[saver])
    fresh = FitAndTest()
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), fresh)
    assert fresh.test_progress == unit.test_progress


def test_progress_bar_draws_a_test_bar() -> None:
    buf = io.StringIO()

    class Accuracy(FitAndTest):
        def on_test_epoch_end(self, state: State) -> None:
            state.metrics["test/accuracy"] = 0.75

    bar = TQDMProgressBar(file=buf, mininterval=0, metrics=("test/accuracy",))
    fit(Accuracy(), batches(2), batches(1), max_epochs=1, test_dataloader=batches(3),
        callbacks=[bar])  # fmt: skip
    text = buf.getvalue()
    assert "Test Epoch 1" in text and "3/3" in text and "test/accuracy=0.75" in text


def test_a_callback_subclass_sees_every_test_hook_in_order() -> None:
    class Seen(Callback):
        def __init__(self) -> None:
            self.log: list[str] = []

    hooks = [h for h in torchkit.callbacks.callback.HOOK_NAMES if h.startswith("on_test_")]
    for h in hooks:
        setattr(Seen, h, lambda self, state, unit, _h=h: self.log.append(_h))
    cb = Seen()
    test(RecordingUnit(), batches(1), callbacks=[cb])
    assert cb.log == [
        "on_test_start",
        "on_test_epoch_start",
        "on_test_dataloader_iter_creation_start",
        "on_test_dataloader_iter_creation_end",
        "on_test_get_next_batch_start",
        "on_test_get_next_batch_end",
        "on_test_step_start",
        "on_test_step_end",
        "on_test_get_next_batch_start",  # the fetch that raises StopIteration
        "on_test_epoch_end",
        "on_test_end",
    ]


def test_active_phase_state_follows_the_running_phase() -> None:
    seen: list[tuple[str, Any]] = []

    def record(where: str) -> Any:
        return lambda s, u: seen.append((where, s.active_phase_state()))

    cb = Lambda(
        on_train_step_end=record("train"),
        on_eval_step_end=record("eval"),
        on_test_step_end=record("test"),
    )
    state = fit(FitAndTest(), batches(1), batches(1), max_epochs=1, test_dataloader=batches(1),
                callbacks=[cb])  # fmt: skip
    assert [w for w, _ in seen] == ["train", "eval", "test"]
    assert [ps for _, ps in seen] == [state.train_state, state.eval_state, state.test_state]
    with pytest.raises(ValueError, match="active_phase=TEST has no PhaseState in this train run"):
        s = State(entry_point=EntryPoint.TRAIN)
        s._active_phase = ActivePhase.TEST
        s.active_phase_state()
