"""Import hygiene, the missing-extra message, --help, torchrun, and the digits config."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.cli._helpers import config, run, write
from torchkit.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_import_torchkit_does_not_import_jsonargparse() -> None:
    code = "import sys, torchkit, torchkit.units; print('jsonargparse' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_missing_extra_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jsonargparse", None)  # import raises ImportError
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 2
    assert "pip install 'torchkit[cli]'" in capsys.readouterr().err


def test_help_lists_only_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "torchkit", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    for name in ("fit", "train", "evaluate", "test", "predict", "validate-config"):
        assert f"  {name} " in out.stdout
    assert "TQDMProgressBar" not in out.stdout and "class_path" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.distributed
@pytest.mark.slow
def test_torchrun_two_processes(tmp_path: Path) -> None:
    cfg = config()
    cfg["unit"]["init_args"]["strategy"] = "ddp"
    cfg["callbacks"] = [
        {"class_path": "tests.cli._data.Capture", "init_args": {"path": str(tmp_path / "weights")}}
    ]
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "torchkit",
        "fit",
        "--config",
        write(tmp_path / "a.yaml", cfg),
        "--run_dir",
        str(run_dir),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(f"{tmp_path / 'weights'}.rank0")
    r1 = torch.load(f"{tmp_path / 'weights'}.rank1")
    assert r0["steps"] == r1["steps"] == 8  # each rank reads the 64 samples (no sampler)
    assert all(torch.equal(r0["final"][k], r1["final"][k]) for k in r0["final"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "fingerprint.json"]


@pytest.mark.slow
def test_digits_config_reaches_the_example_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    monkeypatch.chdir(ROOT)  # examples/ is importable from the repository root
    run_dir = tmp_path / "digits"
    epochs = ["--max_epochs", "10", "--unit.init_args.lr_scheduler.init_args.T_max", "10"]
    code, _, err = run(
        ["fit", "--config", "examples/digits.yaml", "--run_dir", str(run_dir), *epochs], capsys
    )
    assert code == 0, err
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    accuracies = [float(r["eval/accuracy"]) for r in rows if r["eval/accuracy"]]
    assert accuracies[-1] >= 0.9  # the small validation split
    (test_accuracy,) = [float(r["test/accuracy"]) for r in rows if r["test/accuracy"]]
    assert test_accuracy >= 0.95  # examples/digits.py's documented accuracy
    assert any((run_dir / "checkpoints").iterdir())
