"""StdoutLogger writes one line per logged step to its stream."""

from __future__ import annotations

import io

import pytest

from torchkit.loggers import StdoutLogger


def test_writes_lines() -> None:
    buf = io.StringIO()
    lg = StdoutLogger(stream=buf)
    lg.log("train/loss", 0.123456, step=3)
    lg.log_dict({"a": 1, "b": 2.5}, step=4)
    lg.close()
    assert buf.getvalue() == "[step 3] train/loss=0.1235\n[step 4] a=1 b=2.5\n"


def test_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    StdoutLogger().log("x", 1.0, step=0)
    assert capsys.readouterr().out == "[step 0] x=1\n"
