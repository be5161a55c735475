"""AutoUnit, SupervisedUnit and HFAutoUnit run TNT's test phase from ``compute_loss``:
``test()``, ``fit(..., test_dataloader=)``, ``test/*`` metrics kept apart from ``eval/*``."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.regression import MeanSquaredError

from torchkit import TestUnit, fit, test
from torchkit.callbacks import DistributedCheckpointSaver, MetricsLogger, TQDMProgressBar
from torchkit.checkpoint import CheckpointMismatchError
from torchkit.loggers import CSVLogger, InMemoryLogger
from torchkit.loop.state import ActivePhase, EntryPoint, State
from torchkit.units import AutoUnit, SupervisedUnit
from torchkit.utils import seed

Batch = tuple[torch.Tensor, torch.Tensor]


class Regress(AutoUnit[Batch]):
    """MSE regression that records what each forward saw."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(module=torch.nn.Linear(3, 1), device="cpu", **kwargs)
        self.seen: list[tuple[str, bool, bool]] = []
        self.test_hook: list[tuple[int, float]] = []

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        self.seen.append((str(state.active_phase), torch.is_grad_enabled(), self.module.training))
        out = self.module(x)
        return torch.nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(self, module: torch.nn.Module) -> Any:
        return torch.optim.SGD(module.parameters(), lr=0.1), None

    def on_test_step_end(
        self, state: State, data: Batch, step: int, loss: torch.Tensor, outputs: Any
    ) -> None:
        self.test_hook.append((step, float(loss)))


