"""TensorBoardLogger writes real event files that TensorBoard's own reader understands."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from torchkit.loggers import MetricLogger, TensorBoardLogger


def _accumulator(path: Path):  # type: ignore[no-untyped-def]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_scalars_read_back_with_event_accumulator(tmp_path: Path) -> None:
    tb = TensorBoardLogger(str(tmp_path))
    assert isinstance(tb, MetricLogger)
    tb.log("train/loss", 0.5, step=1)
    tb.log("train/loss", torch.tensor(0.25), step=2)
    tb.log_dict({"eval/loss": 0.75, "eval/accuracy": 0.5}, step=2)
    tb.close()
    acc = _accumulator(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"train/loss", "eval/loss", "eval/accuracy"}
    loss = acc.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(1, 0.5), (2, 0.25)]
    assert [(e.step, e.value) for e in acc.Scalars("eval/accuracy")] == [(2, 0.5)]


def test_text_histogram_image_and_hparams(tmp_path: Path) -> None:
    tb = TensorBoardLogger(str(tmp_path))
    tb.log_text("notes", "hello", step=0)
    tb.log_histogram("weights", torch.arange(10.0), step=3)
    tb.log_image("img", np.zeros((3, 4, 4), dtype=np.float32), step=0)
    tb.log_hparams({"lr": 0.1, "batch": 16}, {"hparam/loss": 0.3})
    tb.flush()
    tb.close()
    tb.close()  # idempotent
    acc = _accumulator(tmp_path)
    assert [e.step for e in acc.Histograms("weights")] == [3]
    assert acc.Histograms("weights")[0].histogram_value.num == 10
    assert "img" in acc.Tags()["images"]
    assert "notes/text_summary" in acc.Tags()["tensors"]
    assert [e.value for e in acc.Scalars("hparam/loss")] == pytest.approx([0.3])


def test_other_ranks_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    tb = TensorBoardLogger(str(tmp_path / "r1"))
    tb.log("x", 1.0, step=0)
    tb.close()
    assert tb.writer is None
    assert not (tmp_path / "r1").exists()


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=r"path='.*file/logs' is invalid: expected a writable"):
        TensorBoardLogger(os.fspath(blocker / "logs"))


def test_memory_url_event_file_reads_back(tmp_path: Path) -> None:
    import fsspec

    tb = TensorBoardLogger("memory://tb_logger_test/run1")
    tb.log_dict({"train/loss": 1.5}, step=10)
    tb.log_dict({"train/loss": 0.5, "train/late": 2.0}, step=20)
    tb.close()
    fs = fsspec.filesystem("memory")
    (name,) = fs.ls("/tb_logger_test/run1", detail=False)
    assert "tfevents" in name
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / os.path.basename(name)).write_bytes(fs.cat(name))
    acc = _accumulator(tmp_path / "copy")
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(10, 1.5), (20, 0.5)]
    assert [(e.step, e.value) for e in acc.Scalars("train/late")] == [(20, 2.0)]
    fs.rm("/tb_logger_test", recursive=True)


def test_events_are_written_every_max_pending_and_on_flush(tmp_path: Path) -> None:
    tb = TensorBoardLogger(str(tmp_path), max_pending=3)
    for step in range(2):
        tb.log("x", float(step), step=step)
    assert _accumulator(tmp_path).Tags()["scalars"] == []  # buffered, not written yet
    tb.log("x", 2.0, step=2)
    assert [e.step for e in _accumulator(tmp_path).Scalars("x")] == [0, 1, 2]
    tb.log("x", 3.0, step=3)
    tb.flush()
    assert [e.step for e in _accumulator(tmp_path).Scalars("x")] == [0, 1, 2, 3]
    tb.close()


def test_logging_starts_no_writer_thread(tmp_path: Path) -> None:
    import threading

    before = threading.active_count()
    tb = TensorBoardLogger(str(tmp_path), max_pending=1)
    for step in range(5):
        tb.log_dict({"a": 1.0, "b": 2.0}, step=step)
    assert threading.active_count() == before
    tb.close()


def test_summary_writer_escape_hatch_shares_the_directory(tmp_path: Path) -> None:
    tb = TensorBoardLogger(str(tmp_path))
    tb.log("mine", 1.0, step=0)
    tb.writer.add_scalar("theirs", 2.0, global_step=1)
    tb.close()
    assert tb.writer is None
    tags = set(_accumulator(tmp_path).Tags()["scalars"])
    assert tags == {"mine", "theirs"}


@pytest.mark.parametrize("arg", ["flush_secs", "max_pending"])
@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_bad_buffering_arguments(tmp_path: Path, arg: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{arg}={value!r} is invalid: expected an int >= 1"):
        TensorBoardLogger(str(tmp_path), **{arg: value})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_event_records_pass_tensorboards_crc_checks(tmp_path: Path) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    tb = TensorBoardLogger(str(tmp_path), max_pending=2)
    for step in range(5):  # two full writes of 2 events, one on close
        tb.log("x", float(step), step=step)
    tb.close()
    (path,) = tmp_path.iterdir()
    reader = PyRecordReader_New(str(path))  # checks both masked CRCs of every record
    events = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        events.append(Event.FromString(reader.record()))
    assert events[0].file_version == "brain.Event:2"
    assert [(e.step, e.summary.value[0].simple_value) for e in events[1:]] == [
        (s, float(s)) for s in range(5)
    ]


def test_framing_is_tensorboards_own_code() -> None:
    import inspect

    from torchkit.loggers import _event_file

    source = inspect.getsource(_event_file)
    assert "record_writer import RecordWriter" in source
    assert "crc" not in source.replace("CRC-32C", "").lower()  # no checksum code of our own


def test_a_logger_dropped_without_close_writes_what_it_buffered(tmp_path: Path) -> None:
    import gc

    tb = TensorBoardLogger(str(tmp_path))
    tb.log("x", 1.0, step=1)
    del tb
    gc.collect()
    assert [e.step for e in _accumulator(tmp_path).Scalars("x")] == [1]
