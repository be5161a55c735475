"""A ``tok`` budget across a real crash (SIGKILL): the token count is checkpointed, so the
resumed run stops at the same global step with bit-identical weights."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.checkpoint.units import load_result, names, popen_script, run_script, same_params
from torchkit.checkpoint import list_checkpoints


@pytest.mark.slow
def test_1e3tok_run_killed_at_step_3_resumes_to_the_same_step(tmp_path: Path) -> None:
    # 24 samples in batches of 4, 16 tokens a sample: 64 tokens a step, 1e3tok -> 16 steps
    common = ("--mode", "train", "--max-duration", "1e3tok", "--save-every", "3")
    ref_dir, ref_out = str(tmp_path / "ref"), str(tmp_path / "ref.pt")
    ref_proc = popen_script(*common, "--dir", ref_dir, "--out", ref_out)
    ckpt = str(tmp_path / "ckpt")
    killed = run_script(
        *common, "--dir", ckpt, "--out", str(tmp_path / "x.pt"), "--kill-after", "3"
    )
    _, err = ref_proc.communicate(timeout=90)
    assert ref_proc.returncode == 0, err
    assert killed.returncode == -signal.SIGKILL
    assert names([u for u, _ in list_checkpoints(ckpt)]) == ["epoch_0_train_step_3"]
    resumed = run_script(*common, "--dir", ckpt, "--out", str(tmp_path / "r.pt"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ref, out = load_result(tmp_path / "ref.pt"), load_result(tmp_path / "r.pt")
    assert out["restored"] and out["resumed_at"] == 3
    assert ref["steps"] == out["steps"] == 16
    assert ref["tokens"] == out["tokens"] == 1024
    assert same_params(out["params"], ref["params"])
