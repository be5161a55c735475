"""``torchkit fit --config``: the same numbers as Python, overrides, --print_config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.cli._data import CAPTURED, MLP, RandomRegressionLoader
from tests.cli._helpers import config, run, write
from torchkit import fit
from torchkit.units import SupervisedUnit
from torchkit.utils import seed


@pytest.fixture(autouse=True)
def _clear_captured() -> None:
    CAPTURED.clear()


def _python_run() -> dict[str, torch.Tensor]:
    seed(0)
    unit = SupervisedUnit(
        module=MLP(),
        loss_fn=torch.nn.MSELoss(),
        optimizer=lambda params: torch.optim.SGD(params, lr=0.05),
        device="cpu",
    )
    train_dl = RandomRegressionLoader(shuffle=True)
    state = fit(unit, train_dl, RandomRegressionLoader(seed=1), max_epochs=2)
    assert state.train_state is not None
    assert unit.train_progress.num_steps_completed == 8
    return {k: v.detach().clone() for k, v in unit.module.state_dict().items()}


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cli_fit_equals_python_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fit", "--config", write(tmp_path / "a.yaml", config())], capsys)
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 8
    _assert_equal(CAPTURED["run"]["final"], _python_run())


def test_override_max_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.yaml", config())
    code, _, err = run(["fit", "--config", a, "--max_epochs", "3"], capsys)
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 12


def test_override_lr_zero_leaves_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a.yaml", config())
    code, _, err = run(
        ["fit", "--config", a, "--unit.init_args.optimizer.init_args.lr", "0"], capsys
    )
    assert code == 0, err
    record = CAPTURED["run"]
    assert record["steps"] == 8
    _assert_equal(record["initial"], record["final"])


def test_later_config_files_win(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.yaml", config())
    b = write(tmp_path / "b.yaml", "max_epochs: 1\n")
    code, _, err = run(["fit", "--config", a, "--config", b], capsys)
    assert code == 0, err
    assert CAPTURED["run"]["steps"] == 4


def test_print_config_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.yaml", config())
    code, printed, err = run(["fit", "--config", a, "--print_config"], capsys)
    assert code == 0, err
    assert "class_path: torchkit.units.SupervisedUnit" in printed
    assert "momentum: 0.0" in printed  # defaults are spelled out
    assert CAPTURED == {}  # printing builds nothing
    code, _, err = run(["fit", "--config", write(tmp_path / "printed.yaml", printed)], capsys)
    assert code == 0, err
    _assert_equal(CAPTURED["run"]["final"], _python_run())


def test_short_names_resolve_to_torchkit_classes() -> None:
    from torchkit.callbacks import TQDMProgressBar
    from torchkit.cli._components import resolve_class
    from torchkit.loggers import CSVLogger

    assert resolve_class("callbacks[0]", "TQDMProgressBar", "torchkit.callbacks") is TQDMProgressBar
    assert resolve_class("loggers[0]", "CSVLogger", "torchkit.loggers") is CSVLogger


def test_loggers_are_wrapped_and_paths_default_under_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    cfg = config(loggers=["CSVLogger"], log_every_n_steps=2)
    cfg["callbacks"].append({"class_path": "DistributedCheckpointSaver"})
    code, _, err = run(
        ["fit", "--config", write(tmp_path / "a.yaml", cfg), "--run_dir", str(run_dir)], capsys
    )
    assert code == 0, err
    lines = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    assert "train/loss" in lines[0] and len(lines) >= 4  # steps 2, 4, 6, 8 (+ eval rows)
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["epoch_2_train_step_8"]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "fingerprint.json",
        "logs",
    ]


def test_validate_config_builds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.yaml", config())
    code, out, err = run(
        ["validate-config", "fit", "--config", a, "--run_dir", str(tmp_path / "run")], capsys
    )
    assert code == 0, err
    assert "valid" in out
    assert CAPTURED == {} and not (tmp_path / "run").exists()


def test_supervised_unit_tests_with_the_configs_test_dataloader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    cfg = config(
        test_dataloader={
            "class_path": "tests.cli._data.RandomRegressionLoader",
            "init_args": {"seed": 2},
        },
        max_test_steps=3,
        loggers=["CSVLogger"],
    )
    code, _, err = run(
        ["fit", "--config", write(tmp_path / "a.yaml", cfg), "--run_dir", str(run_dir)], capsys
    )
    assert code == 0, err
    header, *rows = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    last = dict(zip(header.split(","), rows[-1].split(",")))
    module = MLP()
    module.load_state_dict(CAPTURED["run"]["final"])
    batches = list(RandomRegressionLoader(seed=2))[:3]
    with torch.no_grad():
        losses = [torch.nn.functional.mse_loss(module(x), y) for x, y in batches]
    assert last["step"] == "8"
    assert float(last["test/loss"]) == pytest.approx(float(torch.stack(losses).mean()), rel=1e-5)


def test_fit_with_a_test_dataloader_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(
        test_dataloader={
            "class_path": "tests.cli._data.RandomRegressionLoader",
            "init_args": {"seed": 2},
        },
        max_test_steps=3,
    )
    cfg["unit"]["class_path"] = "tests.cli._data.TestedRegression"
    code, _, err = run(["fit", "--config", write(tmp_path / "a.yaml", cfg)], capsys)
    assert code == 0, err
    assert CAPTURED["test"]["batches"] == 3 and CAPTURED["test"]["train_steps"] == 8
    # a config without the key runs no test phase
    code, _, err = run(["fit", "--config", write(tmp_path / "b.yaml", config())], capsys)
    assert code == 0, err
    assert CAPTURED["test"]["batches"] == 3
