"""EarlyStopping: exact stop epoch for min/max, patience, min_delta; best weights; ranks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, ScriptedEvalUnit, loader
from torchkit import State, TrainUnit, fit, train
from torchkit.callbacks import EarlyStopping
from torchkit.utils import EarlyStopChecker, launch_processes


def _fit(unit: ClassifierUnit, es: EarlyStopping, max_epochs: int = 10) -> None:
    fit(unit, loader(8, 4), loader(8, 4), max_epochs=max_epochs, callbacks=[es])


@pytest.mark.parametrize(
    ("metric", "values", "patience", "min_delta", "expected_epoch"),
    [
        # min: best at epoch 2, then 2 epochs without improvement -> stop after epoch 4
        ("-eval/loss", [1.0, 0.5, 0.6, 0.7, 0.1, 0.1], 2, 0.0, 4),
        # min_delta: 0.95 and 0.91 do not beat 1.0 by more than 0.1 -> stop after epoch 3
        ("-eval/loss", [1.0, 0.95, 0.91, 0.5, 0.4], 2, 0.1, 3),
        # the same sequence without min_delta keeps improving until the data ends
        ("-eval/loss", [1.0, 0.95, 0.91, 0.5, 0.4, 0.3], 2, 0.0, None),
        # max: the sign '+' maximises; 3, 3, 2 do not beat 3 -> patience 3 stops after epoch 5
        ("+eval/loss", [1.0, 3.0, 3.0, 3.0, 2.0, 9.0], 3, 0.0, 5),
        # patience 1 stops at the first non-improvement
        ("+eval/loss", [1.0, 2.0, 1.5, 9.0], 1, 0.0, 3),
    ],
)
def test_stops_at_the_expected_epoch(
    metric: str, values: list[float], patience: int, min_delta: float, expected_epoch: int | None
) -> None:
    unit = ScriptedEvalUnit(values)
    es = EarlyStopping(metric=metric, patience=patience, min_delta=min_delta)
    _fit(unit, es, max_epochs=len(values))
    assert es.stopped_at_epoch == expected_epoch
    assert unit.train_progress.num_epochs_completed == (expected_epoch or len(values))


def test_monitored_attr_with_checker_tnt_form() -> None:
    unit = ScriptedEvalUnit([3.0, 2.0, 2.5, 2.6])
    # the unit sets ``score`` during eval, so the check belongs to the eval phase
    es = EarlyStopping("score", EarlyStopChecker(mode="min", patience=2), phase="eval")
    _fit(unit, es)
    assert es.stopped_at_epoch == 4


def test_train_phase_step_interval() -> None:
    unit = ClassifierUnit(lr=0.0)  # a constant model: the loss never improves
    es = EarlyStopping(metric="-train/loss", patience=2, interval="step", phase="train",
                       min_delta=1.0)  # fmt: skip
    train(unit, loader(40, 4), max_epochs=3, callbacks=[es])
    assert es.stopped_at_step == 3
    assert unit.train_progress.num_steps_completed == 3


def test_restore_best_weights_restores_the_exact_best_params() -> None:
    unit = ScriptedEvalUnit([1.0, 0.2, 0.5, 0.6, 0.7])
    es = EarlyStopping(metric="-eval/loss", patience=2, restore_best_weights=True)
    _fit(unit, es)
    assert es.stopped_at_epoch == 4
    best = unit.params_after_epoch[1]  # the weights evaluated at epoch 2
    assert not torch.equal(best["weight"], unit.params_after_epoch[3]["weight"])
    for k, v in unit.module.state_dict().items():
        assert torch.equal(v, best[k])


def test_unknown_metric_lists_the_available_names() -> None:
    es = EarlyStopping(metric="-eval/los")
    with pytest.raises(ValueError, match=r"metric='eval/los' is invalid.*available: eval/loss"):
        _fit(ScriptedEvalUnit([1.0, 1.0]), es)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "-eval/loss", "interval_freq": -1}, r"interval_freq=-1 is invalid"),
        ({"metric": "-eval/loss", "interval": "batch"}, r"interval='batch' is invalid"),
        ({"metric": "-eval/loss", "phase": "predict"}, r"phase='predict' is invalid"),
        ({"metric": "-eval/loss", "mode": "max"}, r"mode='max' is invalid: expected 'min'"),
        ({"metric": "-eval/loss", "patience": 0}, r"patience=0 is invalid"),
        ({}, r"expected exactly one of them"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


# TNT form under train() -------------------------------------------------------------------

_SEQ = [1.0, 0.5, 0.6, 0.7, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]


class ValLossUnit(TrainUnit[Any]):
    """Sets ``self.val_loss`` from a script in ``on_train_epoch_end`` (a TNT-style unit)."""

    def __init__(self, values: list[float], as_tensor: bool = False) -> None:
        super().__init__()
        self.values, self.as_tensor = values, as_tensor
        self.val_loss: Any = None

    def train_step(self, state: State, data: Any) -> None:
        return None

    def on_train_epoch_end(self, state: State) -> None:
        v = self.values[self.train_progress.num_epochs_completed - 1]
        self.val_loss = torch.tensor(v) if self.as_tensor else v


@pytest.mark.parametrize(
    ("patience", "mode", "sign", "epochs"),
    [(2, "min", 1.0, 4), (3, "min", 1.0, 8), (2, "max", -1.0, 4), (3, "max", -1.0, 8)],
)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_tnt_form_stops_a_train_run(
    patience: int, mode: str, sign: float, epochs: int, as_tensor: bool
) -> None:
    unit = ValLossUnit([sign * v for v in _SEQ], as_tensor)
    es = EarlyStopping("val_loss", EarlyStopChecker(mode, patience))  # type: ignore[arg-type]
    train(unit, [torch.zeros(1)] * 2, max_epochs=12, callbacks=[es])
    assert unit.train_progress.num_epochs_completed == epochs
    assert unit.train_progress.num_steps_completed == 2 * epochs
    assert es.phase == "train"


def test_tnt_positional_arguments_are_accepted() -> None:
    unit = ValLossUnit(_SEQ)
    es = EarlyStopping("val_loss", EarlyStopChecker("min", 2), "epoch", "train", 1)
    train(unit, [torch.zeros(1)] * 2, max_epochs=12, callbacks=[es])
    assert (es.interval, es.phase, es.interval_freq) == ("epoch", "train", 1)
    assert unit.train_progress.num_epochs_completed == 4


@pytest.mark.parametrize(
    ("metric", "phase", "expected"),
    [("-eval/loss", None, "eval"), ("+train/accuracy", None, "train"), ("-loss", None, "eval"),
     ("-train/loss", "train", "train"), ("-eval/loss", "eval", "eval")],
)  # fmt: skip
def test_metric_form_takes_the_phase_from_the_prefix(
    metric: str, phase: str | None, expected: str
) -> None:
    kwargs: dict[str, Any] = {} if phase is None else {"phase": phase}
    assert EarlyStopping(metric=metric, **kwargs).phase == expected


def test_phase_contradicting_the_metric_prefix_raises() -> None:
    with pytest.raises(ValueError, match=r"phase='train' is invalid: expected 'eval' because "
                       r"metric='eval/loss'"):  # fmt: skip
        EarlyStopping(metric="-eval/loss", phase="train")


def test_eval_phase_under_train_raises_at_train_start() -> None:
    unit = ValLossUnit(_SEQ)
    es = EarlyStopping("val_loss", EarlyStopChecker("min", 2), phase="eval")
    with pytest.raises(ValueError, match=r"phase='eval' is invalid for this train\(\) run: it "
                       r"never evaluates.*Pass phase='train'"):  # fmt: skip
        train(unit, [torch.zeros(1)] * 2, max_epochs=12, callbacks=[es])
    assert unit.train_progress.num_steps_completed == 0


def test_eval_phase_in_a_fit_that_never_evaluates_raises() -> None:
    es = EarlyStopping(metric="-eval/loss")
    with pytest.raises(ValueError, match=r"phase='eval' is invalid for this fit\(\) run"):
        fit(ClassifierUnit(), loader(8, 4), loader(8, 4), max_epochs=2,
            evaluate_every_n_epochs=None, callbacks=[es])  # fmt: skip


def test_interval_freq_beyond_max_epochs_warns(caplog: pytest.LogCaptureFixture) -> None:
    es = EarlyStopping("val_loss", EarlyStopChecker("min", 2), interval_freq=5)
    with caplog.at_level("WARNING", logger="torchkit.callbacks._reachability"):
        train(ValLossUnit(_SEQ), [torch.zeros(1)] * 2, max_epochs=3, callbacks=[es])
    assert "interval_freq=5 is larger than max_epochs=3" in caplog.text


def _two_rank_run() -> tuple[int, int | None]:
    from torchkit.utils import get_global_rank

    rank = get_global_rank()
    # rank 1 would keep improving on its own; rank 0 stalls -> rank 0's decision binds both
    values = [1.0, 0.9, 0.95, 0.97, 0.5, 0.4] if rank == 0 else [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    unit = ScriptedEvalUnit(values)
    es = EarlyStopping(metric="-eval/loss", patience=2)
    fit(unit, loader(8, 4), loader(8, 4), max_epochs=6, callbacks=[es])
    return unit.train_progress.num_steps_completed, es.stopped_at_epoch


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_all_ranks_stop_at_the_same_step() -> None:
    # "spawn", not spawn_multi_process's default "fork": a child forked after this process
    # used intra-op (OpenMP) threads - any earlier test's matmul - hangs in its first matmul.
    results = launch_processes(2, "gloo", _two_rank_run, start_method="spawn", timeout_s=120)
    assert results[0] == results[1] == (8, 4)
