"""Callback: every loop hook is a documented no-op, and each is dispatched by the loop."""

from __future__ import annotations

import inspect
import pathlib

import pytest

import torchkit.loop
from torchkit import Callback, EntryPoint, State, fit, predict, test, train
from torchkit.callbacks.callback import HOOK_NAMES
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.testing import (
    DummyFitUnit,
    DummyPredictUnit,
    DummyTestUnit,
    DummyTrainUnit,
    generate_random_dataloader,
)

LOOP_DIR = pathlib.Path(torchkit.loop.__file__).parent


def test_hook_names_match_the_public_on_methods() -> None:
    public = {n for n, _ in inspect.getmembers(Callback, inspect.isfunction) if n.startswith("on_")}
    assert public == set(HOOK_NAMES)
    assert len(HOOK_NAMES) == len(set(HOOK_NAMES)) == 41


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hook_is_a_documented_no_op(hook: str) -> None:
    fn = getattr(Callback, hook)
    assert fn.__doc__ and fn.__doc__.strip()
    cb = Callback()
    state = State(entry_point=EntryPoint.TRAIN)
    unit = DummyTrainUnit(2)
    args = (state, unit, RuntimeError("x")) if hook == "on_exception" else (state, unit)
    assert getattr(cb, hook)(*args) is None
    params = list(inspect.signature(fn).parameters)
    assert params[:3] == ["self", "state", "unit"]


def test_every_hook_is_dispatched_by_the_loop() -> None:
    seen: set[str] = set()
    cb = Callback()
    for hook in HOOK_NAMES:  # instance attributes count as overrides (as Lambda's do)
        setattr(cb, hook, lambda *args, _hook=hook: seen.add(_hook))
    data = generate_random_dataloader(8, 2, 4)
    fit(DummyFitUnit(2), data, data, max_epochs=1, callbacks=[cb])
    predict(DummyPredictUnit(2), data, callbacks=[cb])
    test(DummyTestUnit(2), data, callbacks=[cb])

    class Fails(DummyTrainUnit):
        def train_step(self, state: State, data: object) -> None:  # type: ignore[override]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(Fails(2), data, max_epochs=1, callbacks=[cb])
    assert seen == set(HOOK_NAMES)


def test_base_callback_adds_no_dispatch() -> None:
    handler = CallbackHandler([Callback(), Callback()])
    assert all(getattr(handler, hook) == [] for hook in HOOK_NAMES)


def test_name_is_the_qualified_class_name() -> None:
    class Mine(Callback):
        pass

    assert Mine().name.endswith("test_callback.test_name_is_the_qualified_class_name.<locals>.Mine")
    assert Callback().name == "torchkit.callbacks.callback.Callback"


def test_subclass_hook_runs_with_state_and_unit() -> None:
    calls: list[tuple[int, bool]] = []

    class Count(Callback):
        def on_train_step_end(self, state: State, unit: DummyTrainUnit) -> None:  # type: ignore[override]
            calls.append((unit.train_progress.num_steps_completed, state.train_state is not None))

    train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 4), max_epochs=2, callbacks=[Count()])
    assert calls == [(1, True), (2, True), (3, True), (4, True)]
