"""Hook order of train / evaluate / predict / test / fit, recorded by the unit's hooks and
Lambdas."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit import State, evaluate, fit, predict, test, train
from torchkit.callbacks import Lambda

from .recording import RecordingUnit, batches, recording_lambda

TAGS = ("a", "b")


def event(name: str) -> list[str]:
    """The unit's hook, then each callback's in list order."""
    return [f"unit:{name}"] + [f"{t}:{name}" for t in TAGS]


def cb_only(name: str) -> list[str]:
    return [f"{t}:{name}" for t in TAGS]


def epoch_start(phase: str) -> list[str]:
    """The epoch-start hooks, then the callbacks around ``iter(dataloader)``."""
    return (
        event(f"on_{phase}_epoch_start")
        + cb_only(f"on_{phase}_dataloader_iter_creation_start")
        + cb_only(f"on_{phase}_dataloader_iter_creation_end")
    )


def step(phase: str) -> list[str]:
    return [
        *cb_only(f"on_{phase}_get_next_batch_start"),
        f"unit:get_next_{phase}_batch",
        *cb_only(f"on_{phase}_get_next_batch_end"),
        *cb_only(f"on_{phase}_step_start"),
        f"unit:{phase}_step",
        *cb_only(f"on_{phase}_step_end"),
    ]


def last_fetch(phase: str) -> list[str]:
    """The fetch that raises StopIteration: ``_start`` hooks but no ``_end`` (design §7.6)."""
    return [*cb_only(f"on_{phase}_get_next_batch_start"), f"unit:get_next_{phase}_batch"]


def phase_block(phase: str, n_steps: int, *, exhausted: bool = True) -> list[str]:
    """A full evaluate/predict/test epoch of ``n_steps`` steps."""
    out = event(f"on_{phase}_start") + epoch_start(phase)
    for _ in range(n_steps):
        out += step(phase)
    if exhausted:
        out += last_fetch(phase)
    return out + event(f"on_{phase}_epoch_end") + event(f"on_{phase}_end")


def run_recorded(entry: str, n_batches: int = 2, **kwargs: Any) -> list[str]:
    log: list[str] = []
    unit = RecordingUnit(log)
    cbs = [recording_lambda(log, t) for t in TAGS]
    data = batches(n_batches)
    if entry == "train":
        train(unit, data, callbacks=cbs, **kwargs)
    elif entry == "evaluate":
        evaluate(unit, data, callbacks=cbs, **kwargs)
    elif entry == "predict":
        predict(unit, data, callbacks=cbs, **kwargs)
    elif entry == "test":
        test(unit, data, callbacks=cbs, **kwargs)
    else:
        fit(unit, data, batches(1), callbacks=cbs, **kwargs)
    return log


def test_train_hook_order_one_epoch_literal() -> None:
    # Written out in full once, so the helpers above are checked against a literal sequence.
    log: list[str] = []
    train(RecordingUnit(log), batches(1), max_epochs=1, callbacks=[recording_lambda(log, "a")])
    assert log == [
        "unit:on_train_start",
        "a:on_train_start",
        "unit:on_train_epoch_start",
        "a:on_train_epoch_start",
        "a:on_train_dataloader_iter_creation_start",
        "a:on_train_dataloader_iter_creation_end",
        "a:on_train_get_next_batch_start",
        "unit:get_next_train_batch",
        "a:on_train_get_next_batch_end",
        "a:on_train_step_start",
        "unit:train_step",
        "a:on_train_step_end",
        "a:on_train_get_next_batch_start",  # the fetch that raises StopIteration
        "unit:get_next_train_batch",
        "unit:on_train_epoch_end",
        "a:on_train_epoch_end",
        "unit:on_train_end",
        "a:on_train_end",
    ]


def test_train_hook_order_two_epochs() -> None:
    log = run_recorded("train", n_batches=2, max_epochs=2)
    epoch = epoch_start("train") + step("train") * 2 + last_fetch("train")
    epoch += event("on_train_epoch_end")
    assert log == event("on_train_start") + epoch * 2 + event("on_train_end")


def test_train_epoch_ended_by_limit_has_no_stop_iteration_fetch() -> None:
    log = run_recorded("train", n_batches=3, max_steps_per_epoch=2, max_epochs=1)
    assert log == (
        event("on_train_start")
        + epoch_start("train")
        + step("train") * 2
        + event("on_train_epoch_end")
        + event("on_train_end")
    )


PHASE = {"evaluate": "eval", "predict": "predict", "test": "test"}


@pytest.mark.parametrize("entry", ["evaluate", "predict", "test"])
def test_eval_and_predict_hook_order(entry: str) -> None:
    phase = PHASE[entry]
    assert run_recorded(entry, n_batches=3) == phase_block(phase, 3)


@pytest.mark.parametrize("entry", ["evaluate", "predict", "test"])
def test_eval_and_predict_hook_order_with_max_steps_per_epoch(entry: str) -> None:
    phase = PHASE[entry]
    log = run_recorded(entry, n_batches=3, max_steps_per_epoch=2)
    assert log == phase_block(phase, 2, exhausted=False)


def test_fit_hook_order_eval_every_epoch() -> None:
    log = run_recorded("fit", n_batches=2, max_epochs=2, evaluate_every_n_epochs=1)
    epoch = (
        epoch_start("train")
        + step("train") * 2
        + last_fetch("train")
        + event("on_train_epoch_end")  # eval runs after the epoch-end hooks
        + phase_block("eval", 1)
    )
    assert log == event("on_train_start") + epoch * 2 + event("on_train_end")


def test_fit_hook_order_eval_every_n_steps_counts_global_steps() -> None:
    # 3 batches per epoch, eval every 2 *global* steps: after steps 2, 4 and 6, i.e. in the
    # middle of epoch 1, after the first step of epoch 2 and after its last step.
    log = run_recorded(
        "fit", n_batches=3, max_epochs=2, evaluate_every_n_steps=2, evaluate_every_n_epochs=None
    )
    ev = phase_block("eval", 1)
    expected = (
        event("on_train_start")
        + epoch_start("train")
        + step("train") * 2
        + ev
        + step("train")
        + last_fetch("train")
        + event("on_train_epoch_end")
        + epoch_start("train")
        + step("train")
        + ev
        + step("train") * 2
        + ev
        + last_fetch("train")
        + event("on_train_epoch_end")
        + event("on_train_end")
    )
    assert log == expected


def test_fit_hook_order_steps_and_epochs_together() -> None:
    log = run_recorded(
        "fit", n_batches=2, max_epochs=1, evaluate_every_n_steps=2, evaluate_every_n_epochs=1
    )
    ev = phase_block("eval", 1)
    assert log == (
        event("on_train_start")
        + epoch_start("train")
        + step("train") * 2
        + ev  # step-triggered eval, before the epoch closes
        + last_fetch("train")
        + event("on_train_epoch_end")
        + ev  # epoch-triggered eval
        + event("on_train_end")
    )


def test_fit_with_test_dataloader_tests_once_after_training_ends() -> None:
    log = run_recorded(
        "fit", n_batches=2, max_epochs=2, test_dataloader=batches(3), max_test_steps=2
    )
    epoch = (
        epoch_start("train")
        + step("train") * 2
        + last_fetch("train")
        + event("on_train_epoch_end")
        + phase_block("eval", 1)
    )
    assert log == (
        event("on_train_start")
        + epoch * 2
        + event("on_train_end")
        + phase_block("test", 2, exhausted=False)  # after on_train_end, max_test_steps=2
    )


def test_callbacks_run_in_list_order_for_many_callbacks() -> None:
    log: list[str] = []
    cbs = [
        Lambda(on_train_step_end=lambda s, u, i=i: log.append(f"cb{i}"))  # type: ignore[misc]
        for i in range(5)
    ]
    train(RecordingUnit(), batches(1), max_epochs=1, callbacks=cbs)
    assert log == ["cb0", "cb1", "cb2", "cb3", "cb4"]


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict", "test"])
def test_step_output_set_during_step_end_and_cleared_after(entry: str) -> None:
    phase = {"train": "train", **PHASE}[entry]
    seen: list[tuple[str, Any]] = []
    states: list[State] = []

    def phase_state(state: State) -> Any:
        return getattr(state, f"{phase}_state")

    def record(where: str) -> Any:
        def fn(state: State, unit: Any) -> None:
            states.append(state)
            seen.append((where, phase_state(state).step_output))

        return fn

    cb = Lambda(
        **{
            f"on_{phase}_get_next_batch_start": record("fetch"),
            f"on_{phase}_step_start": record("step_start"),
            f"on_{phase}_step_end": record("step_end"),
            f"on_{phase}_epoch_end": record("epoch_end"),
        }
    )
    unit = RecordingUnit()
    entry_fn = {"train": train, "evaluate": evaluate, "predict": predict, "test": test}[entry]
    kwargs = {"max_epochs": 1} if entry == "train" else {}
    entry_fn(unit, batches(2), callbacks=[cb], **kwargs)  # type: ignore[operator]

    step_ends = [v for where, v in seen if where == "step_end"]
    assert len(step_ends) == 2
    assert all(isinstance(v, torch.Tensor) for v in step_ends)
    assert all(v is None for where, v in seen if where != "step_end")
    assert phase_state(states[-1]).step_output is None
