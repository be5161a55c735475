"""``run_stages``: hand-off, per-stage limits, resume after a crash, the manifest, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.stages.stages_script import Unit, loader, make_stages
from torchkit import fit
from torchkit.callbacks import DistributedCheckpointSaver, EarlyStopping
from torchkit.stages import Stage, run_stages
from torchkit.testing import DummyFitUnit, DummyTrainUnit, generate_random_dataloader

SCRIPT = str(Path(__file__).with_name("stages_script.py"))
REPO = str(Path(__file__).resolve().parents[2])


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


def test_modules_handoff_starts_stage_two_from_stage_one_weights(tmp_path: Path) -> None:
    results = run_stages(make_stages(None, None), dirpath=str(tmp_path))
    first, second = results[0].unit, results[1].unit
    assert first.train_progress.num_steps_completed == 8
    assert second is not first and second.train_progress.num_steps_completed == 12
    final_1 = first.net.state_dict()
    assert all(torch.equal(second.initial[k], final_1[k]) for k in final_1)
    assert second.optimizer_state_at_start == 0  # a fresh optimizer: no state handed over
    manifest = json.loads((tmp_path / "stages.json").read_text())
    assert [(e["name"], e["status"]) for e in manifest["stages"]] == [
        ("pretrain", "done"),
        ("finetune", "done"),
    ]
    assert manifest["stages"][1]["final_checkpoint"] == "stages/01_finetune/epoch_3_train_step_12"
    with open(tmp_path / "stages" / "00_pretrain" / "metrics" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["4", "8"] and rows[0]["train/loss"]


@pytest.mark.slow
def test_sigkill_in_stage_two_then_rerun_is_bit_identical(tmp_path: Path) -> None:
    ref = _script("--dir", str(tmp_path / "ref"), "--out", str(tmp_path / "ref.pt"))
    assert ref.returncode == 0, ref.stderr
    log = str(tmp_path / "hooks.log")
    run = ["--dir", str(tmp_path / "run"), "--out", str(tmp_path / "run.pt"), "--log", log]
    killed = _script(*run, "--kill-at", "5")
    assert killed.returncode == -signal.SIGKILL
    manifest = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert [e["status"] for e in manifest["stages"]] == ["done", "running"]
    resumed = _script(*run)
    assert resumed.returncode == 0, resumed.stderr
    # stage 1's hooks ran once (first call), stage 2's once per call
    assert Path(log).read_text().split() == ["pretrain", "finetune", "finetune"]
    want, got = torch.load(tmp_path / "ref.pt"), torch.load(tmp_path / "run.pt")
    assert got["steps"] == want["steps"] == 12
    assert all(torch.equal(got["params"][k], v) for k, v in want["params"].items())


def _dl() -> Any:
    return generate_random_dataloader(16, 2, 4)  # 4 steps per epoch


def test_reusing_a_unit_in_successive_fits_counts_limits_cumulatively() -> None:
    unit, dl = DummyFitUnit(2), _dl()
    fit(unit, dl, dl, max_epochs=2)
    fit(unit, dl, dl, max_epochs=2)  # TNT: the unit already did 2 epochs, so nothing runs
    assert unit.train_progress.num_steps_completed == 8


def test_run_stages_gives_each_stage_its_own_limits_on_a_reused_unit(tmp_path: Path) -> None:
    unit, dl = DummyFitUnit(2), _dl()
    stages = [Stage("a", lambda prev: unit, dl, dl, max_epochs=2),
              Stage("b", lambda prev: prev, dl, dl, max_epochs=2)]  # fmt: skip
    run_stages(stages, dirpath=str(tmp_path))
    assert unit.train_progress.num_steps_completed == 16


def test_all_handoff_carries_optimizer_state_and_progress(tmp_path: Path) -> None:
    stages = [
        Stage("a", lambda prev: Unit("a"), loader(1), max_steps=3),
        Stage("b", lambda prev: Unit("b"), loader(1), max_steps=2, handoff="all"),
    ]
    results = run_stages(stages, dirpath=str(tmp_path))
    second = results[1].unit
    assert second.optimizer_state_at_start > 0
    assert second.train_progress.num_steps_completed == 5  # 3 handed over + its own 2


def test_none_handoff_keeps_the_new_units_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    stages = [
        Stage("a", lambda prev: Unit("a"), loader(1), max_steps=2),
        Stage("b", lambda prev: Unit("b"), loader(1), max_steps=1, handoff="none"),
    ]
    first, second = (r.unit for r in run_stages(stages, dirpath=str(tmp_path)))
    assert not torch.equal(second.initial["0.weight"], first.net.state_dict()["0.weight"])


def test_rerun_of_a_finished_call_skips_every_stage(tmp_path: Path) -> None:
    first = run_stages(make_stages(None, None), dirpath=str(tmp_path))
    again = run_stages(make_stages(None, None), dirpath=str(tmp_path))
    assert [r.state is None for r in again] == [True, True]
    want = first[-1].unit.net.state_dict()
    assert all(torch.equal(again[-1].unit.net.state_dict()[k], v) for k, v in want.items())


def test_early_stopped_stage_counts_as_done(tmp_path: Path) -> None:
    dl = _dl()
    stop = EarlyStopping(metric="-eval/loss", patience=1, min_delta=10.0)
    stages = [Stage("a", lambda prev: DummyFitUnit(2), dl, dl, max_epochs=10, callbacks=[stop]),
              Stage("b", lambda prev: prev, dl, dl, max_epochs=1)]  # fmt: skip
    results = run_stages(stages, dirpath=str(tmp_path))
    assert results[0].state is not None and results[0].state.should_stop
    assert results[0].unit.train_progress.num_epochs_completed < 10
    assert [e["status"] for e in json.loads((tmp_path / "stages.json").read_text())["stages"]] == [
        "done",
        "done",
    ]


def _two(dl: Any) -> list[Stage]:
    return [Stage("a", lambda prev: DummyTrainUnit(2), dl, max_steps=1),
            Stage("b", lambda prev: prev, dl, max_steps=1)]  # fmt: skip


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["a", "c"], "records stage 1 as 'b' but stage 1 is 'c'"),
        (["b", "a"], "records stage 0 as 'a' but stage 0 is 'b'"),
        (["a"], "records stage 1 as 'b' but the list ends before it"),
    ],
)
def test_manifest_of_another_stage_list_raises_and_is_kept(
    tmp_path: Path, names: list[str], match: str
) -> None:
    dl = _dl()
    run_stages(_two(dl), dirpath=str(tmp_path))
    before = (tmp_path / "stages.json").read_text()
    stages = [Stage(n, lambda prev: DummyTrainUnit(2), dl, max_steps=1) for n in names]
    with pytest.raises(ValueError, match=f"stages\\.json .* {match}"):
        run_stages(stages, dirpath=str(tmp_path))
    assert (tmp_path / "stages.json").read_text() == before


def test_appended_stage_runs_after_the_done_ones(tmp_path: Path) -> None:
    dl = _dl()
    run_stages(_two(dl), dirpath=str(tmp_path))
    more = [*_two(dl), Stage("c", lambda prev: prev, dl, max_steps=2)]
    results = run_stages(more, dirpath=str(tmp_path))
    assert [r.state is None for r in results] == [True, True, False]
    assert results[-1].unit.train_progress.num_steps_completed == 4


def test_unreadable_manifest_raises_naming_it(tmp_path: Path) -> None:
    (tmp_path / "stages.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"stages\.json at .* is unreadable"):
        run_stages(_two(_dl()), dirpath=str(tmp_path))
    assert (tmp_path / "stages.json").read_text() == "{not json"
    assert not (tmp_path / "stages").exists()


def test_manifest_is_committed_atomically_on_memory_fs() -> None:
    import fsspec

    run_stages(_two(_dl()), dirpath="memory://stages_test/run")
    fs = fsspec.filesystem("memory")
    assert fs.exists("/stages_test/run/stages.json")
    assert not fs.exists("/stages_test/run/stages.json.tmp")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda dl: Stage("has space", lambda p: p, dl), ValueError, "name='has space'"),
        (lambda dl: Stage("a", 3, dl), TypeError, "make_unit=3 is invalid"),
        (lambda dl: Stage("a", lambda p: p, dl, max_epochs=-1), ValueError, "max_epochs: -1"),
        (lambda dl: Stage("a", lambda p: p, dl, handoff="x"), ValueError, "handoff='x'"),
        (lambda dl: Stage("a", lambda p: p, []), ValueError, "train_dataloader=.* length 0"),
        (
            lambda dl: Stage("a", lambda p: p, dl, callbacks=[DistributedCheckpointSaver("x")]),
            ValueError,
            "run_stages checkpoints every stage itself",
        ),
    ],
)
def test_bad_stage_arguments_raise(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(_dl())


def test_duplicate_stage_names_raise_before_writing(tmp_path: Path) -> None:
    dl = _dl()
    stages = [Stage("a", lambda p: DummyTrainUnit(2), dl, max_steps=1)] * 2
    with pytest.raises(ValueError, match=r"the names \['a'\] repeat"):
        run_stages(stages, dirpath=str(tmp_path))
    assert not (tmp_path / "stages.json").exists()
