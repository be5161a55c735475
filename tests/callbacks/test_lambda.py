"""Lambda: one keyword per hook, none missing; only the given hooks are dispatched."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from torchkit import State, evaluate, train
from torchkit.callbacks import Callback, Lambda
from torchkit.callbacks.callback import HOOK_NAMES
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.testing import DummyEvalUnit, DummyTrainUnit, generate_random_dataloader


def test_one_keyword_per_hook_and_none_missing() -> None:
    params = inspect.signature(Lambda.__init__).parameters
    keywords = [n for n, p in params.items() if n != "self"]
    assert set(keywords) == set(HOOK_NAMES)
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in keywords)
    assert all(params[n].default is None for n in keywords)
    doc = Lambda.__doc__ or ""
    assert all(f"{hook}:" in doc for hook in HOOK_NAMES)


def test_is_a_callback() -> None:
    assert isinstance(Lambda(), Callback)


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_only_the_given_hook_is_dispatched(hook: str) -> None:
    handler = CallbackHandler([Lambda(**{hook: lambda *a: None})])
    for other in HOOK_NAMES:
        assert len(getattr(handler, other)) == (1 if other == hook else 0)


def test_functions_receive_state_and_unit() -> None:
    seen: list[tuple[Any, Any]] = []
    unit = DummyTrainUnit(2)
    state = train(
        unit,
        generate_random_dataloader(4, 2, 2),
        max_epochs=1,
        callbacks=[Lambda(on_train_end=lambda s, u: seen.append((s, u)))],
    )
    assert seen == [(state, unit)]


def test_counts_steps_across_phases() -> None:
    counts = {"train": 0, "eval": 0}

    def inc(key: str) -> Any:
        def fn(state: State, unit: Any) -> None:
            counts[key] += 1

        return fn

    cb = Lambda(on_train_step_end=inc("train"), on_eval_step_end=inc("eval"))
    train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=2, callbacks=[cb])
    evaluate(DummyEvalUnit(2), generate_random_dataloader(6, 2, 2), callbacks=[cb])
    assert counts == {"train": 8, "eval": 3}


def test_on_exception_receives_the_exception() -> None:
    got: list[BaseException] = []
    err = ValueError("bad batch")

    def boom(state: State, unit: Any) -> None:
        raise err

    cb = Lambda(on_train_step_start=boom, on_exception=lambda s, u, e: got.append(e))
    with pytest.raises(ValueError, match="bad batch"):
        train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1, callbacks=[cb])
    assert got == [err]


def test_non_callable_is_rejected_with_the_hook_name() -> None:
    with pytest.raises(TypeError, match=r"on_train_start=3 is invalid: expected a callable"):
        Lambda(on_train_start=3)  # type: ignore[arg-type]


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(TypeError):
        Lambda(on_train_stp_end=print)  # type: ignore[call-arg]
