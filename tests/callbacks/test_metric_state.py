"""The shared metric publication: computed once, read once, order-independent."""

from __future__ import annotations

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import State, fit
from torchkit.callbacks import Callback, EarlyStopping, MetricsLogger
from torchkit.callbacks._metric_state import extract_loss, metric_name, publish_eval
from torchkit.loggers import InMemoryLogger


class ReadsEvalMetrics(Callback):
    """Stands in for a best-checkpoint callback that only reads ``state.metrics``."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_eval_epoch_end(self, state: State, unit: object) -> None:
        publish_eval(state, unit)
        self.seen.append(state.metrics["eval/accuracy"])


@pytest.mark.parametrize("reader_first", [True, False])
def test_values_are_the_same_whatever_the_callback_order(reader_first: bool) -> None:
    reader, lg = ReadsEvalMetrics(), InMemoryLogger()
    es = EarlyStopping(metric="+eval/accuracy", patience=5)
    cbs = [reader, MetricsLogger(lg, 100), es]
    if not reader_first:
        cbs.reverse()
    fit(ClassifierUnit(), loader(16, 4), loader(8, 4), max_epochs=2, callbacks=cbs)
    logged = [lg.log_buffer[s]["eval/accuracy"] for s in (4, 8)]
    assert reader.seen == logged
    assert es.checker.best_value == max(logged)


def test_helpers() -> None:
    t = torch.tensor(1.0)
    assert extract_loss((t, None)) is t and extract_loss(t) is t and extract_loss("x") is None
    from torchmetrics.classification import BinaryF1Score, MulticlassAccuracy

    assert metric_name(MulticlassAccuracy(num_classes=2)) == "accuracy"
    assert metric_name(BinaryF1Score()) == "f1_score"


class ScriptedLossUnit:
    """Just enough of a unit for ``StepRecorder`` and ``publish_train``."""

    def __init__(self) -> None:
        from torchkit.loop.progress import Progress

        self.train_progress = Progress()


def _record_losses(losses: list[torch.Tensor]) -> dict[str, float]:
    from torchkit.callbacks._metric_state import publish_train, record_step
    from torchkit.loop.state import EntryPoint, PhaseState

    state = State(entry_point=EntryPoint.TRAIN, train_state=PhaseState(dataloader=[]))
    unit = ScriptedLossUnit()
    assert state.train_state is not None
    for loss in losses:
        state.train_state._step_output = (loss, None)
        unit.train_progress.increment_step()
        record_step(state, unit, "train")
        record_step(state, unit, "train")  # recorded twice at the same step: counted once
    return publish_train(state, unit)


def test_interval_mean_of_bf16_losses_is_exact_in_float64() -> None:
    import math

    g = torch.Generator().manual_seed(0)
    losses = [x.to(torch.bfloat16) for x in torch.rand(3000, generator=g) * 10]
    expected = math.fsum(float(x) for x in losses) / len(losses)
    # 3000 > the 1024 fold: the folded partial sum is fp32, so allow fp32 rounding of it only
    assert _record_losses(losses)["train/loss"] == pytest.approx(expected, rel=1e-6)
    short = losses[:1000]  # no fold: every loss is read as it is and summed on the host
    assert _record_losses(short)["train/loss"] == math.fsum(float(x) for x in short) / 1000


def test_loss_of_shape_one_and_mixed_dtypes_are_averaged() -> None:
    losses = [torch.tensor([1.0]), torch.tensor(2.0, dtype=torch.bfloat16), torch.tensor(3.0)]
    assert _record_losses(losses) == {"train/loss": 2.0}
