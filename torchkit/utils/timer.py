"""Wall-clock timers: a user ``Timer`` and the bounded per-phase iteration timer."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager


class Timer:
    """Records durations (seconds) of named actions, without any host-device sync.

    Pass one to an entry point (``train(..., timer=Timer())``) to record loop actions such as
    ``train.next(data_iter)`` and the hooks.

    Example:
        >>> t = Timer()
        >>> with t.time("work"):
        ...     pass
        >>> len(t.recorded_durations["work"])
        1
    """

    def __init__(self) -> None:
        self.recorded_durations: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def time(self, action_name: str) -> Iterator[None]:
        """Time the body of the ``with`` block under ``action_name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.recorded_durations[action_name].append(time.perf_counter() - start)

    def reset(self) -> None:
        """Forget every recorded duration."""
        self.recorded_durations = defaultdict(list)


class BoundedTimer(Timer):
    """A ``Timer`` that keeps only the latest ``max_len`` durations per action.

    The loop records ``data_wait_time`` and ``<phase>_iteration_time`` into one of these on
    every step; the bound keeps memory flat on long runs.

    Args:
        max_len: durations kept per action.

    Example:
        >>> t = BoundedTimer(max_len=2)
        >>> for v in (1.0, 2.0, 3.0):
        ...     t.record("x", v)
        >>> list(t.recorded_durations["x"])
        [2.0, 3.0]
    """

    def __init__(self, max_len: int = 1000) -> None:
        super().__init__()
        self.max_len = max_len
        self.recorded_durations = defaultdict(self._new_deque)  # type: ignore[arg-type]

    def _new_deque(self) -> deque[float]:
        return deque(maxlen=self.max_len)

    def record(self, action_name: str, duration: float) -> None:
        """Append one duration (seconds) for ``action_name``."""
        self.recorded_durations[action_name].append(duration)

    def reset(self) -> None:
        self.recorded_durations = defaultdict(self._new_deque)  # type: ignore[arg-type]
