"""The exception path: unit.on_exception, then each callback's, then the original re-raised."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit import State, evaluate, fit, predict, train
from torchkit.callbacks import Lambda

from .recording import RecordingUnit, batches


class StepError(Exception):
    pass


class FailingUnit(RecordingUnit):
    """Raises ``StepError`` from the ``fail_phase`` step once ``fail_after`` steps completed."""

    def __init__(self, fail_phase: str, fail_after: int = 1) -> None:
        super().__init__()
        self.fail_phase = fail_phase
        self.fail_after = fail_after
        self.error = StepError(f"{fail_phase} step failed")

    def _maybe_fail(self, phase: str) -> None:
        progress = getattr(self, f"{phase}_progress")
        if phase == self.fail_phase and progress.num_steps_completed == self.fail_after:
            raise self.error

    def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._maybe_fail("train")
        return super().train_step(state, data)

    def eval_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._maybe_fail("eval")
        return super().eval_step(state, data)

    def predict_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
        self._maybe_fail("predict")
        return super().predict_step(state, data)


def _exc_lambda(log: list[str], tag: str, seen: list[BaseException]) -> Lambda:
    def on_exception(state: State, unit: Any, exc: BaseException) -> None:
        log.append(f"{tag}:on_exception")
        seen.append(exc)

    return Lambda(
        on_exception=on_exception,
        on_train_end=lambda s, u: log.append(f"{tag}:on_train_end"),
        on_eval_end=lambda s, u: log.append(f"{tag}:on_eval_end"),
        on_predict_end=lambda s, u: log.append(f"{tag}:on_predict_end"),
    )


def _run(entry: str, unit: Any, cbs: list[Any]) -> None:
    if entry == "train":
        train(unit, batches(3), max_epochs=2, callbacks=cbs)
    elif entry == "evaluate":
        evaluate(unit, batches(3), callbacks=cbs)
    elif entry == "predict":
        predict(unit, batches(3), callbacks=cbs)
    elif entry == "fit_train":
        fit(unit, batches(3), batches(3), max_epochs=2, callbacks=cbs)
    else:  # fit_eval: the failure happens in an evaluation inside fit
        fit(unit, batches(3), batches(3), max_epochs=2, evaluate_every_n_steps=2, callbacks=cbs)


@pytest.mark.parametrize(
    ("entry", "fail_phase"),
    [
        ("train", "train"),
        ("evaluate", "eval"),
        ("predict", "predict"),
        ("fit_train", "train"),
        ("fit_eval", "eval"),
    ],
)
def test_unit_then_callbacks_on_exception_then_reraise(entry: str, fail_phase: str) -> None:
    unit = FailingUnit(fail_phase)
    seen: list[BaseException] = []
    cbs = [_exc_lambda(unit.log, "a", seen), _exc_lambda(unit.log, "b", seen)]
    with pytest.raises(StepError) as excinfo:
        _run(entry, unit, cbs)
    assert excinfo.value is unit.error  # the original object, not a wrapper
    assert unit.log[-3:] == ["unit:on_exception", "a:on_exception", "b:on_exception"]
    assert unit.exceptions == [unit.error]
    assert seen == [unit.error, unit.error]
    # the failing step did not count, and no phase-end hook ran after the failure
    assert getattr(unit, f"{fail_phase}_progress").num_steps_completed == 1
    assert not any(e.endswith(f"on_{fail_phase}_end") for e in unit.log)


def test_exception_in_a_callback_goes_through_the_same_path() -> None:
    unit = RecordingUnit()
    err = KeyError("from callback")
    seen: list[BaseException] = []

    def boom(state: State, u: Any) -> None:
        raise err

    cbs = [Lambda(on_train_step_end=boom), _exc_lambda(unit.log, "a", seen)]
    with pytest.raises(KeyError) as excinfo:
        train(unit, batches(2), max_epochs=1, callbacks=cbs)
    assert excinfo.value is err
    assert unit.log[-2:] == ["unit:on_exception", "a:on_exception"]
    assert unit.train_progress.num_steps_completed == 1  # counted before on_train_step_end


def test_failing_on_exception_hooks_do_not_mask_the_original() -> None:
    class BadHandlerUnit(FailingUnit):
        def on_exception(self, state: State, exc: BaseException) -> None:
            super().on_exception(state, exc)
            raise RuntimeError("unit handler failed")

    unit = BadHandlerUnit("train")
    seen: list[BaseException] = []

    def bad_cb(state: State, u: Any, exc: BaseException) -> None:
        raise RuntimeError("callback handler failed")

    cbs = [Lambda(on_exception=bad_cb), _exc_lambda(unit.log, "b", seen)]
    with pytest.raises(StepError) as excinfo:
        train(unit, batches(3), max_epochs=1, callbacks=cbs)
    assert excinfo.value is unit.error
    assert seen == [unit.error]  # later callbacks still ran


def test_keyboard_interrupt_is_reported_and_reraised() -> None:
    unit = RecordingUnit()

    def interrupt(state: State, u: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(unit, batches(2), max_epochs=1, callbacks=[Lambda(on_train_step_start=interrupt)])
    assert unit.log[-1] == "unit:on_exception"


def test_stop_iteration_from_a_batch_step_is_not_taken_for_the_end_of_data() -> None:
    # Only the fetch's StopIteration ends an epoch; one escaping the step is a bug to surface.
    class Leaky(RecordingUnit):
        def train_step(self, state: State, data: torch.Tensor) -> torch.Tensor:
            next(iter([]))
            return data

    unit = Leaky()
    with pytest.raises(StopIteration):
        train(unit, batches(3), max_epochs=1)
    assert unit.log[-1] == "unit:on_exception"
    assert unit.train_progress.num_epochs_completed == 0
