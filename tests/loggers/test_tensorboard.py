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
