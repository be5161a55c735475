"""Preemption: SIGTERM/SIGUSR1 set a flag; the checkpointer saves at the next step and stops."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.checkpoint.units import (
    FitUnit,
    batches,
    load_result,
    names,
    popen_script,
    run_script,
    same_params,
)
from torchkit import fit, train
from torchkit.callbacks import DistributedCheckpointSaver, Lambda
from torchkit.callbacks.preemption import PreemptionWatcher


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pref")
    done = run_script("--mode", "fit", "--dir", str(root / "c"), "--out", str(root / "r.pt"),
                      "--max-steps", "12")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return load_result(root / "r.pt")


def test_sigterm_from_parent_saves_exits_zero_and_resumes_bit_identical(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    ckpt, ready = str(tmp_path / "c"), tmp_path / "ready"
    proc = popen_script("--mode", "fit", "--dir", ckpt, "--out", str(tmp_path / "p.pt"),
                        "--max-steps", "12", "--save-every", "100", "--sleep", "0.1",
                        "--ready-file", str(ready))  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # exited through the normal path
    out = load_result(tmp_path / "p.pt")
    assert out["preempted"] and 3 <= out["steps"] < 12
    # exactly one checkpoint: the preemption save, at the last completed step
    assert names(out["checkpoints"])[-1].endswith(f"train_step_{out['steps']}")
    resumed = run_script("--mode", "fit", "--dir", ckpt, "--out", str(tmp_path / "r.pt"),
                         "--max-steps", "12", "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = load_result(tmp_path / "r.pt")
    assert final["resumed_at"] == out["steps"] and not final["preempted"]
    assert same_params(final["params"], reference["params"])
    assert final["eval_epochs"] == reference["eval_epochs"]


def test_sigterm_during_eval_reruns_that_eval_on_resume(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    ckpt = str(tmp_path / "c")
    first = run_script("--mode", "fit", "--dir", ckpt, "--out", str(tmp_path / "p.pt"),
                       "--max-steps", "12", "--save-every", "100",
                       "--sigterm-in-eval-at", "8")  # fmt: skip
    assert first.returncode == 0, first.stderr
    out = load_result(tmp_path / "p.pt")
    assert out["preempted"] and out["steps"] == 8
    assert out["eval_epochs"] == 1  # the eval at step 8 was cut short, not counted
    resumed = run_script("--mode", "fit", "--dir", ckpt, "--out", str(tmp_path / "r.pt"),
                         "--max-steps", "12", "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    final = load_result(tmp_path / "r.pt")
    assert final["eval_epochs"] == reference["eval_epochs"] == 3
    assert same_params(final["params"], reference["params"])


def _send_at_step(n: int, sig: int = signal.SIGTERM) -> Lambda:
    import os

    def fn(state: Any, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == n - 1:
            os.kill(os.getpid(), sig)

    return Lambda(on_train_step_start=fn)


def test_in_process_sigusr1_stops_after_the_step_without_closing_the_epoch(tmp_path: Path) -> None:
    unit = FitUnit()
    saver = DistributedCheckpointSaver(
        str(tmp_path), preemption_signals=(signal.SIGTERM, signal.SIGUSR1)
    )
    before = signal.getsignal(signal.SIGUSR1)
    state = train(
        unit, batches(4), max_epochs=3, callbacks=[saver, _send_at_step(6, signal.SIGUSR1)]
    )
    assert state.preempted
    assert unit.train_progress.num_steps_completed == 6
    assert unit.train_progress.num_epochs_completed == 1  # epoch 2 stays open
    assert unit.train_progress.num_steps_completed_in_epoch == 2
    assert names(saver.retained_checkpoints) == ["epoch_1_train_step_6"]  # no end-of-train save
    assert signal.getsignal(signal.SIGUSR1) is before  # handlers put back


def test_preemption_during_fit_marks_the_due_eval_pending(tmp_path: Path) -> None:
    unit = FitUnit()
    saver = DistributedCheckpointSaver(str(tmp_path))
    dl = batches(4)
    state = fit(unit, dl, dl, max_steps=8, evaluate_every_n_steps=2, evaluate_every_n_epochs=None,
                callbacks=[saver, _send_at_step(4)])  # fmt: skip
    assert state.preempted and unit.eval_progress.num_epochs_completed == 1  # eval at 4 skipped
    fresh = FitUnit(seed=1)
    assert DistributedCheckpointSaver.restore_from_latest(str(tmp_path), fresh)
    fit(fresh, dl, dl, max_steps=8, evaluate_every_n_steps=2, evaluate_every_n_epochs=None,
        callbacks=[DistributedCheckpointSaver(str(tmp_path))])  # fmt: skip
    assert fresh.eval_progress.num_epochs_completed == 4  # evals at 2, 4 (re-run), 6, 8


def test_preemption_can_be_turned_off(tmp_path: Path) -> None:
    saver = DistributedCheckpointSaver(str(tmp_path), preemption_signals=())
    before = signal.getsignal(signal.SIGTERM)
    seen: list[Any] = []
    spy = Lambda(on_train_step_end=lambda s, u: seen.append(signal.getsignal(signal.SIGTERM)))
    train(FitUnit(), batches(2), max_epochs=1, callbacks=[saver, spy])
    assert seen == [before, before]


@pytest.mark.parametrize(
    ("signals", "exc", "match"),
    [
        ((signal.SIGKILL,), ValueError, "SIGKILL cannot be caught"),
        ((12345,), ValueError, "12345 is not a signal"),
        ("SIGTERM", TypeError, "expected a sequence of signals"),
    ],
)
def test_invalid_preemption_signals(signals: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        DistributedCheckpointSaver("unused", preemption_signals=signals)


def test_watcher_without_signal_is_not_stopping() -> None:
    w = PreemptionWatcher((signal.SIGUSR1,))
    w.install()
    try:
        assert not w.should_stop()
        signal.raise_signal(signal.SIGUSR1)
        assert w.should_stop()
    finally:
        w.uninstall()
