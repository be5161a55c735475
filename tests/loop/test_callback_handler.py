"""CallbackHandler: which hooks run, in which order, and the shared step-loss recorders."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchkit.callbacks import Callback
from torchkit.loop.callback_handler import CallbackHandler


def test_step_losses_are_recorded_once_and_first_when_a_callback_asks() -> None:
    import io

    from torchkit.callbacks import MetricsLogger, TQDMProgressBar
    from torchkit.callbacks._metric_state import loss_recorders
    from torchkit.loggers import InMemoryLogger

    record_train, record_eval, record_test = loss_recorders().values()
    plain = CallbackHandler([Callback()])
    assert record_train not in plain.on_train_step_end
    bar, ml = TQDMProgressBar(file=io.StringIO()), MetricsLogger(InMemoryLogger())
    handler = CallbackHandler([bar, ml])
    assert handler.on_train_step_end == [record_train, bar.on_train_step_end, ml.on_train_step_end]
    assert handler.on_eval_step_end == [record_eval, bar.on_eval_step_end]
    assert handler.on_test_step_end == [record_test, bar.on_test_step_end]


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


# duck typing ------------------------------------------------------------------------------


class _DuckCallback:
    """Not a Callback subclass: it only provides two of the hooks."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_train_start(self, state: object, unit: object) -> None:
        self.calls.append("start")

    def on_train_step_end(self, state: object, unit: object) -> None:
        self.calls.append("step")


def test_an_object_with_callback_hooks_is_accepted_and_only_its_hooks_run() -> None:
    from tests.callbacks._units import ClassifierUnit, loader
    from torchkit import train

    duck = _DuckCallback()
    handler = CallbackHandler([duck])
    assert handler.on_train_start == [duck.on_train_start]
    assert handler.on_train_epoch_end == [] and handler.on_train_step_end == [
        duck.on_train_step_end
    ]
    train(ClassifierUnit(), loader(8, 4), max_epochs=1, callbacks=[duck])
    assert duck.calls == ["start", "step", "step"]


def test_a_spec_mock_callback_records_every_hook_and_adds_no_loss_recorder() -> None:
    from unittest.mock import MagicMock

    from tests.callbacks._units import ClassifierUnit, loader
    from torchkit import fit

    cb = MagicMock(spec=Callback)
    handler = CallbackHandler([cb])
    assert len(handler.on_train_step_end) == 1  # no step-loss recorder for a mock's flag
    fit(ClassifierUnit(), loader(8, 4), loader(4, 4), max_epochs=2, callbacks=[cb])
    assert cb.on_train_start.call_count == 1
    assert cb.on_train_step_end.call_count == 4
    assert cb.on_eval_epoch_end.call_count == 2


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (Callback, r"callbacks\[0\]=Callback is invalid: expected a callback instance, got the "
                   r"class. Instantiate it"),
        (print, r"callbacks\[0\]=<built-in function print> is invalid.*Callback hook methods"),
        ("on_train_start", r"callbacks\[0\]='on_train_start' is invalid"),
        (object(), r"callbacks\[0\]=<object object.*is invalid"),
    ],
)  # fmt: skip
def test_objects_without_the_interface_are_rejected(bad: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        CallbackHandler([bad])


def test_tnt_iter_creation_and_test_hooks_are_dispatched() -> None:
    # These TNT hooks were once unknown to the loop (and only warned about); now they run.
    class IterHooks(Callback):
        def on_train_dataloader_iter_creation_start(self, state: object, unit: object) -> None:
            pass

        def on_test_step_end(self, state: object, unit: object) -> None:
            pass

    cb = IterHooks()
    handler = CallbackHandler([cb, Callback()])
    assert handler.on_train_dataloader_iter_creation_start == [
        cb.on_train_dataloader_iter_creation_start
    ]
    assert handler.on_test_step_end == [cb.on_test_step_end]
    assert handler.on_test_start == []
