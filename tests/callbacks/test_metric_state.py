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
