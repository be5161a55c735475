"""Bad arguments raise before any side effect, with the argument, the value and a fix; empty
dataloaders have a defined behaviour."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchkit import (
    EvalUnit,
    PredictUnit,
    Progress,
    State,
    TrainUnit,
    evaluate,
    fit,
    predict,
    train,
)
from torchkit.callbacks import Lambda

from .recording import RecordingUnit, batches, progress_tuple, recording_lambda

# A message must say how to fix the problem, not only what is wrong.
FIX_WORDS = re.compile(r"\b(pass|Pass|use|Use|Subclass|Wrap|Check|expected|Expected)\b")


class TrainOnly(TrainUnit[torch.Tensor]):
    def train_step(self, state: State, data: torch.Tensor) -> None:
        pass


class EvalOnly(EvalUnit[torch.Tensor]):
    def eval_step(self, state: State, data: torch.Tensor) -> None:
        pass


class PredictOnly(PredictUnit[torch.Tensor]):
    def predict_step(self, state: State, data: torch.Tensor) -> None:
        pass


ENTRY = {"train": train, "evaluate": evaluate, "predict": predict, "fit": fit}


def _call(entry: str, unit: Any, log: list[str], overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"callbacks": [recording_lambda(log)]}
    if entry == "fit":
        args = [unit, batches(2), batches(2)]
        kwargs["max_epochs"] = 1
    else:
        args = [unit, batches(2)]
        if entry == "train":
            kwargs["max_epochs"] = 1
    for key, value in overrides.items():
        if key.startswith("arg"):
            args[int(key[3:])] = value
        else:
            kwargs[key] = value
    ENTRY[entry](*args, **kwargs)


CASES = [
    # (entry, overrides, exception, pattern the message must match)
    ("train", {"max_epochs": -1}, ValueError, r"Invalid value provided for max_epochs: -1\."),
    ("train", {"max_steps": -1}, ValueError, r"Invalid value provided for max_steps: -1\."),
    ("train", {"max_steps_per_epoch": -2}, ValueError, r"max_steps_per_epoch: -2\."),
    ("train", {"max_steps": 2.5}, ValueError, r"max_steps: 2\.5\."),
    ("train", {"max_steps": float("inf")}, ValueError, r"max_steps: inf\."),
    ("train", {"max_steps": float("nan")}, ValueError, r"max_steps: nan\."),
    ("train", {"max_steps": -1.5}, ValueError, r"max_steps: -1\.5\..*non-negative"),
    ("train", {"max_steps": True}, TypeError, r"max_steps: True"),
    ("train", {"max_epochs": "3"}, TypeError, r"max_epochs: '3'"),
    ("train", {"arg1": 5}, TypeError, r"train_dataloader=5 is invalid.*DataLoader"),
    ("train", {"arg1": None}, TypeError, r"train_dataloader=None is invalid"),
    ("train", {"arg0": "eval_only"}, TypeError, r"train_unit=EvalOnly instance is invalid"),
    ("train", {"callbacks": [object()]}, TypeError, r"callbacks\[0\]=<object.*Callback"),
    ("train", {"callbacks": Lambda()}, TypeError, r"callbacks=.*is invalid.*\[cb\]"),
    ("train", {"callbacks": 3}, TypeError, r"callbacks=3 is invalid"),
    ("train", {"timer": "t"}, TypeError, r"timer='t' is invalid.*Timer\(\)"),
    ("evaluate", {"timer": 1}, TypeError, r"timer=1 is invalid"),
    ("predict", {"timer": 1}, TypeError, r"timer=1 is invalid"),
    ("fit", {"timer": 1}, TypeError, r"timer=1 is invalid"),
    ("evaluate", {"max_steps_per_epoch": -1}, ValueError, r"max_steps_per_epoch: -1\."),
    ("evaluate", {"arg1": 3.0}, TypeError, r"eval_dataloader=3\.0 is invalid"),
    ("evaluate", {"arg0": "train_only"}, TypeError, r"eval_unit=TrainOnly instance is invalid"),
    ("predict", {"max_steps_per_epoch": 0.5}, ValueError, r"max_steps_per_epoch: 0\.5\."),
    ("predict", {"arg1": object()}, TypeError, r"predict_dataloader=<object.*is invalid"),
    ("predict", {"arg0": "eval_only"}, TypeError, r"predict_unit=EvalOnly instance"),
    ("fit", {"max_train_steps_per_epoch": -1}, ValueError,
     r"Invalid value provided for max_train_steps_per_epoch: -1\."),
    ("fit", {"max_eval_steps_per_epoch": -3}, ValueError, r"max_eval_steps_per_epoch: -3\."),
    ("fit", {"max_steps": -1}, ValueError, r"Invalid value provided for max_steps: -1\."),
    ("fit", {"evaluate_every_n_steps": 0}, ValueError, r"evaluate_every_n_steps: 0\..*None"),
    ("fit", {"evaluate_every_n_epochs": 0}, ValueError, r"evaluate_every_n_epochs: 0\..*None"),
    ("fit", {"evaluate_every_n_epochs": -1}, ValueError, r"evaluate_every_n_epochs: -1\."),
    ("fit", {"arg2": 7}, TypeError, r"eval_dataloader=7 is invalid"),
    ("fit", {"arg1": 7}, TypeError, r"train_dataloader=7 is invalid"),
    ("fit", {"arg0": "train_only"}, TypeError, r"unit=TrainOnly instance is invalid for fit\(\)"),
    ("fit", {"arg0": "eval_only"}, TypeError, r"both torchkit\.TrainUnit and torchkit\.EvalUnit"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "overrides", "exc_type", "pattern"), CASES)
def test_bad_argument_raises_before_any_side_effect(
    entry: str, overrides: dict[str, Any], exc_type: type[Exception], pattern: str
) -> None:
    unit = RecordingUnit()
    others = {"eval_only": EvalOnly(), "train_only": TrainOnly()}
    if "arg0" in overrides:
        overrides = {**overrides, "arg0": others[overrides["arg0"]]}
    unit.net.eval()
    log = unit.log
    with pytest.raises(exc_type, match=pattern) as excinfo:
        _call(entry, unit, log, overrides)
    assert FIX_WORDS.search(str(excinfo.value)), str(excinfo.value)
    assert log == []  # no hook, fetch or step ran
    for progress in (unit.train_progress, unit.eval_progress, unit.predict_progress):
        assert progress == Progress()
    assert unit.net.training is False  # modes untouched
    assert torch.is_grad_enabled()


def test_fit_rejects_a_unit_that_is_not_an_eval_unit() -> None:
    unit = TrainOnly()
    with pytest.raises(TypeError, match=r"EvalUnit.*Use train\(\) for a train-only unit"):
        fit(unit, batches(2), batches(2), max_epochs=1)
    assert unit.train_progress == Progress()


def test_numpy_integers_are_accepted_as_limits() -> None:
    unit = RecordingUnit()
    train(unit, batches(4), max_epochs=np.int64(2), max_steps_per_epoch=np.int32(3))
    assert progress_tuple(unit.train_progress) == (2, 6, 0, 3)


# empty dataloaders ------------------------------------------------------------------------------


class _NothingIterable:
    """An unsized iterable that yields nothing (e.g. an IterableDataset with no rows)."""

    def __iter__(self) -> Iterator[Any]:
        return iter(())


@pytest.mark.parametrize(
    "empty",
    [[], DataLoader(TensorDataset(torch.zeros(0, 2)), batch_size=2),
     DataLoader(TensorDataset(torch.zeros(1, 2)), batch_size=2, drop_last=True)],
    ids=["list", "empty_dataset", "drop_last"],
)  # fmt: skip
@pytest.mark.parametrize("entry", ["train", "evaluate", "predict", "fit_train", "fit_eval"])
def test_sized_empty_dataloader_raises_before_side_effects(entry: str, empty: Any) -> None:
    unit = RecordingUnit()
    log = unit.log
    name = {"fit_train": "train", "fit_eval": "eval", "evaluate": "eval"}.get(entry, entry)
    with pytest.raises(ValueError, match=rf"{name}_dataloader=.*has length 0.*Check the dataset"):
        if entry == "fit_train":
            _call("fit", unit, log, {"arg1": empty})
        elif entry == "fit_eval":
            _call("fit", unit, log, {"arg2": empty})
        else:
            _call(entry, unit, log, {"arg1": empty})
    assert log == []


@pytest.mark.parametrize(
    ("entry", "name"),
    [("train", "train_dataloader"), ("evaluate", "eval_dataloader"),
     ("predict", "predict_dataloader"), ("fit_eval", "eval_dataloader")],
)  # fmt: skip
def test_unsized_iterable_that_yields_nothing_raises(entry: str, name: str) -> None:
    unit = RecordingUnit()
    with pytest.raises(ValueError, match=rf"{name} yielded no batches") as excinfo:
        if entry == "fit_eval":
            fit(unit, batches(1), _NothingIterable(), max_epochs=1)
        else:
            _call(entry, unit, unit.log, {"arg1": _NothingIterable()})
    # the error goes through the exception path like any other
    assert unit.exceptions == [excinfo.value]


def test_iterator_dataloader_warns_and_second_epoch_finds_it_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unit = RecordingUnit()
    with pytest.raises(ValueError, match="train_dataloader yielded no batches in train epoch 2"):
        train(unit, iter(batches(2)), max_epochs=2)
    assert "train_dataloader is an iterator" in caplog.text
    assert progress_tuple(unit.train_progress) == (1, 2, 0, 2)


def test_zero_steps_per_epoch_is_not_an_empty_dataloader() -> None:
    unit = RecordingUnit()
    cb = Lambda(on_train_get_next_batch_start=lambda s, u: pytest.fail("no fetch expected"))
    train(unit, _NothingIterable(), max_epochs=2, max_steps_per_epoch=0, callbacks=[cb])
    assert progress_tuple(unit.train_progress) == (2, 0, 0, 0)
