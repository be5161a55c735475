"""JSONLogger: JSON Lines through fsspec, late metrics present, buffering."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.loggers._readers import read_jsonl
from torchkit.loggers import JSONLogger


@pytest.mark.parametrize("where", ["local", "memory"])
def test_rows_read_back_with_late_metric(tmp_path: Path, where: str) -> None:
    url = (
        str(tmp_path / "d" / "m.jsonl")
        if where == "local"
        else f"memory://json-{uuid.uuid4().hex}/m.jsonl"
    )
    lg = JSONLogger(url, steps_before_flushing=2)
    lg.log("train/loss", 1.0, step=1)
    lg.log("train/loss", 0.5, step=2)
    lg.log_dict({"train/loss": 0.25, "eval/loss": 0.75}, step=3)
    lg.close()
    assert read_jsonl(url) == [
        {"step": 1, "train/loss": 1.0},
        {"step": 2, "train/loss": 0.5},
        {"step": 3, "train/loss": 0.25, "eval/loss": 0.75},
    ]


def test_flushes_every_n_steps_and_at_close(tmp_path: Path) -> None:
    url = str(tmp_path / "m.jsonl")
    lg = JSONLogger(url, steps_before_flushing=2)
    lg.log("a", 1.0, step=1)
    assert not Path(url).exists()
    lg.log("a", 2.0, step=2)
    assert len(read_jsonl(url)) == 2
    lg.log("a", 3.0, step=3)
    lg.close()
    assert len(read_jsonl(url)) == 3


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"steps_before_flushing=0 is invalid"):
        JSONLogger(str(tmp_path / "m.jsonl"), steps_before_flushing=0)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"path=.* is invalid: expected a writable directory"):
        JSONLogger(str(tmp_path / "f" / "m.jsonl"))
