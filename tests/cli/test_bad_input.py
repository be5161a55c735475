"""Bad input exits 2 before any side effect, naming the key, the value and a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import pytest

from tests.cli._data import CAPTURED
from tests.cli._helpers import config, run, write


def _unit_with(**init_args: Any) -> dict[str, Any]:
    unit = config()["unit"]
    unit["init_args"].update(init_args)
    return unit


BAD = {
    "negative_limit": ({"max_epochs": -1}, ["max_epochs", "-1", "Pass e.g. --max_epochs"]),
    "misspelled_key": ({"max_epoch": 3}, ["max_epoch", "Did you mean 'max_epochs'"]),
    "wrong_type": ({"max_epochs": "many"}, ["max_epochs", "many", "Correct the value"]),
    "bad_class_path": (
        {"unit": {"class_path": "no_such_pkg.Unit"}},
        ["unit", "no_such_pkg.Unit", "Correct"],
    ),
    "misspelled_init_arg": (
        {"unit": _unit_with(input_kye="x")},
        ["unit.init_args.input_kye", "Did you mean 'input_key'"],
    ),
    "bad_callback": (
        {"callbacks": [{"class_path": "NoSuchCallback"}]},
        ["callbacks[0].class_path", "NoSuchCallback", "TQDMProgressBar"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_before_side_effects(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes, expected = BAD[case]
    run_dir = f"memory://cli-bad/{case}"
    a = write(tmp_path / "a.yaml", config(**changes))
    code, _, err = run(["fit", "--config", a, "--run_dir", run_dir], capsys)
    assert code == 2
    for text in expected:
        assert text in err, (text, err)
    assert not fsspec.filesystem("memory").exists(f"/cli-bad/{case}")
    assert CAPTURED == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("unit:\n  class_path: [torchkit\n", "valid YAML"), (None, "FileNotFoundError")],
    ids=["truncated", "unreadable"],
)
def test_unreadable_or_truncated_config(
    text: str | None, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.yaml"
    if text is not None:
        write(path, text)
    code, _, err = run(["fit", "--config", str(path), "--run_dir", str(tmp_path / "r")], capsys)
    assert code == 2
    assert f"config={str(path)!r} is invalid" in err and expected in err
    assert not (tmp_path / "r").exists()


def test_unknown_subcommand_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["fitt"], capsys)
    assert code == 2 and "Did you mean 'fit'" in err


def test_foreign_run_dir_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("someone else's")
    a = write(tmp_path / "a.yaml", config())
    code, _, err = run(["fit", "--config", a, "--run_dir", str(run_dir)], capsys)
    assert code == 2 and "run_dir" in err and "notes.txt" in err
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]
