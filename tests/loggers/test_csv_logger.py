"""CSVLogger: buffered rows, fsspec URLs, a late-appearing column, rank 0, clear errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch

from tests.loggers._readers import read_csv
from torchkit.loggers import CSVLogger


def _urls(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "sub" / "metrics.csv"), f"memory://csv-{uuid.uuid4().hex}/m.csv"]


@pytest.mark.parametrize("where", ["local", "memory"])
def test_late_metric_column_is_kept(tmp_path: Path, where: str) -> None:
    url = _urls(tmp_path)[where == "memory"]
    lg = CSVLogger(url, steps_before_flushing=2)
    lg.log("train/loss", 1.0, step=1)
    lg.log("train/loss", torch.tensor(0.5), step=2)  # flush: header has train/loss only
    lg.log_dict({"train/loss": 0.25, "eval/accuracy": 0.75}, step=3)  # new column
    lg.log("train/loss", 0.125, step=4)
    lg.close()
    rows = read_csv(url)
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0]) == ["step", "train/loss", "eval/accuracy"]
    assert [float(r["train/loss"]) for r in rows] == [1.0, 0.5, 0.25, 0.125]
    assert [r["eval/accuracy"] for r in rows] == ["", "", "0.75", ""]


def test_buffers_until_n_steps(tmp_path: Path) -> None:
    url = str(tmp_path / "m.csv")
    lg = CSVLogger(url, steps_before_flushing=3)
    lg.log("a", 1.0, step=1)
    lg.log("b", 2.0, step=1)  # same step: same row
    lg.log("a", 3.0, step=2)
    assert not Path(url).exists()
    lg.log("a", 4.0, step=3)
    assert len(read_csv(url)) == 3
    assert read_csv(url)[0] == {"step": "1", "a": "1.0", "b": "2.0"}
    lg.close()


def test_only_rank_zero_writes_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    lg = CSVLogger(str(tmp_path / "m.csv"), steps_before_flushing=1)
    lg.log("a", 1.0, step=1)
    lg.close()
    assert not list(tmp_path.iterdir())
    lg_all = CSVLogger(str(tmp_path / "m.csv"), steps_before_flushing=1, log_all_ranks=True)
    lg_all.log("a", 1.0, step=1)
    lg_all.close()
    assert read_csv(str(tmp_path / "m_rank1.csv")) == [{"step": "1", "a": "1.0"}]


def test_bad_interval_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"steps_before_flushing=-1 is invalid: expected an int"):
        CSVLogger(str(tmp_path / "m.csv"), steps_before_flushing=-1)
    assert not list(tmp_path.iterdir())  # validated before any side effect


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"path='.*' is invalid: expected a writable directory"):
        CSVLogger(str(tmp_path / "file" / "m.csv"))
