"""Shared config and runner of the CLI tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jsonargparse")
import yaml

from torchkit.cli import main

BASE: dict[str, Any] = {
    "seed": 0,
    "max_epochs": 2,
    "unit": {
        "class_path": "torchkit.units.SupervisedUnit",
        "init_args": {
            "module": {"class_path": "tests.cli._data.MLP"},
            "loss_fn": {"class_path": "torch.nn.MSELoss"},
            "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05}},
            "device": "cpu",
        },
    },
    "train_dataloader": {
        "class_path": "tests.cli._data.RandomRegressionLoader",
        "init_args": {"shuffle": True},
    },
    "eval_dataloader": {
        "class_path": "tests.cli._data.RandomRegressionLoader",
        "init_args": {"seed": 1},
    },
    "callbacks": [{"class_path": "tests.cli._data.Capture"}],
}


def config(**changes: Any) -> dict[str, Any]:
    """``BASE`` with top-level keys replaced (None removes a key)."""
    cfg = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def write(path: Path, cfg: dict[str, Any] | str) -> str:
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(args)`` as ``(exit code, stdout, stderr)``."""
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
