"""JSONLogger: JSON Lines through fsspec, late metrics present, buffering."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loggers._readers import fresh_url, read_jsonl, read_text, write_text
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


@pytest.fixture(params=["local", "memory"])
def jsonl_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path, "m.jsonl")


def test_resumed_run_continues_the_file(jsonl_url: str) -> None:
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    for step, loss in [(10, 1.0), (20, 0.5), (30, 0.25)]:
        lg.log("train/loss", loss, step=step)
    lg.close()  # the run is killed; its checkpoint is at step 10
    resumed = JSONLogger(jsonl_url, steps_before_flushing=1)
    resumed.log("train/loss", 0.75, step=20)  # steps >= 20 of the killed run are dropped
    resumed.log_dict({"train/loss": 0.125, "eval/loss": 0.5}, step=40)
    resumed.close()
    assert read_jsonl(jsonl_url) == [
        {"step": 10, "train/loss": 1.0},
        {"step": 20, "train/loss": 0.75},
        {"step": 40, "train/loss": 0.125, "eval/loss": 0.5},
    ]


def test_kept_lines_are_byte_identical(jsonl_url: str) -> None:
    old = '{"step":10,  "train/loss": 1.50, "note": "x"}\n\n{"step": 30, "train/loss": 9}'
    write_text(jsonl_url, old)  # no newline at the end
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    lg.log("train/loss", 0.5, step=20)
    lg.close()
    assert read_text(jsonl_url) == (
        '{"step":10,  "train/loss": 1.50, "note": "x"}\n{"step": 20, "train/loss": 0.5}\n'
    )


def test_overwrite_replaces_the_file(jsonl_url: str) -> None:
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    lg.log("train/loss", 1.0, step=10)
    lg.close()
    unused = JSONLogger(jsonl_url, overwrite=True)
    unused.close()  # nothing written: the file is left as it was
    assert read_jsonl(jsonl_url) == [{"step": 10, "train/loss": 1.0}]
    fresh = JSONLogger(jsonl_url, steps_before_flushing=1, overwrite=True)
    fresh.log("a", 3.0, step=20)
    fresh.close()
    assert read_jsonl(jsonl_url) == [{"step": 20, "a": 3.0}]


@pytest.mark.parametrize(
    "content",
    [
        '{"step": 1, "a": 1.0}\nnot json\n',  # a line that is not JSON
        '{"step": 1, "a": 1.0}\n{"a": 2.0}\n',  # a line without "step"
        '{"step": "1", "a": 1.0}\n',  # a step that is not an integer
        "[1, 2]\n",  # not an object
    ],
    ids=["not-json", "no-step", "string-step", "not-an-object"],
)
def test_unreadable_existing_file_is_refused_and_left_alone(jsonl_url: str, content: str) -> None:
    write_text(jsonl_url, content)
    with pytest.raises(ValueError, match=r"path=.* is invalid: .*overwrite=True"):
        JSONLogger(jsonl_url, steps_before_flushing=1)
    assert read_text(jsonl_url) == content
    lg = JSONLogger(jsonl_url, steps_before_flushing=1, overwrite=True)  # the documented fix
    lg.log("a", 1.0, step=1)
    lg.close()
    assert read_jsonl(jsonl_url) == [{"step": 1, "a": 1.0}]


def test_empty_existing_file_is_a_fresh_file(jsonl_url: str) -> None:
    write_text(jsonl_url, "")
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    lg.log("a", 1.0, step=1)
    lg.close()
    assert read_jsonl(jsonl_url) == [{"step": 1, "a": 1.0}]


def test_partial_last_line_of_a_killed_run_is_dropped(
    jsonl_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_text(jsonl_url, '{"step": 10, "a": 1.0}\n{"step": 20, "a"')  # killed mid-append
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    lg.log("a", 3.0, step=30)
    lg.close()
    assert read_jsonl(jsonl_url) == [{"step": 10, "a": 1.0}, {"step": 30, "a": 3.0}]
    assert "partial record" in caplog.text


def test_lines_at_the_resume_step_are_merged(jsonl_url: str) -> None:
    lg = JSONLogger(jsonl_url, steps_before_flushing=1)
    lg.log_dict({"train/loss": 1.0, "eval/loss": 2.0}, step=20)  # the checkpoint's step
    lg.log("run/summary", 5.0, step=20)  # written by a later flush: a second line at step 20
    lg.log("train/loss", 0.5, step=30)  # after the checkpoint: stale once resumed
    lg.close()
    resumed = JSONLogger(jsonl_url, steps_before_flushing=1)
    resumed.log_dict({"train/loss": 0.75, "lr": 0.1}, step=20)
    resumed.close()
    assert read_jsonl(jsonl_url) == [
        {"step": 20, "train/loss": 0.75, "eval/loss": 2.0, "run/summary": 5.0, "lr": 0.1}
    ]
