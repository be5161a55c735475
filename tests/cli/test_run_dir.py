"""The fingerprint's semantic view and the atomic, never-overwriting config write."""

from __future__ import annotations

import fsspec
import pytest

from torchkit.cli._errors import CLIError
from torchkit.cli._run_dir import fingerprint, plan_run_dir, semantic_view, write_config

CFG = {
    "seed": 0,
    "max_epochs": 3,
    "run_dir": "memory://x",
    "callbacks": [{"class_path": "TQDMProgressBar"}],
    "unit": {"class_path": "U", "init_args": {"lr": 0.1, "sizes": [1, 2]}},
    "train_dataloader": {"class_path": "L", "init_args": {"batch_size": 4, "num_workers": 2}},
}


def test_semantic_view_keeps_model_data_seed_and_drops_limits_and_workers() -> None:
    view = semantic_view(CFG, ["max_epochs"])
    assert view == {
        "seed": 0,
        "unit.class_path": "U",
        "unit.init_args.lr": 0.1,
        "unit.init_args.sizes": [1, 2],
        "train_dataloader.class_path": "L",
        "train_dataloader.init_args.batch_size": 4,
    }


def test_fingerprint_ignores_key_order() -> None:
    a = {"x": 1, "y": 2}
    assert fingerprint(a) == fingerprint(dict(reversed(a.items())))
    assert fingerprint(a) != fingerprint({"x": 1, "y": 3})


def test_plan_then_write_then_resume_numbering() -> None:
    run_dir = "memory://cli-run-dir/plan"
    view = semantic_view(CFG, ["max_epochs"])
    plan = plan_run_dir(run_dir, "auto", view)
    assert (plan.config_name, plan.resuming) == ("config.yaml", False)
    write_config(plan, "seed: 0\n")
    again = plan_run_dir(run_dir, "auto", view)
    assert (again.config_name, again.resuming) == ("config.1.yaml", True)
    write_config(again, "seed: 0\n")
    assert plan_run_dir(run_dir, "auto", view).config_name == "config.2.yaml"
    with pytest.raises(FileExistsError, match=r"config.1.yaml appeared"):
        write_config(again, "overwrite attempt\n")
    fs = fsspec.filesystem("memory")
    assert fs.cat("/cli-run-dir/plan/config.1.yaml") == b"seed: 0\n"
    assert not [p for p in fs.ls("/cli-run-dir/plan", detail=False) if ".tmp" in p]


def test_unreadable_fingerprint_is_a_clear_error() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/cli-run-dir/broken/config.yaml", b"seed: 0\n")
    fs.pipe("/cli-run-dir/broken/fingerprint.json", b'{"semantic": ')
    with pytest.raises(CLIError, match=r"expected a readable fingerprint.json"):
        plan_run_dir("memory://cli-run-dir/broken", "auto", {})