def _regression(n: int, offset: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(100 + offset)
    return [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(n)]


def _classification(n: int, offset: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(200 + offset)
    return [
        (torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(n)
    ]


def _mean_mse(module: torch.nn.Module, batches: list[Batch]) -> float:
    with torch.no_grad():
        losses = [torch.nn.functional.mse_loss(module(x), y) for x, y in batches]
    return float(torch.stack(losses).mean())


def test_test_runs_compute_loss_in_eval_mode_and_publishes_test_values() -> None:
    unit = Regress()
    unit.test_metrics = MeanSquaredError()
    unit.eval_metrics = MeanSquaredError()
    lg = InMemoryLogger()
    batches = _regression(3)
    test(unit, batches, callbacks=[MetricsLogger(lg)])
    assert unit.seen == [("test", False, False)] * 3
    assert unit.module.training  # restored after the phase
    assert [s for s, _ in unit.test_hook] == [0, 1, 2]
    with torch.no_grad():
        expected_loss = _mean_mse(unit.module, batches)
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        expected_mse = float(torch.nn.functional.mse_loss(unit.module(x), y))
    logged = lg.log_buffer[3]  # at the test step count
    assert logged["test/loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert logged["test/mean_squared_error"] == pytest.approx(expected_mse, rel=1e-6)
    assert not unit.eval_metrics.update_called  # the eval metrics never saw test data


def test_a_unit_built_for_evaluation_only_tests_without_an_optimizer() -> None:
    unit = Regress(training=False)
    assert unit.optimizer is None
    test(unit, _regression(2), max_steps_per_epoch=1)
    assert unit.test_progress.num_steps_completed == 1
    assert unit.seen == [("test", False, False)]


@pytest.mark.parametrize("prefetch", [True, False])
def test_fit_tests_the_final_weights_and_logs_test_apart_from_eval(prefetch: bool) -> None:
    seed(0)
    unit = SupervisedUnit(
        module=torch.nn.Linear(3, 2),
        loss_fn=torch.nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.5),
        metrics={"accuracy": MulticlassAccuracy(num_classes=2, average="micro")},
        device="cpu",
        enable_prefetch=prefetch,
    )
    train_dl, eval_dl, test_dl = _classification(4), _classification(2, 1), _classification(3, 2)
    lg = InMemoryLogger()
    fit(
        unit,
        train_dl,
        eval_dl,
        max_epochs=2,
        test_dataloader=test_dl,
        callbacks=[MetricsLogger(lg)],
    )
    assert unit.test_progress.num_steps_completed == 3
    final = lg.log_buffer[8]  # the test values share the train step axis with eval
    with torch.no_grad():
        x = torch.cat([b[0] for b in test_dl])
        y = torch.cat([b[1] for b in test_dl])
        logits = unit.module(x)
        accuracy = float((logits.argmax(1) == y).float().mean())
        loss = float(
            torch.stack(
                [torch.nn.functional.cross_entropy(unit.module(a), b) for a, b in test_dl]
            ).mean()
        )
        ex = torch.cat([b[0] for b in eval_dl])
        ey = torch.cat([b[1] for b in eval_dl])
        eval_accuracy = float((unit.module(ex).argmax(1) == ey).float().mean())
    assert final["test/accuracy"] == pytest.approx(accuracy)
    assert final["test/loss"] == pytest.approx(loss, rel=1e-6)
    assert final["eval/accuracy"] == pytest.approx(eval_accuracy)  # eval data only
    assert not any(
        k.startswith("test/") for step, row in lg.log_buffer.items() for k in row if step < 8
    )


def test_supervised_unit_metrics_are_copied_for_the_test_phase_and_stay_out_of_checkpoints() -> (
    None
):
    unit = SupervisedUnit(
        module=torch.nn.Linear(3, 2),
        loss_fn=torch.nn.CrossEntropyLoss(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        metrics={"accuracy": MulticlassAccuracy(num_classes=2)},
        device="cpu",
    )
    assert unit.test_metrics is not unit.eval_metrics
    assert "test_metrics" not in unit.app_state()
    assert {"test_progress", "eval_metrics", "train_metrics"} <= set(unit.app_state())


def test_phase_metrics_follows_the_running_phase() -> None:
    unit = Regress()
    unit.train_metrics, unit.eval_metrics, unit.test_metrics = object(), object(), object()
    for phase, expected in (
        (ActivePhase.TRAIN, unit.train_metrics),
        (ActivePhase.EVALUATE, unit.eval_metrics),
        (ActivePhase.TEST, unit.test_metrics),
    ):
        state = State(entry_point=EntryPoint.FIT)
        state._active_phase = phase
        assert unit.phase_metrics(state) is expected


def test_fit_flushes_the_test_values_to_the_loggers(tmp_path: Path) -> None:
    unit = Regress()
    path = tmp_path / "metrics.csv"
    csv = CSVLogger(str(path), steps_before_flushing=1000)  # only flushes write the file
    fit(
        unit,
        _regression(2),
        _regression(1, 1),
        max_epochs=1,
        test_dataloader=_regression(2, 2),
        callbacks=[MetricsLogger(csv)],
    )
    header, *rows = path.read_text().splitlines()
    assert "test/loss" in header.split(",")
    assert rows[-1].split(",")[0] == "2"


def test_progress_bar_shows_the_test_loss_and_metrics() -> None:
    unit = Regress()
    unit.test_metrics = MeanSquaredError()
    out = io.StringIO()
    test(unit, _regression(2), callbacks=[TQDMProgressBar(file=out)])
    text = out.getvalue()
    assert "Test Epoch" in text and "loss=" in text and "mean_squared_error=" in text


class NoTestProgress(Regress):
    """Writes checkpoints like a unit without a test phase (no ``test_progress`` entry)."""

    def tracked_progress(self) -> dict[str, Any]:
        tracked = super().tracked_progress()
        tracked.pop("test_progress")
        return tracked


def test_a_checkpoint_without_test_progress_restores_strictly(tmp_path: Path) -> None:
    old = NoTestProgress()
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_epochs=1)
    fit(old, _regression(2), _regression(1, 1), max_epochs=1, callbacks=[saver])
    new = Regress()
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), new)  # strict
    assert new.train_progress.num_steps_completed == 2
    assert new.test_progress.num_steps_completed == 0
    for a, b in zip(new.module.parameters(), old.module.parameters()):
        assert torch.equal(a, b)


class NoTrainProgress(Regress):
    def tracked_progress(self) -> dict[str, Any]:
        tracked = super().tracked_progress()
        tracked.pop("train_progress")
        return tracked


def test_a_checkpoint_without_train_progress_is_still_a_mismatch(tmp_path: Path) -> None:
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_epochs=1)
    fit(NoTrainProgress(), _regression(2), _regression(1, 1), max_epochs=1, callbacks=[saver])
    with pytest.raises(CheckpointMismatchError, match="train_progress"):
        DistributedCheckpointSaver.restore_from_latest(str(tmp_path), Regress())


def test_auto_unit_is_a_test_unit() -> None:
    assert isinstance(Regress(), TestUnit)
