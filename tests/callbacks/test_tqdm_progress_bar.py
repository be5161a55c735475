"""TQDMProgressBar: counts, totals (len, max_steps, max_steps_per_epoch, resume), postfix."""

from __future__ import annotations

import io
import re

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import State, evaluate, fit, predict, train
from torchkit.callbacks import Callback, MetricsLogger, TQDMProgressBar
from torchkit.loggers import InMemoryLogger
from torchkit.testing import DummyPredictUnit


def _final_counts(text: str, label: str) -> list[str]:
    """The last ``n/total`` drawn for each bar whose description starts with ``label``."""
    out: dict[str, str] = {}
    for desc, count in re.findall(rf"({label} Epoch \d+):[^|]*\|[^|]*\| (\d+/\d+)", text):
        out[desc] = count
    return list(out.values())


def test_sized_loader_counts_and_loss_postfix() -> None:
    buf = io.StringIO()
    train(ClassifierUnit(), loader(24, 4), max_epochs=2,
          callbacks=[TQDMProgressBar(refresh_rate=2, file=buf, mininterval=0)])  # fmt: skip
    text = buf.getvalue()
    assert _final_counts(text, "Train") == ["6/6", "6/6"]
    assert re.search(r"loss=\d+\.\d+", text)
    assert "2/6" in text and "4/6" in text


def test_total_follows_max_steps() -> None:
    buf = io.StringIO()
    train(ClassifierUnit(), loader(24, 4), max_steps=8,
          callbacks=[TQDMProgressBar(refresh_rate=1, file=buf)])  # fmt: skip
    assert _final_counts(buf.getvalue(), "Train") == ["6/6", "2/2"]


def test_total_follows_max_steps_per_epoch() -> None:
    buf = io.StringIO()
    train(ClassifierUnit(), loader(24, 4), max_epochs=1, max_steps_per_epoch=4,
          callbacks=[TQDMProgressBar(file=buf)])  # fmt: skip
    assert _final_counts(buf.getvalue(), "Train") == ["4/4"]


def test_total_is_right_after_a_mid_epoch_resume() -> None:
    unit = ClassifierUnit()
    # as restored from a checkpoint taken 3 steps into epoch 2 (epochs of 5 steps)
    unit.train_progress.num_epochs_completed = 1
    unit.train_progress.num_steps_completed = 8
    unit.train_progress.num_steps_completed_in_epoch = 3
    buf = io.StringIO()
    train(unit, loader(24, 4), max_epochs=2, max_steps_per_epoch=5,
          callbacks=[TQDMProgressBar(refresh_rate=1, file=buf, mininterval=0)])  # fmt: skip
    text = buf.getvalue()
    assert unit.train_progress.num_steps_completed == 10
    assert _final_counts(text, "Train") == ["5/5"]
    assert "3/5" in text and "0/5" not in text  # the bar starts where the run resumed


def test_resumed_run_capped_by_max_steps() -> None:
    unit = ClassifierUnit()
    unit.train_progress.num_steps_completed = 2
    unit.train_progress.num_steps_completed_in_epoch = 2
    buf = io.StringIO()
    train(unit, loader(40, 4), max_steps=5, callbacks=[TQDMProgressBar(file=buf)])
    assert _final_counts(buf.getvalue(), "Train") == ["5/5"]


def test_eval_and_predict_bars() -> None:
    buf = io.StringIO()
    pb = TQDMProgressBar(refresh_rate=1, file=buf)
    unit = ClassifierUnit()
    evaluate(unit, loader(12, 4), callbacks=[pb])
    predict(DummyPredictUnit(4), loader(8, 4), callbacks=[pb])
    text = buf.getvalue()
    assert "Eval Epoch 1" in text and "3/3" in text
    assert "Predict Epoch 1" in text and "2/2" in text


def test_postfix_shows_chosen_metrics_in_fit() -> None:
    buf = io.StringIO()
    pb = TQDMProgressBar(refresh_rate=2, file=buf, metrics=("train/accuracy",))
    fit(ClassifierUnit(), loader(16, 4), loader(8, 4), max_epochs=1,
        callbacks=[pb, MetricsLogger(InMemoryLogger(), every_n_steps=2)])  # fmt: skip
    assert re.search(r"loss=[\d.]+, train/accuracy=[\d.]+", buf.getvalue())


def test_default_throttle_still_draws_the_final_count() -> None:
    buf = io.StringIO()
    train(ClassifierUnit(), loader(40, 4), max_epochs=1,
          callbacks=[TQDMProgressBar(refresh_rate=1, file=buf)])  # fmt: skip
    assert _final_counts(buf.getvalue(), "Train") == ["10/10"]
    assert "loss=" in buf.getvalue()


