"""Several named eval sets in ``fit``/``evaluate``: order, intervals, limits, counts, keys."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

import torchkit
from tests.loop.recording import RecordingUnit, batches
from torchkit import AutoUnit, EvalSet, Evaluators, State, evaluate, fit, predict, train
from torchkit.callbacks import Lambda, MetricsLogger
from torchkit.loggers import InMemoryLogger
from torchkit.testing import DummyFitUnit

Batch = tuple[torch.Tensor, torch.Tensor]


class CEAuto(AutoUnit[Batch]):
    """Cross-entropy AutoUnit: its eval loss is what ``MetricsLogger`` publishes."""

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.module(data[0])
        return torch.nn.functional.cross_entropy(out, data[1]), out

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(module.parameters(), lr=0.1), None


def labelled(n: int, seed: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 4, generator=g), torch.tensor([0, 1])) for _ in range(n)]


class Seen:
    """Records the eval-set name at each eval start and counts eval steps per name."""

    def __init__(self) -> None:
        self.starts: list[str] = []
        self.steps: Counter[str] = Counter()
        self.callback = Lambda(
            on_eval_start=lambda s, u: self.starts.append(s.eval_state.name),
            on_eval_step_end=lambda s, u: self.steps.update([s.eval_state.name]),
        )


def test_two_sets_with_their_own_interval_run_in_order_and_log_their_keys() -> None:
    """wave2 §3.3 test 7."""
    seen, lg = Seen(), InMemoryLogger()
    unit = CEAuto(module=torch.nn.Linear(4, 2))
    evals = Evaluators(val=labelled(3, 1), test=EvalSet(labelled(5, 2), every=2))
    fit(unit, labelled(4), evals, max_epochs=4, callbacks=[seen.callback, MetricsLogger(lg)])
    assert seen.starts == ["val", "val", "test", "val", "val", "test"]
    assert seen.steps == {"val": 12, "test": 10}
    assert unit.eval_progress.num_epochs_completed == 6
    assert unit.eval_progress.num_steps_completed == 22
    keys = {k for row in lg.log_buffer.values() for k in row}
    assert {"eval/val/loss", "eval/test/loss"} <= keys
    assert not any(k.startswith("eval/loss") for k in keys)
    # each set's logged loss is the mean over that set's batches alone
    module = unit.module
    with torch.no_grad():
        expected = torch.stack(
            [torch.nn.functional.cross_entropy(module(x), y) for x, y in labelled(5, 2)]
        ).mean()
    assert lg.log_buffer[16]["eval/test/loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_per_set_progress_counts_each_set_and_is_live_in_epoch_end() -> None:
    inside: list[tuple[str, int, int]] = []

    def record(state: State, unit: Any) -> None:
        own = state.eval_state.set_progress[state.eval_state.name]
        inside.append((state.eval_state.name, own.num_epochs_completed, own.num_steps_completed))

    evals = Evaluators(val=batches(3), test=EvalSet(batches(5), every=2))
    state = fit(RecordingUnit(), batches(2), evals, max_epochs=2,
                callbacks=[Lambda(on_eval_epoch_end=record)])  # fmt: skip
    assert inside == [("val", 1, 3), ("val", 2, 6), ("test", 1, 5)]
    sp = state.eval_state.set_progress
    assert (sp["val"].num_epochs_completed, sp["val"].num_steps_completed) == (2, 6)
    assert (sp["test"].num_epochs_completed, sp["test"].num_steps_completed) == (1, 5)


def test_a_set_without_every_follows_fits_step_and_epoch_intervals() -> None:
    seen = Seen()
    at: list[tuple[str, int]] = []
    evals = Evaluators(val=batches(1), test=EvalSet(batches(1), every=1))
    cb = Lambda(
        on_eval_start=lambda s, u: at.append(
            (s.eval_state.name, u.train_progress.num_steps_completed)
        )
    )
    fit(RecordingUnit(), batches(4), evals, max_epochs=2, evaluate_every_n_steps=2,
        evaluate_every_n_epochs=None, callbacks=[seen.callback, cb])  # fmt: skip
    assert at == [("val", 2), ("val", 4), ("test", 4), ("val", 6), ("val", 8), ("test", 8)]


def test_evaluate_every_n_epochs_set_at_run_time_applies_to_sets_without_every() -> None:
    seen = Seen()

    def every_two(state: State, unit: Any) -> None:
        state.eval_state.evaluate_every_n_epochs = 2  # TNT's settable interval

    evals = Evaluators(val=batches(1), test=EvalSet(batches(1), every=1))
    fit(RecordingUnit(), batches(1), evals, max_epochs=4,
        callbacks=[seen.callback, Lambda(on_train_start=every_two)])  # fmt: skip
    assert seen.starts == ["test", "val", "test", "test", "val", "test"]


def test_per_set_step_limits_and_fits_default_limit() -> None:
    seen = Seen()
    evals = Evaluators(val=batches(5), test=EvalSet(batches(5), max_steps_per_epoch=3))
    fit(RecordingUnit(), batches(1), evals, max_epochs=2, max_eval_steps_per_epoch=1,
        callbacks=[seen.callback])  # fmt: skip
    assert seen.steps == {"val": 2, "test": 6}


def test_plain_loader_is_named_eval_with_unchanged_keys() -> None:
    names: list[str] = []
    lg = InMemoryLogger()
    unit = CEAuto(module=torch.nn.Linear(4, 2))
    state = fit(unit, labelled(2), labelled(2), max_epochs=2,
                callbacks=[Lambda(on_eval_start=lambda s, u: names.append(s.eval_state.name)),
                           MetricsLogger(lg)])  # fmt: skip
    assert names == ["eval", "eval"]
    assert state.eval_state.set_progress == {}
    assert "eval/loss" in lg.log_buffer[4] and not any("/eval/" in k for k in lg.log_buffer[4])


def test_a_plain_dict_stays_one_loader_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []

    class U(DummyFitUnit):
        def eval_step(self, state: State, data: Any) -> None:
            seen.append(data)

    unit = U(2)
    with caplog.at_level(logging.WARNING, logger="torchkit.loop.fit"):
        fit(unit, [torch.zeros(2, 2)], {"a": batches(1), "b": batches(1)}, max_epochs=1)
    assert seen == ["a", "b"]  # iterated over its keys, as TNT does
    assert "Evaluators" in caplog.text


def test_evaluate_runs_each_set_once_in_order() -> None:
    seen, lg = Seen(), InMemoryLogger()
    unit = CEAuto(module=torch.nn.Linear(4, 2))
    evals = Evaluators(val=labelled(2), test=EvalSet(labelled(3), every=5, max_steps_per_epoch=2))
    evaluate(unit, evals, callbacks=[seen.callback, MetricsLogger(lg)])
    assert seen.starts == ["val", "test"] and seen.steps == {"val": 2, "test": 2}
    assert set(lg.log_buffer[2]) == {"eval/val/loss"} and set(lg.log_buffer[4]) == {
        "eval/test/loss"
    }


def test_evaluators_state_dict_round_trips_stateful_loaders() -> None:
    def make() -> Evaluators:
        return Evaluators(a=StatefulDataLoader(list(range(6)), batch_size=2), b=[1, 2])

    evals = make()
    it = iter(evals["a"].dataloader)
    next(it)
    sd = evals.state_dict()
    assert list(sd) == ["a"]  # a list has no state
    fresh = make()
    fresh.load_state_dict(sd)
    assert [b.tolist() for b in fresh["a"].dataloader] == [[2, 3], [4, 5]]
    with pytest.raises(ValueError, match=r"state_dict names \['c'\] are invalid"):
        fresh.load_state_dict({"c": {}})


def test_exported_from_the_top_level_and_the_loop() -> None:
    assert torchkit.Evaluators is torchkit.loop.Evaluators is Evaluators
    assert torchkit.EvalSet is torchkit.loop.EvalSet is EvalSet
    evals = Evaluators({"val-1": [1]}, test=EvalSet([2]))
    assert list(evals) == ["val-1", "test"] and len(evals) == 2
    assert evals["test"].every is None and "val-1=EvalSet(list" in repr(evals)


# -- bad input: raised at construction, before fit starts --------------------------------------
@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: EvalSet([1], every=0), ValueError, "every: 0"),
        (lambda: EvalSet([1], every=-2), ValueError, "every: -2"),
        (lambda: EvalSet([1], every="x"), ValueError, "every='x' is invalid"),
        (lambda: EvalSet([1], every="0ep"), ValueError, "every='0ep' is invalid: expected a pos"),
        (lambda: EvalSet([1], every="1.5ep"), ValueError, "every='1.5ep' is invalid"),
        (lambda: EvalSet([1], every=[2]), TypeError, r"every=\[2\] is invalid"),
        (lambda: EvalSet([1], every=True), TypeError, "every"),
        (lambda: EvalSet([1], max_steps_per_epoch=-1), ValueError, "max_steps_per_epoch: -1"),
        (lambda: EvalSet(5), TypeError, "dataloader=5 is invalid"),
        (lambda: EvalSet([]), ValueError, r"dataloader=\[\] is invalid: it has length 0"),
        (lambda: EvalSet(Evaluators(a=[1])), TypeError, "dataloader=Evaluators"),
        (lambda: Evaluators(), ValueError, r"Evaluators\(\) is invalid"),
        (lambda: Evaluators(val=5), TypeError, "val=5 is invalid"),
        (lambda: Evaluators(val=[]), ValueError, r"val=\[\] is invalid"),
        (lambda: Evaluators(val=Evaluators(a=[1])), TypeError, "val=Evaluators"),
        (lambda: Evaluators({"a/b": [1]}), ValueError, "name='a/b' is invalid"),
        (lambda: Evaluators({"": [1]}), ValueError, "name='' is invalid"),
        (lambda: Evaluators({1: [1]}), TypeError, "name=1 is invalid"),
        (lambda: Evaluators([[1]]), TypeError, "sets=.* is invalid"),
        (lambda: Evaluators({"val": [1]}, val=[2]), ValueError, "given twice"),
    ],
)
def test_bad_eval_sets_raise_naming_the_argument(make: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    ("every", "match"),
    [
        ("0.5dur", r"test.every='0.5dur' is invalid: expected max_duration"),
    ],
)
def test_intervals_fit_cannot_honour_raise_before_any_hook(every: str, match: str) -> None:
    unit = RecordingUnit()
    evals = Evaluators(val=batches(1), test=EvalSet(batches(1), every=every))
    with pytest.raises(ValueError, match=match):
        fit(unit, batches(1), evals, max_epochs=1)
    assert unit.log == []


def test_duration_strings_fire_by_the_floor_rule() -> None:
    at: list[tuple[str, int]] = []
    cb = Lambda(
        on_eval_start=lambda s, u: at.append(
            (s.eval_state.name, u.train_progress.num_steps_completed)
        )
    )
    evals = Evaluators(
        val=EvalSet(batches(1), every="3ba"),
        test=EvalSet(batches(1), every="2ep"),
        tuple_form=EvalSet(batches(1), every=(4, "ba")),
    )
    fit(RecordingUnit(), batches(4), evals, max_epochs=3, callbacks=[cb])
    assert at == [
        ("val", 3), ("tuple_form", 4), ("val", 6), ("tuple_form", 8),
        ("test", 8),  # after epoch 2's end hooks, so after the step-8 evaluations
        ("val", 9), ("val", 12), ("tuple_form", 12),  # same step: insertion order
    ]  # fmt: skip


def test_counted_and_fractional_intervals_use_the_duration_tracker() -> None:
    at: list[tuple[str, int]] = []
    cb = Lambda(
        on_eval_start=lambda s, u: at.append(
            (s.eval_state.name, u.train_progress.num_steps_completed)
        )
    )
    # batches of 2 samples: "6sp" fires when the sample count crosses 6, 12 (steps 3, 6);
    # "0.25dur" of "8ba" is every 2 steps
    evals = Evaluators(
        val=EvalSet(batches(1), every="6sp"), test=EvalSet(batches(1), every="0.25dur")
    )
    fit(RecordingUnit(), batches(4), evals, max_duration="8ba", evaluate_every_n_epochs=None,
        callbacks=[cb])  # fmt: skip
    assert at == [("test", 2), ("val", 3), ("test", 4), ("val", 6), ("test", 6), ("test", 8)]


def test_sets_without_every_follow_fits_counted_evaluate_every() -> None:
    at: list[tuple[str, int]] = []
    cb = Lambda(
        on_eval_start=lambda s, u: at.append(
            (s.eval_state.name, u.train_progress.num_steps_completed)
        )
    )
    evals = Evaluators(val=batches(1), test=EvalSet(batches(1), every="1ep"))
    fit(RecordingUnit(), batches(4), evals, max_epochs=1, evaluate_every="4sp", callbacks=[cb])
    assert at == [("val", 2), ("val", 4), ("test", 4)]


@pytest.mark.parametrize("entry", ["train", "predict", "fit_train"])
def test_evaluators_where_one_loader_is_expected_is_refused(entry: str) -> None:
    unit, evals = RecordingUnit(), Evaluators(val=batches(1))
    with pytest.raises(TypeError, match=r"dataloader=Evaluators.*only as fit"):
        if entry == "train":
            train(unit, evals, max_epochs=1)
        elif entry == "predict":
            predict(unit, evals)
        else:
            fit(unit, evals, batches(1), max_epochs=1)
    assert unit.log == []  # nothing ran
