"""RunSummary: time split, steps/s and best metrics, logged and printed on rank 0."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.callbacks._units import ClassifierUnit, ScriptedEvalUnit, loader
from torchkit import fit, train
from torchkit.callbacks import MetricsLogger, RunSummary
from torchkit.callbacks._metric_state import add_time
from torchkit.loggers import InMemoryLogger


def test_summary_splits_wall_time_and_tracks_best(caplog: pytest.LogCaptureFixture) -> None:
    lg = InMemoryLogger()
    rs = RunSummary(loggers=lg)
    unit = ScriptedEvalUnit([0.9, 0.3, 0.5])
    with caplog.at_level(logging.INFO, logger="torchkit.callbacks.run_summary"):
        fit(unit, loader(16, 4), loader(8, 4), max_epochs=3, callbacks=[rs])
    s = rs.summary
    parts = ("run/data_wait_s", "run/step_s", "run/eval_s", "run/checkpoint_s", "run/callbacks_s")
    assert all(s[p] >= 0 for p in parts)
    assert s["run/eval_s"] > 0 and s["run/step_s"] > 0
    assert sum(s[p] for p in parts) == pytest.approx(s["run/wall_time_s"], rel=1e-6)
    assert s["run/steps_per_second"] == pytest.approx(12 / s["run/wall_time_s"])
    assert s["best/eval/loss"] == pytest.approx(0.3)
    assert lg.log_buffer[12]["best/eval/loss"] == pytest.approx(0.3)
    assert "Run summary" in caplog.text and "run/data_wait_s" in caplog.text


def test_checkpoint_time_reported_by_other_callbacks_and_best_accuracy() -> None:
    from torchkit.callbacks import Lambda

    ckpt = Lambda(on_train_epoch_end=lambda state, unit: add_time(state, "checkpoint", 0.25))
    rs = RunSummary()
    train(ClassifierUnit(), loader(8, 4), max_epochs=2,
          callbacks=[ckpt, MetricsLogger(InMemoryLogger(), every_n_steps=1), rs])  # fmt: skip
    assert rs.summary["run/checkpoint_s"] == pytest.approx(0.5)
    assert 0.0 <= rs.summary["best/train/accuracy"] <= 1.0
    assert "best/train/loss" in rs.summary


def test_saves_inside_steps_and_evals_are_counted_once(tmp_path: Path) -> None:
    from torchkit.callbacks import DistributedCheckpointSaver

    saver = DistributedCheckpointSaver(
        str(tmp_path), save_every_n_train_steps=2, save_every_n_eval_epochs=1
    )
    rs = RunSummary()
    fit(ScriptedEvalUnit([0.9, 0.3]), loader(16, 4), loader(8, 4), max_epochs=2,
        callbacks=[saver, rs])  # fmt: skip
    s = rs.summary
    parts = ("run/data_wait_s", "run/step_s", "run/eval_s", "run/checkpoint_s")
    assert s["run/checkpoint_s"] > 0
    # without de-duplication the saves would be counted in step/eval time as well
    assert sum(s[p] for p in parts) <= s["run/wall_time_s"] * 1.001


def test_the_test_phase_adds_its_values_after_the_train_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    from torchkit import test
    from torchkit.units import SupervisedUnit

    def unit() -> SupervisedUnit:
        torch.manual_seed(0)
        return SupervisedUnit(
            module=torch.nn.Linear(4, 2),
            loss_fn=torch.nn.CrossEntropyLoss(),
            optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
            device="cpu",
        )

    lg, ml = InMemoryLogger(), InMemoryLogger()
    rs = RunSummary(loggers=lg)
    with caplog.at_level(logging.INFO, logger="torchkit.callbacks.run_summary"):
        fit(unit(), loader(16, 4), loader(8, 4), max_epochs=1, test_dataloader=loader(8, 4),
            callbacks=[rs, MetricsLogger(ml)])  # fmt: skip
    assert "run/wall_time_s" in rs.summary
    assert rs.summary["test/loss"] == ml.log_buffer[4]["test/loss"]
    assert not any(k.startswith("test/") for row in lg.log_buffer.values() for k in row)
    assert "Test results" in caplog.text and "best/test/loss" not in rs.summary

    alone = RunSummary()
    test(unit(), loader(8, 4), callbacks=[alone])
    assert list(alone.summary) == ["test/loss"]