def test_other_ranks_draw_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    buf = io.StringIO()
    train(ClassifierUnit(), loader(8, 4), max_epochs=1, callbacks=[TQDMProgressBar(file=buf)])
    assert buf.getvalue() == ""


def test_bad_refresh_rate_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"refresh_rate=-5 is invalid: expected an int >= 1"):
        TQDMProgressBar(refresh_rate=-5)


@pytest.mark.parametrize(("mininterval", "syncs"), [(0, 2 * 10), (3600, 1 + 2)])
def test_postfix_is_computed_only_when_the_bar_can_redraw(
    host_syncs: list[str], mininterval: float, syncs: int
) -> None:
    buf = io.StringIO()
    bar = TQDMProgressBar(refresh_rate=1, file=buf, mininterval=mininterval)
    train(ClassifierUnit(), loader(40, 4), max_epochs=2, callbacks=[bar])  # 10 steps/epoch
    # mininterval=0: one read per refresh; a long mininterval: the first refresh of the run
    # and the two epoch ends
    assert len(host_syncs) == syncs, host_syncs
    assert _final_counts(buf.getvalue(), "Train") == ["10/10", "10/10"]
    assert re.search(r"10/10 \[[^\]]*loss=\d+\.\d+", buf.getvalue())  # the last draw has it


class LossLog(Callback):
    """Records every train step's loss, to check the means the loggers report."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_step_end(self, state: State, unit: object) -> None:
        from torchkit.callbacks._metric_state import extract_loss

        assert state.train_state is not None
        loss = extract_loss(state.train_state.step_output)
        assert loss is not None
        self.losses.append(float(loss))


def test_bar_reuses_the_loggers_publication_and_leaves_its_windows_whole(
    host_syncs: list[str],
) -> None:
    lg, seen = InMemoryLogger(), LossLog()
    bar = TQDMProgressBar(refresh_rate=3, file=io.StringIO(), mininterval=0)
    # the bar refreshes at steps 3, 6, 9...; the logger logs at 4, 8, 12 (and epoch end)
    train(ClassifierUnit(), loader(48, 4), max_epochs=1,
          callbacks=[seen, bar, MetricsLogger(lg, every_n_steps=4)])  # fmt: skip
    for step in (4, 8, 12):  # every logged mean covers the logger's full window of 4 steps
        expected = sum(seen.losses[step - 4 : step]) / 4
        assert lg.log_buffer[step]["train/loss"] == pytest.approx(expected, rel=1e-6)
    # one read per logger interval, plus the bar's first read (a peek: nothing published yet)
    assert len(host_syncs) == 3 + 1, host_syncs


def test_a_rarer_logger_keeps_whole_windows_while_the_bar_shows_fresh_losses(
    host_syncs: list[str],
) -> None:
    lg, seen, buf = InMemoryLogger(), LossLog(), io.StringIO()
    bar = TQDMProgressBar(refresh_rate=1, file=buf, mininterval=0)  # a read every step
    train(ClassifierUnit(), loader(64, 4), max_epochs=1,
          callbacks=[seen, bar, MetricsLogger(lg, every_n_steps=8)])  # fmt: skip
    for step in (8, 16):  # the bar's reads did not cut the logger's windows short
        expected = sum(seen.losses[step - 8 : step]) / 8
        assert lg.log_buffer[step]["train/loss"] == pytest.approx(expected, rel=1e-6)
    # the bar showed each step's own loss (its window since its previous read is one step)
    assert f"loss={seen.losses[4]:.4g}" in buf.getvalue()
    # 16 steps: the bar peeks at steps 2..16 for steps 1..15 except where the logger just
    # published (steps 9 and 17 would reuse; 17 does not exist), plus the logger's 2 reads
    assert len(host_syncs) == 14 + 2, host_syncs


def _two_rank_bar_run() -> tuple[int, float | None]:
    unit = ClassifierUnit()  # train_metrics: accuracy, whose compute() is a collective
    bar = TQDMProgressBar(refresh_rate=1, file=io.StringIO(), mininterval=0)
    state = train(unit, loader(16, 4), max_epochs=2, callbacks=[bar])
    return unit.train_progress.num_steps_completed, state.metrics.get("train/accuracy")


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_two_ranks_with_train_metrics_and_only_a_bar_do_not_hang() -> None:
    from torchkit.utils.distributed import launch_processes

    # every rank must publish at epoch end, though only rank 0 draws: before, rank 0 alone
    # called compute() (an all-gather) and both ranks hung
    results = launch_processes(2, "gloo", _two_rank_bar_run, start_method="spawn", timeout_s=90)
    assert [steps for steps, _ in results] == [8, 8]
    assert results[0][1] is not None and results[0][1] == results[1][1]
