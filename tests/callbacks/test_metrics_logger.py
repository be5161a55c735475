"""MetricsLogger: loss means, torchmetrics with prefixes, LR, and no extra host syncs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import AutoUnit, State, fit, train
from torchkit.callbacks import MetricsLogger, TQDMProgressBar
from torchkit.loggers import InMemoryLogger, TensorBoardLogger


class CEAuto(AutoUnit[tuple[torch.Tensor, torch.Tensor]]):
    """Cross-entropy AutoUnit on the ``loader`` batches."""

    def compute_loss(
        self, state: State, data: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.module(data[0])
        return torch.nn.functional.cross_entropy(out, data[1]), out

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(module.parameters(), lr=0.1), None


def test_train_loss_is_the_interval_mean() -> None:
    lg = InMemoryLogger()
    unit = ClassifierUnit()
    train(unit, loader(32, 4), max_epochs=1, callbacks=[MetricsLogger(lg, every_n_steps=4)])
    assert sorted(lg.log_buffer) == [4, 8]
    losses = torch.stack(unit.train_losses)
    assert lg.log_buffer[4]["train/loss"] == pytest.approx(losses[:4].mean().item(), rel=1e-6)
    assert lg.log_buffer[8]["train/loss"] == pytest.approx(losses[4:].mean().item(), rel=1e-6)
    assert lg.log_buffer[4]["train/lr"] == 0.1
    assert 0.0 <= lg.log_buffer[4]["train/accuracy"] <= 1.0


def test_fit_logs_eval_metrics_with_prefix_and_resets_them() -> None:
    lg = InMemoryLogger()
    unit = ClassifierUnit()
    state = fit(
        unit, loader(16, 4), loader(8, 4), max_epochs=2,
        callbacks=[MetricsLogger(lg, every_n_steps=100)],
    )  # fmt: skip
    # epoch ends at train steps 4 and 8 log train/* then eval/*, merged per step
    assert sorted(lg.log_buffer) == [4, 8]
    assert {"train/loss", "train/accuracy", "eval/loss", "eval/accuracy"} <= set(lg.log_buffer[8])
    assert state.metrics["eval/accuracy"] == lg.log_buffer[8]["eval/accuracy"]
    assert unit.eval_metrics is not None and not unit.eval_metrics.update_called  # reset


def test_writes_tensorboard_curves(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(str(tmp_path))
    train(ClassifierUnit(), loader(16, 2), max_epochs=1, callbacks=[MetricsLogger(tb, 4)])
    tb.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [4, 8]


@pytest.mark.parametrize("every_n_steps", [0, -1, 2.5])
def test_bad_interval_is_a_clear_error(every_n_steps: object) -> None:
    with pytest.raises(ValueError, match=rf"every_n_steps={every_n_steps!r} is invalid"):
        MetricsLogger(InMemoryLogger(), every_n_steps=every_n_steps)  # type: ignore[arg-type]


def test_not_a_logger_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"loggers\[0\]=.* is invalid: expected a MetricLogger"):
        MetricsLogger([object()], every_n_steps=1)  # type: ignore[list-item]


def test_at_most_one_host_sync_per_logging_interval(host_syncs: list[str]) -> None:
    lg = InMemoryLogger()
    callbacks = [
        TQDMProgressBar(refresh_rate=10, file=io.StringIO()),
        MetricsLogger(lg, every_n_steps=10),
    ]
    train(ClassifierUnit(), loader(160, 4), max_epochs=1, callbacks=callbacks)  # 40 steps
    assert sorted(lg.log_buffer) == [10, 20, 30, 40]
    assert len(host_syncs) <= 4, host_syncs
    assert host_syncs, "the wrapper saw no read at all: the test is not measuring anything"


def test_with_autounit_metrics_are_logged_with_prefixes_and_reset() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    unit = CEAuto(module=torch.nn.Linear(4, 2), device="cpu")
    unit.train_metrics = MulticlassAccuracy(num_classes=2)
    unit.eval_metrics = MulticlassAccuracy(num_classes=2)
    lg = InMemoryLogger()
    state = fit(unit, loader(16, 4), loader(8, 4), max_epochs=2,
                callbacks=[MetricsLogger(lg, every_n_steps=2)])  # fmt: skip
    assert sorted(lg.log_buffer) == [2, 4, 6, 8]
    assert {"train/loss", "train/accuracy", "train/lr"} <= set(lg.log_buffer[2])
    assert {"eval/loss", "eval/accuracy"} <= set(lg.log_buffer[8])
    assert state.metrics["eval/loss"] == lg.log_buffer[8]["eval/loss"]
    assert not unit.eval_metrics.update_called and not unit.train_metrics.update_called


def test_autounit_grad_norm_is_logged_as_the_norm_of_the_last_update() -> None:
    norms: list[torch.Tensor] = []

    class Auto(CEAuto):
        def on_train_step_end(self, state, data, step, results):  # type: ignore[no-untyped-def]
            norms.append(results.total_grad_norm)

    unit = Auto(module=torch.nn.Linear(4, 2), device="cpu", clip_grad_norm=0.5)
    lg = InMemoryLogger()
    train(unit, loader(16, 4), max_epochs=1, callbacks=[MetricsLogger(lg, every_n_steps=2)])
    assert lg.log_buffer[2]["train/grad_norm"] == pytest.approx(float(norms[1]))
    assert lg.log_buffer[4]["train/grad_norm"] == pytest.approx(float(norms[3]))


def test_autounit_bar_logger_and_tensorboard_read_once_per_interval(
    host_syncs: list[str], tmp_path: Path
) -> None:
    """The benchmark's configuration: loss, accuracy, grad norm and LR in one read."""
    from torchmetrics.classification import MulticlassAccuracy

    unit = CEAuto(module=torch.nn.Linear(4, 2), device="cpu", clip_grad_norm=1.0)
    unit.train_metrics = MulticlassAccuracy(num_classes=2)
    mem = InMemoryLogger()
    tb = TensorBoardLogger(str(tmp_path))
    callbacks = [
        TQDMProgressBar(refresh_rate=10, file=io.StringIO()),
        MetricsLogger([mem, tb], every_n_steps=10),
    ]
    train(unit, loader(160, 4), max_epochs=1, callbacks=callbacks)  # 40 steps
    tb.close()
    assert sorted(mem.log_buffer) == [10, 20, 30, 40]
    assert set(mem.log_buffer[40]) == {
        "train/loss",
        "train/accuracy",
        "train/grad_norm",
        "train/lr",
    }
    assert len(host_syncs) == 4, host_syncs  # one stacked read per logging interval


def test_values_logged_before_a_failure_reach_the_files(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class FailsAtStep25(ClassifierUnit):
        def train_step(self, state: State, data: tuple[torch.Tensor, torch.Tensor]) -> Any:
            if self.train_progress.num_steps_completed == 24:
                raise RuntimeError("boom")
            return super().train_step(state, data)

    tb = TensorBoardLogger(str(tmp_path))  # buffers up to 100 events before writing
    with pytest.raises(RuntimeError, match="boom"):
        train(FailsAtStep25(), loader(160, 4), max_epochs=1,
              callbacks=[MetricsLogger(tb, every_n_steps=10)])  # fmt: skip
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [10, 20]
    tb.close()
