"""Callbacks with several named eval sets: best-K, early stopping, progress bar, preemption."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from tests.checkpoint.units import FitUnit, batches, names
from torchkit import EvalSet, Evaluators, State, fit
from torchkit.callbacks import DistributedCheckpointSaver, EarlyStopping, Lambda, TQDMProgressBar
from torchkit.checkpoint import BestCheckpointConfig, get_best_checkpoint_path


class ScriptedSets(FitUnit):
    """Its eval loss for set ``name`` in that set's ``k``-th evaluation is ``losses[name][k]``,
    returned as a ``(loss, outputs)`` step output, so the loss mean is what gets published."""

    def __init__(self, losses: dict[str, list[float]], seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.losses = losses

    def eval_step(self, state: Any, data: Any) -> tuple[torch.Tensor, None]:
        name = state.eval_state.name
        k = state.eval_state.set_progress[name].num_epochs_completed
        return torch.tensor(self.losses[name][k], dtype=torch.float64), None


def _on_disk(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def test_best_k_on_one_sets_loss_with_the_real_checkpointer(tmp_path: Path) -> None:
    # test's loss is lower than every val loss: mixing the sets up would pick a test value
    unit = ScriptedSets({"val": [0.5, 0.2, 0.9, 0.3], "test": [0.01, 0.02]})
    saver = DistributedCheckpointSaver(
        str(tmp_path),
        save_every_n_eval_epochs=1,
        keep_last_n_checkpoints=2,
        best_checkpoint_config=BestCheckpointConfig("eval/val/loss", "min"),
    )
    evals = Evaluators(val=batches(2), test=EvalSet(batches(1), every=2))
    fit(unit, batches(1), evals, max_epochs=4, callbacks=[saver])
    assert _on_disk(tmp_path) == [
        "epoch_2_train_step_2_eval_val_loss=0.2",
        "epoch_4_train_step_4_eval_val_loss=0.3",
    ]
    best = get_best_checkpoint_path(str(tmp_path), "eval/val/loss", "min")
    assert best is not None and best.endswith("eval_val_loss=0.2")
    fresh = ScriptedSets(unit.losses, seed=3)
    assert DistributedCheckpointSaver.restore_from_best(
        str(tmp_path), fresh, "eval/val/loss", "min"
    )
    assert fresh.train_progress.num_steps_completed == 2
    assert fresh.eval_progress.num_epochs_completed == 2  # saved right after val at epoch 2


def test_early_stopping_on_one_set_checks_only_after_that_set() -> None:
    # val improves at epoch 2 then worsens at 3: patience 1 stops at epoch 3. Checking the
    # unchanged val value again after each test evaluation would stop at epoch 1.
    unit = ScriptedSets({"val": [0.5, 0.4, 0.6, 0.7, 0.8], "test": [0.1] * 5})
    es = EarlyStopping(metric="-eval/val/loss", patience=1)
    evals = Evaluators(val=batches(1), test=batches(1))
    fit(unit, batches(1), evals, max_epochs=5, callbacks=[es])
    assert es.stopped_at_epoch == 3
    assert unit.train_progress.num_epochs_completed == 3


def test_early_stopping_interval_freq_counts_the_sets_own_epochs() -> None:
    unit = ScriptedSets({"val": [0.5, 0.6, 0.7, 0.8], "test": [0.1] * 4})
    es = EarlyStopping(metric="-eval/test/loss", patience=1, interval_freq=2)
    evals = Evaluators(val=batches(1), test=batches(1))
    fit(unit, batches(1), evals, max_epochs=4, callbacks=[es])
    # checks after test's evaluations 2 and 4 only: the second one sees no improvement
    assert es.stopped_at_epoch == 4


def test_progress_bar_names_each_set_and_counts_its_epochs() -> None:
    buf = io.StringIO()
    unit = ScriptedSets({"val": [0.5, 0.25], "test": [0.125]})
    evals = Evaluators(val=batches(2), test=EvalSet(batches(3), every=2))
    fit(unit, batches(1), evals, max_epochs=2,
        callbacks=[TQDMProgressBar(file=buf, mininterval=0)])  # fmt: skip
    out = buf.getvalue()
    for desc in ("Eval val Epoch 1", "Eval val Epoch 2", "Eval test Epoch 1"):
        assert desc in out
    assert "Eval test Epoch 2" not in out and "Eval Epoch" not in out
    assert "loss=0.25" in out and "loss=0.125" in out  # the set's own key, shown as loss


def _preempt_in(set_name: str, at_step: int) -> Lambda:
    def fn(state: State, unit: Any) -> None:
        own = state.eval_state.set_progress[state.eval_state.name]
        if state.eval_state.name == set_name and own.num_steps_completed == at_step:
            os.kill(os.getpid(), signal.SIGUSR1)

    return Lambda(on_eval_step_end=fn)


def test_preemption_inside_the_second_set_reruns_the_whole_round_on_resume(
    tmp_path: Path,
) -> None:
    def evals() -> Evaluators:
        return Evaluators(val=batches(2, seed=1), test=EvalSet(batches(3, seed=2), every=2))

    def run(unit: FitUnit, callbacks: list[Any]) -> State:
        return fit(unit, batches(2), evals(), max_epochs=3, callbacks=callbacks)

    reference = FitUnit()
    run(reference, [])
    unit = FitUnit()
    saver = DistributedCheckpointSaver(str(tmp_path), preemption_signals=(signal.SIGUSR1,))
    state = run(unit, [saver, _preempt_in("test", 2)])  # inside epoch 2's round: val, test
    assert state.preempted
    assert names(saver.retained_checkpoints) == ["epoch_2_train_step_4"]
    fresh = FitUnit(seed=5)
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), fresh)
    assert fresh.eval_progress.num_epochs_completed == 1  # as of the round's start
    seen: list[str] = []
    cb = Lambda(on_eval_start=lambda s, u: seen.append(s.eval_state.name))
    run(fresh, [DistributedCheckpointSaver(str(tmp_path / "2")), cb])
    assert seen == ["val", "test", "val"]  # the cut round again, then epoch 3's
    assert fresh.eval_progress == reference.eval_progress
    for a, b in zip(fresh.net.parameters(), reference.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_eval_loader_states_are_saved_per_set_and_restored_by_name(tmp_path: Path) -> None:
    def evals(**renamed: str) -> Evaluators:
        names_ = {"val": "val", "test": "test", **renamed}
        return Evaluators(
            {names_["val"]: StatefulDataLoader(batches(4), batch_size=None),
             names_["test"]: StatefulDataLoader(batches(2), batch_size=None)}
        )  # fmt: skip

    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_eval_epochs=1)
    fit(FitUnit(), batches(1), evals(), max_epochs=1, callbacks=[saver])
    latest = saver.retained_checkpoints[-1]
    restored = evals()
    DistributedCheckpointSaver.restore(latest, FitUnit(seed=2), eval_dataloader=restored)
    # both sets were saved after their epoch ended: each restored loader starts a new epoch
    assert len(list(restored["val"].dataloader)) == 4
    with pytest.raises(ValueError, match=r"state_dict names \['test'\] are invalid"):
        DistributedCheckpointSaver.restore(
            latest, FitUnit(seed=2), eval_dataloader=evals(test="holdout")
        )


def test_torchmetrics_are_published_and_reset_per_set() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    from tests.callbacks._units import ClassifierUnit, loader
    from torchkit.callbacks import MetricsLogger
    from torchkit.loggers import InMemoryLogger

    lg = InMemoryLogger()
    unit = ClassifierUnit()
    val, test = loader(16, 4), loader(8, 4)
    fit(unit, loader(8, 4), Evaluators(val=val, test=test), max_epochs=1,
        callbacks=[MetricsLogger(lg)])  # fmt: skip
    row = lg.log_buffer[2]
    assert {"eval/val/accuracy", "eval/val/loss", "eval/test/accuracy", "eval/test/loss"} <= set(
        row
    )
    for name, dl in (("val", val), ("test", test)):
        acc = MulticlassAccuracy(num_classes=2)
        with torch.no_grad():
            for x, y in dl:
                acc.update(unit.module(x), y)
        assert row[f"eval/{name}/accuracy"] == pytest.approx(acc.compute().item())


def test_preemption_at_a_step_with_a_set_due_runs_that_set_first_on_resume(
    tmp_path: Path,
) -> None:
    def evals() -> Evaluators:
        return Evaluators(val=EvalSet(batches(1), every="2ba"), test=EvalSet(batches(1), every=1))

    def loader() -> StatefulDataLoader[Any]:
        return StatefulDataLoader(batches(4), batch_size=None)

    seen: list[tuple[str, int]] = []
    cb = Lambda(
        on_eval_start=lambda s, u: seen.append(
            (s.eval_state.name, u.train_progress.num_steps_completed)
        )
    )

    def send_at_step_2(state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == 1:
            os.kill(os.getpid(), signal.SIGUSR1)

    reference = FitUnit()
    fit(reference, loader(), evals(), max_epochs=2)
    unit, train_dl = FitUnit(), loader()
    saver = DistributedCheckpointSaver(str(tmp_path), preemption_signals=(signal.SIGUSR1,))
    state = fit(unit, train_dl, evals(), max_epochs=2,
                callbacks=[saver, Lambda(on_train_step_start=send_at_step_2), cb])  # fmt: skip
    assert state.preempted and seen == []  # the val evaluation due at step 2 did not start
    fresh, fresh_dl = FitUnit(seed=5), loader()
    assert DistributedCheckpointSaver.restore_from_latest(
        str(tmp_path), fresh, train_dataloader=fresh_dl
    )
    saver2 = DistributedCheckpointSaver(str(tmp_path / "2"))  # it runs the pending eval
    fit(fresh, fresh_dl, evals(), max_epochs=2, callbacks=[saver2, cb])
    assert seen == [("val", 2), ("val", 4), ("test", 4), ("val", 6), ("val", 8), ("test", 8)]
    assert fresh.eval_progress == reference.eval_progress
    for a, b in zip(fresh.net.parameters(), reference.net.parameters(), strict=True):
        assert torch.equal(a, b)
