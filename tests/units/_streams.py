"""A stand-in for ``CudaStreams`` that records what the prefetcher's side-stream path does,
so that path runs (and is checked) on a CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Event:
    def __init__(self, n: int) -> None:
        self.n = n


class Stream:
    def __init__(self) -> None:
        self.waited: list[Event] = []

    def wait_event(self, event: Event) -> None:
        self.waited.append(event)


class RecordingStreams:
    """Side-stream operations as plain bookkeeping: ``in_copy`` is True inside ``copying()``."""

    def __init__(self, *, pageable: bool = True) -> None:
        self.compute_stream = Stream()
        self.events: list[Event] = []
        self.in_copy = False
        self.pinned = 0
        self.pageable = pageable

    def compute(self) -> Stream:
        return self.compute_stream

    @contextmanager
    def copying(self) -> Iterator[None]:
        self.in_copy = True
        try:
            yield
        finally:
            self.in_copy = False

    def record_event(self) -> Event:
        assert self.in_copy, "the event must be recorded on the side stream"
        self.events.append(Event(len(self.events)))
        return self.events[-1]

    def pin(self, data: Any) -> tuple[Any, bool]:
        self.pinned += 1
        return data, self.pageable
