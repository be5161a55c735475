"""CSVLogger: buffered rows, fsspec URLs, a late-appearing column, rank 0, clear errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.loggers._readers import fresh_url, read_csv, read_text, write_text
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


@pytest.fixture(params=["local", "memory"])
def csv_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path, "m.csv")


def test_resumed_run_continues_the_file(csv_url: str) -> None:
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    for step, loss in [(10, 1.0), (20, 0.5), (30, 0.25)]:
        lg.log("train/loss", loss, step=step)
    lg.close()  # the run is killed; its checkpoint is at step 10
    resumed = CSVLogger(csv_url, steps_before_flushing=1)
    resumed.log("train/loss", 0.75, step=20)  # steps >= 20 of the killed run are dropped
    resumed.log("train/loss", 0.125, step=40)
    resumed.close()
    assert read_csv(csv_url) == [
        {"step": "10", "train/loss": "1.0"},
        {"step": "20", "train/loss": "0.75"},
        {"step": "40", "train/loss": "0.125"},
    ]


def test_continued_file_keeps_its_cells_and_widens_its_header(csv_url: str) -> None:
    write_text(csv_url, "step,train/loss\n10,1.50\n20,2.5e-01\n30,0.3\n")
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    lg.log_dict({"train/loss": 0.125, "eval/accuracy": 0.75}, step=30)  # a new name
    lg.log_dict({"train/loss": 0.0625, "lr": 0.01}, step=40)  # another, after the first write
    lg.close()
    rows = read_csv(csv_url)
    assert list(rows[0]) == ["step", "train/loss", "eval/accuracy", "lr"]
    assert [list(r.values()) for r in rows] == [
        ["10", "1.50", "", ""],  # kept cells are text as they were, not reformatted
        ["20", "2.5e-01", "", ""],
        ["30", "0.125", "0.75", ""],
        ["40", "0.0625", "", "0.01"],
    ]


def test_overwrite_replaces_the_file(csv_url: str) -> None:
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    lg.log_dict({"train/loss": 1.0, "eval/loss": 2.0}, step=10)
    lg.close()
    unused = CSVLogger(csv_url, overwrite=True)
    unused.close()  # nothing written: the file is left as it was
    assert read_csv(csv_url) == [{"step": "10", "train/loss": "1.0", "eval/loss": "2.0"}]
    fresh = CSVLogger(csv_url, steps_before_flushing=1, overwrite=True)
    fresh.log("a", 3.0, step=20)
    fresh.close()
    assert read_csv(csv_url) == [{"step": "20", "a": "3.0"}]


@pytest.mark.parametrize(
    "content",
    [
        "epoch,loss\n1,0.5\n",  # no step column
        "step,loss\n1,0.5\nlast,0.25\n",  # a step that is not an integer
        "step,loss\n1,0.5,0.25\n",  # more cells than the header
    ],
    ids=["no-step-column", "non-integer-step", "extra-cell"],
)
def test_unreadable_existing_file_is_refused_and_left_alone(csv_url: str, content: str) -> None:
    write_text(csv_url, content)
    with pytest.raises(ValueError, match=r"path=.* is invalid: .*overwrite=True"):
        CSVLogger(csv_url, steps_before_flushing=1)
    assert read_text(csv_url) == content
    lg = CSVLogger(csv_url, steps_before_flushing=1, overwrite=True)  # the documented fix
    lg.log("a", 1.0, step=1)
    lg.close()
    assert read_csv(csv_url) == [{"step": "1", "a": "1.0"}]


def test_empty_existing_file_is_a_fresh_file(csv_url: str) -> None:
    write_text(csv_url, "")
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    lg.log("a", 1.0, step=1)
    lg.close()
    assert read_csv(csv_url) == [{"step": "1", "a": "1.0"}]


def test_partial_last_row_of_a_killed_run_is_dropped(
    csv_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_text(csv_url, "step,a\n10,1.0\n20,0.")  # killed mid-append
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    lg.log("a", 3.0, step=30)
    lg.close()
    assert read_csv(csv_url) == [{"step": "10", "a": "1.0"}, {"step": "30", "a": "3.0"}]
    assert "partial record" in caplog.text


def test_rows_at_the_resume_step_are_merged(csv_url: str) -> None:
    lg = CSVLogger(csv_url, steps_before_flushing=1)
    lg.log_dict({"train/loss": 1.0, "eval/loss": 2.0}, step=20)  # the checkpoint's step
    lg.log("run/summary", 5.0, step=20)  # written by a later flush: a second row at step 20
    lg.log("train/loss", 0.5, step=30)  # after the checkpoint: stale once resumed
    lg.close()
    resumed = CSVLogger(csv_url, steps_before_flushing=1)
    resumed.log_dict({"train/loss": 0.75, "lr": 0.1}, step=20)
    resumed.close()
    assert read_csv(csv_url) == [
        {"step": "20", "train/loss": "0.75", "eval/loss": "2.0", "run/summary": "5.0", "lr": "0.1"}
    ]
