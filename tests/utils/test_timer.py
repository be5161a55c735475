"""Timer and BoundedTimer."""

from __future__ import annotations

import time

import pytest

from torchkit.utils import BoundedTimer, Timer


def test_timer_records_each_block() -> None:
    t = Timer()
    for _ in range(3):
        with t.time("work"):
            time.sleep(0.001)
    assert len(t.recorded_durations["work"]) == 3
    assert all(d >= 0.0009 for d in t.recorded_durations["work"])


def test_timer_records_even_when_the_block_raises() -> None:
    t = Timer()
    with pytest.raises(StopIteration), t.time("fetch"):
        raise StopIteration
    assert len(t.recorded_durations["fetch"]) == 1


def test_timer_reset() -> None:
    t = Timer()
    with t.time("a"):
        pass
    t.reset()
    assert dict(t.recorded_durations) == {}


def test_bounded_timer_keeps_the_latest() -> None:
    t = BoundedTimer(max_len=3)
    for v in range(5):
        t.record("x", float(v))
    assert list(t.recorded_durations["x"]) == [2.0, 3.0, 4.0]
    with t.time("y"):
        pass
    assert len(t.recorded_durations["y"]) == 1
    t.reset()
    assert dict(t.recorded_durations) == {}
    t.record("x", 1.0)
    assert t.recorded_durations["x"].maxlen == 3  # type: ignore[attr-defined]
