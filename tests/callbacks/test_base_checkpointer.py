"""BaseCheckpointer policy: when to save, names, retention (last-N, best-K), hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.checkpoint.units import FitUnit, batches, names
from torchkit import fit, predict, train
from torchkit.callbacks import BaseCheckpointer, DistributedCheckpointSaver
from torchkit.checkpoint import BestCheckpointConfig, get_best_checkpoint_path, list_checkpoints


def _on_disk(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def test_every_n_train_steps_counts_global_steps_and_dedups_the_final_save(tmp_path: Path) -> None:
    unit = FitUnit()
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_train_steps=3)
    train(unit, batches(4), max_steps=9, callbacks=[saver])
    assert _on_disk(tmp_path) == [
        "epoch_0_train_step_3",
        "epoch_1_train_step_6",
        "epoch_2_train_step_9",
    ]
    assert names(unit.saved_ids) == _on_disk(tmp_path)  # on_checkpoint_save after each save


def test_end_of_training_save_happens_when_not_covered(tmp_path: Path) -> None:
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_epochs=2)
    train(FitUnit(), batches(2), max_epochs=3, callbacks=[saver])
    assert _on_disk(tmp_path) == ["epoch_2_train_step_4", "epoch_3_train_step_6"]


def test_every_n_eval_epochs_in_fit(tmp_path: Path) -> None:
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_eval_epochs=2)
    dl = batches(2)
    fit(FitUnit(), dl, dl, max_epochs=4, callbacks=[saver])
    assert _on_disk(tmp_path) == ["epoch_2_train_step_4", "epoch_4_train_step_8"]


def test_keep_last_n_including_across_a_resume(tmp_path: Path) -> None:
    saver = DistributedCheckpointSaver(
        str(tmp_path), save_every_n_train_steps=1, keep_last_n_checkpoints=2
    )
    unit = FitUnit()
    train(unit, batches(4), max_steps=5, callbacks=[saver])
    assert _on_disk(tmp_path) == ["epoch_0_train_step_4", "epoch_1_train_step_5"]
    resumed = FitUnit()
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), resumed)
    saver2 = DistributedCheckpointSaver(
        str(tmp_path), save_every_n_train_steps=1, keep_last_n_checkpoints=2
    )
    train(resumed, batches(4), max_steps=6, callbacks=[saver2])
    assert _on_disk(tmp_path) == ["epoch_1_train_step_5", "epoch_1_train_step_6"]


def test_best_k_keeps_the_best_plus_the_latest(tmp_path: Path) -> None:
    unit = FitUnit()
    unit.eval_losses = [0.5, 0.2, 0.9, 0.3, 0.8]  # eval/loss after train steps 1..5
    saver = DistributedCheckpointSaver(
        str(tmp_path),
        save_every_n_eval_epochs=1,
        keep_last_n_checkpoints=2,
        best_checkpoint_config=BestCheckpointConfig("eval/loss", "min"),
    )
    dl = batches(1)
    fit(unit, dl, dl, max_epochs=5, callbacks=[saver])
    assert _on_disk(tmp_path) == [
        "epoch_2_train_step_2_eval_loss=0.2",
        "epoch_4_train_step_4_eval_loss=0.3",
        "epoch_5_train_step_5_eval_loss=0.8",  # the latest, kept so a resume goes forward
    ]
    best = get_best_checkpoint_path(str(tmp_path), "eval/loss", "min")
    assert best is not None and best.endswith("eval_loss=0.2")
    fresh = FitUnit(seed=4)
    assert DistributedCheckpointSaver.restore_from_best(str(tmp_path), fresh, "eval/loss", "min")
    assert fresh.train_progress.num_steps_completed == 2
    assert get_best_checkpoint_path(str(tmp_path), "eval/loss", "max") == str(
        tmp_path / "epoch_5_train_step_5_eval_loss=0.8"
    )


def test_best_metric_read_from_a_unit_attribute(tmp_path: Path) -> None:
    unit = FitUnit()
    unit.score = torch.tensor(0.75)  # type: ignore[attr-defined]
    saver = DistributedCheckpointSaver(
        str(tmp_path), best_checkpoint_config=BestCheckpointConfig("score", "max")
    )
    train(unit, batches(2), max_steps=2, callbacks=[saver])
    assert _on_disk(tmp_path) == ["epoch_1_train_step_2_score=0.75"]


def test_restore_from_latest_and_best_return_false_when_empty(tmp_path: Path) -> None:
    assert not DistributedCheckpointSaver.restore_from_latest(str(tmp_path), FitUnit())
    assert not DistributedCheckpointSaver.restore_from_best(str(tmp_path), FitUnit(), "m", "min")
    assert list_checkpoints(str(tmp_path)) == []


def test_predict_runs_under_no_grad_with_a_checkpointer(tmp_path: Path) -> None:
    from torchkit import PredictUnit

    seen: list[bool] = []

    class P(PredictUnit[Any]):
        def predict_step(self, state: Any, data: Any) -> None:
            seen.append(torch.is_inference_mode_enabled())

    assert BaseCheckpointer.requires_no_grad
    predict(P(), [1], callbacks=[DistributedCheckpointSaver(str(tmp_path))])
    assert seen == [False]


class _MeanMetricUnit(FitUnit):
    """Eval updates a torchmetrics ``MeanMetric`` with a scripted value per eval epoch."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        import torchmetrics

        self.eval_metrics = torchmetrics.MeanMetric()
        self.values = values

    def eval_step(self, state: Any, data: Any) -> None:
        self.eval_metrics.update(torch.tensor(self.values[self.eval_progress.num_epochs_completed]))


def test_best_metric_is_this_epochs_value_whatever_the_callback_order(tmp_path: Path) -> None:
    from torchkit.callbacks import MetricsLogger
    from torchkit.loggers import InMemoryLogger

    unit = _MeanMetricUnit([0.25, 0.75, 0.5])
    saver = DistributedCheckpointSaver(
        str(tmp_path),
        save_every_n_eval_epochs=1,
        best_checkpoint_config=BestCheckpointConfig("eval/mean_metric", "max"),
    )
    logger = InMemoryLogger()
    dl = batches(1)
    # the saver runs before MetricsLogger: it must not see the previous epoch's value
    fit(unit, dl, dl, max_epochs=3, callbacks=[saver, MetricsLogger([logger], every_n_steps=1)])
    assert _on_disk(tmp_path) == [
        "epoch_1_train_step_1_eval_mean_metric=0.25",
        "epoch_2_train_step_2_eval_mean_metric=0.75",
        "epoch_3_train_step_3_eval_mean_metric=0.5",
    ]
