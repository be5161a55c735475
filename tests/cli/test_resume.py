"""Run directories: resume never/auto/force, config.<n>.yaml, SIGKILL mid-epoch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.cli._data import CAPTURED, MLP, RandomRegressionLoader
from tests.cli._helpers import config, run, write

pytest.importorskip("torchdata")

ROOT = Path(__file__).resolve().parents[2]
SAVER = {"class_path": "DistributedCheckpointSaver", "init_args": {"save_every_n_epochs": 1}}
MID_EPOCH_SAVER = {
    "class_path": "DistributedCheckpointSaver",
    "init_args": {"save_every_n_train_steps": 3},
}


@pytest.fixture(autouse=True)
def _clear_captured() -> None:
    CAPTURED.clear()


def _cfg(saver: dict[str, object] = SAVER, **changes: object) -> dict[str, object]:
    cfg = config(**changes)
    # exact mid-epoch resume needs a loader that checkpoints its position
    loader = cfg["train_dataloader"]
    loader["class_path"] = "tests.cli._data.StatefulRegressionLoader"  # type: ignore[index]
    cfg["callbacks"].append(saver)  # type: ignore[attr-defined]
    return cfg


def _final() -> dict[str, torch.Tensor]:
    final: dict[str, torch.Tensor] = CAPTURED["run"]["final"]
    return final


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _uninterrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cfg: dict[str, object]
) -> dict[str, torch.Tensor]:
    a = write(tmp_path / "ref.yaml", cfg)
    assert run(["fit", "--config", a, "--run_dir", str(tmp_path / "ref")], capsys)[0] == 0
    return _final()


def test_changed_max_epochs_resumes_bit_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Resuming at an epoch boundary: a shuffled StatefulDataLoader does not replay the next
    # epoch's order exactly there (torchkit core, also through the Python API), so this
    # test reads the data in order; the SIGKILL test below resumes a shuffled run mid-epoch.
    ordered = {"class_path": "tests.cli._data.StatefulRegressionLoader"}
    reference = _uninterrupted(tmp_path, capsys, _cfg(train_dataloader=ordered))
    run_dir = str(tmp_path / "run")
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1, train_dataloader=ordered))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    code, _, err = run(["fit", "--config", a, "--run_dir", run_dir, "--max_epochs", "2"], capsys)
    assert code == 0, err
    assert "continuing the run in" in err and "from step 4 (epoch 1)" in err
    _assert_equal(_final(), reference)
    assert CAPTURED["run"]["steps"] == 8
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["checkpoints", "config.1.yaml", "config.yaml", "fingerprint.json"]
    assert "max_epochs: 1" in (tmp_path / "run" / "config.yaml").read_text()
    assert "max_epochs: 2" in (tmp_path / "run" / "config.1.yaml").read_text()


def test_changed_lr_refuses_unless_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1))
    assert run(["fit", "--config", a, "--run_dir", str(run_dir)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    lr = ["--unit.init_args.optimizer.init_args.lr", "0.1"]
    code, _, err = run(["fit", "--config", a, "--run_dir", str(run_dir), *lr], capsys)
    assert code == 2
    assert "unit.init_args.optimizer.init_args.lr: 0.05 -> 0.1" in err and "force" in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    code, _, err = run(
        [
            "fit",
            "--config",
            a,
            "--run_dir",
            str(run_dir),
            *lr,
            "--max_epochs",
            "2",
            "--resume",
            "force",
        ],
        capsys,
    )
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 8  # continued from step 4
    assert (run_dir / "config.1.yaml").exists()
    assert (run_dir / "config.yaml").read_bytes() == before["config.yaml"]


def test_resume_never_refuses_an_existing_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    code, _, err = run(["fit", "--config", a, "--run_dir", run_dir, "--resume", "never"], capsys)
    assert code == 2 and "resume='never' is invalid" in err
    assert not (tmp_path / "run" / "config.1.yaml").exists()


def test_evaluate_latest_checkpoint_of_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    code, out, err = run(
        [
            "evaluate",
            "--run_dir",
            run_dir,
            "--checkpoint",
            "latest",
            "--loggers",
            '["StdoutLogger"]',
            "--log_every_n_steps",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    assert "eval/loss" in out
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoints",
        "config.yaml",
        "fingerprint.json",
    ]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_is_bit_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = _uninterrupted(tmp_path, capsys, _cfg(MID_EPOCH_SAVER))
    CAPTURED.clear()
    cfg = _cfg(MID_EPOCH_SAVER)
    cfg["callbacks"].append(  # type: ignore[attr-defined]
        {
            "class_path": "tests.cli._data.KillAt",
            "init_args": {"step": 7, "marker": str(tmp_path / "killed")},
        }
    )
    args = ["fit", "--config", write(tmp_path / "a.yaml", cfg), "--run_dir", str(tmp_path / "r")]
    proc = subprocess.run(
        [sys.executable, "-m", "torchkit", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == -9, proc.stderr  # killed in epoch 2, after the step-6 save
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == [
        "epoch_0_train_step_3",
        "epoch_1_train_step_6",
    ]
    assert (tmp_path / "killed").exists()
    code, _, err = run(args, capsys)  # the same command again
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 8
    _assert_equal(_final(), reference)


def test_evaluate_best_reads_the_runs_best_checkpoint_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    best = {"monitored_metric": "eval/loss", "mode": "min"}
    saver = {
        "class_path": "DistributedCheckpointSaver",
        "init_args": {"save_every_n_eval_epochs": 1, "best_checkpoint_config": best},
    }
    a = write(tmp_path / "a.yaml", _cfg(saver))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    logging = ["--loggers", '["StdoutLogger"]', "--log_every_n_steps", "1"]
    for spec in ("best", "best:eval/loss:min"):
        code, out, err = run(
            ["evaluate", "--run_dir", run_dir, "--checkpoint", spec, *logging], capsys
        )
        assert code == 0, err
        assert "eval/loss" in out
    code, _, err = run(["evaluate", "--run_dir", run_dir, "--checkpoint", "best:x"], capsys)
    assert code == 2 and "best:<metric>:<min|max>" in err


def test_train_and_predict_subcommands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(max_epochs=1)
    cfg.pop("eval_dataloader")
    run_dir = tmp_path / "run"
    code, _, err = run(
        ["train", "--config", write(tmp_path / "t.yaml", cfg), "--run_dir", str(run_dir)], capsys
    )
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 4
    (ckpt,) = (run_dir / "checkpoints").iterdir()
    code, _, err = run(
        [
            "predict",
            "--run_dir",
            str(run_dir),
            "--checkpoint",
            str(ckpt),
            "--predict_dataloader",
            "tests.cli._data.RandomRegressionLoader",
        ],
        capsys,
    )
    assert code == 0, err


def test_test_subcommand_tests_a_runs_checkpoint_on_its_test_dataloader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    test_loader = {"class_path": "tests.cli._data.RandomRegressionLoader", "init_args": {"seed": 2}}
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1, test_dataloader=test_loader))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    logging = ["--loggers", '["StdoutLogger"]', "--log_every_n_steps", "1"]
    code, out, err = run(["test", "--run_dir", run_dir, "--checkpoint", "latest", *logging], capsys)
    assert code == 0, err
    # the same weights and data as fit's own test phase: the same test loss
    (line,) = [ln for ln in out.splitlines() if "test/loss" in ln]
    value = float(line.split("test/loss")[1].split()[0].strip(":=,"))
    module = MLP()
    module.load_state_dict(CAPTURED["run"]["final"])
    with torch.no_grad():
        losses = [
            torch.nn.functional.mse_loss(module(x), y) for x, y in RandomRegressionLoader(seed=2)
        ]
    assert value == pytest.approx(float(torch.stack(losses).mean()), rel=1e-3)


def test_test_subcommand_without_a_test_dataloader_says_which_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    a = write(tmp_path / "a.yaml", _cfg(max_epochs=1))
    assert run(["fit", "--config", a, "--run_dir", run_dir], capsys)[0] == 0
    code, _, err = run(["test", "--run_dir", run_dir, "--checkpoint", "latest"], capsys)
    assert code == 2 and "test_dataloader" in err
