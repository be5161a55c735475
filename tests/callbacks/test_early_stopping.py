"""EarlyStopping: exact stop epoch for min/max, patience, min_delta; best weights; ranks."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, ScriptedEvalUnit, loader
from torchkit import fit, train
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
    es = EarlyStopping("score", EarlyStopChecker(mode="min", patience=2))
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
