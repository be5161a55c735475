"""Exact resume across a real crash (SIGKILL): train and fit end bit-identical."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.checkpoint.resume_script import Unit
from tests.checkpoint.units import load_result, names, popen_script, run_script, same_params
from torchkit.callbacks import DistributedCheckpointSaver
from torchkit.checkpoint import get_latest_checkpoint_path, list_checkpoints


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Uninterrupted 15-step runs of train and fit (run concurrently), probed at step 8."""
    root = tmp_path_factory.mktemp("ref")
    procs = {
        mode: popen_script(
            "--mode",
            mode,
            "--dir",
            str(root / mode),
            "--out",
            str(root / f"{mode}.pt"),
            "--probe-at",
            "8",
        )
        for mode in ("train", "fit")
    }
    for p in procs.values():
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    return {mode: load_result(root / f"{mode}.pt") for mode in procs}


@pytest.mark.parametrize("mode", ["train", "fit"])
def test_resume_after_sigkill_is_bit_identical(
    mode: str, references: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    ckpt = str(tmp_path / "ckpt")
    killed = run_script("--mode", mode, "--dir", ckpt, "--out", str(tmp_path / "x.pt"),
                        "--kill-after", "10")  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert names([u for u, _ in list_checkpoints(ckpt)]) == [
        "epoch_0_train_step_4",
        "epoch_1_train_step_8",
    ]
    resumed = run_script("--mode", mode, "--dir", ckpt, "--out", str(tmp_path / "r.pt"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ref, out = references[mode], load_result(tmp_path / "r.pt")
    assert out["restored"] and out["resumed_at"] == 8
    assert out["probe"] == ref["probe"]  # next python/numpy/torch draws after restore
    assert same_params(out["params"], ref["params"])
    assert out["steps"] == ref["steps"] == 15
    assert out["eval_epochs"] == ref["eval_epochs"]  # the eval due at step 8 ran on resume


def test_kill_during_commit_leaves_previous_checkpoint_latest_and_loadable(tmp_path: Path) -> None:
    ckpt = str(tmp_path / "ckpt")
    killed = run_script("--dir", ckpt, "--out", str(tmp_path / "x.pt"), "--kill-in-commit", "2")
    assert killed.returncode == -signal.SIGKILL
    # step 8's data files exist but its commit marker does not
    assert (tmp_path / "ckpt" / "epoch_1_train_step_8").is_dir()
    latest = get_latest_checkpoint_path(ckpt)
    assert latest is not None and latest.endswith("epoch_0_train_step_4")
    unit = Unit()  # the script's unit, restored in this process
    assert DistributedCheckpointSaver.restore_from_latest(ckpt, unit)
    assert unit.train_progress.num_steps_completed == 4
