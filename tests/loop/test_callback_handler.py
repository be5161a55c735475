"""CallbackHandler: which hooks run, in which order, and the shared step-loss recorders."""

from __future__ import annotations

from pathlib import Path

from torchkit.callbacks import Callback
from torchkit.loop.callback_handler import CallbackHandler


def test_step_losses_are_recorded_once_and_first_when_a_callback_asks() -> None:
    import io

    from torchkit.callbacks import MetricsLogger, TQDMProgressBar
    from torchkit.callbacks._metric_state import loss_recorders
    from torchkit.loggers import InMemoryLogger

    record_train, record_eval = loss_recorders()
    plain = CallbackHandler([Callback()])
    assert record_train not in plain.on_train_step_end
    bar, ml = TQDMProgressBar(file=io.StringIO()), MetricsLogger(InMemoryLogger())
    handler = CallbackHandler([bar, ml])
    assert handler.on_train_step_end == [record_train, bar.on_train_step_end, ml.on_train_step_end]
    assert handler.on_eval_step_end == [record_eval, bar.on_eval_step_end]


def test_best_checkpoint_on_the_eval_loss_mean_needs_no_other_callback(tmp_path: Path) -> None:
    from tests.callbacks._units import ClassifierUnit, loader
    from torchkit import fit
    from torchkit.callbacks import DistributedCheckpointSaver
    from torchkit.checkpoint import BestCheckpointConfig, get_best_checkpoint_path

    saver = DistributedCheckpointSaver(
        str(tmp_path), save_every_n_eval_epochs=1,
        best_checkpoint_config=BestCheckpointConfig("eval/loss", mode="min"),
    )  # fmt: skip
    fit(ClassifierUnit(), loader(16, 4), loader(8, 4), max_epochs=2, callbacks=[saver])
    best = get_best_checkpoint_path(str(tmp_path), "eval/loss", "min")
    assert best is not None and "eval_loss=" in best  # named with the metric: it was published
