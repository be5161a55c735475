"""``DurationTracker``: a run's global samples, tokens and train wall time, checkpointed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from torchkit.loop.duration import Duration
from torchkit.loop.progress import Progress


class DurationTracker:
    """What ``Duration`` limits and intervals are measured against, for one training run.

    ``train``/``fit`` create it (as ``state.duration_tracker``) when any duration is in use,
    before ``on_train_start``; it is ``None`` otherwise. Epochs and steps are read from the
    unit's ``train_progress``; samples, tokens and seconds are counted after every train step,
    but only those some duration needs (``require``). The counts are global: equal on every
    rank. They go into every checkpoint, so a resumed run continues them (wall time spent
    before a preemption counts).

    ``clock`` is the monotonic clock in seconds that wall time is read from (``time.monotonic``
    by default; only rank 0's is used). Tests replace it, e.g. from an ``on_train_start``
    callback: ``state.duration_tracker.clock = fake_clock``; the run's start is read from it
    right after the ``on_train_start`` hooks.

    ``prev_samples`` / ``prev_tokens`` / ``prev_seconds`` hold the values before the last
    step, so ``fires`` can apply the floor rule (``crossed``).

    Args:
        progress: the unit's ``train_progress``.
        clock: a monotonic clock in seconds.

    Example:
        >>> from torchkit import Progress
        >>> tracker = DurationTracker(Progress())
        >>> tracker.prev_tokens, tracker.tokens = 64, 128
        >>> tracker.fires(Duration(100, "tok")), tracker.reached(Duration(128, "tok"))
        (True, True)
    """

    def __init__(self, progress: Progress, clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.clock = clock
        self.samples = 0
        self.tokens = 0
        self.seconds = 0.0
        self.prev_samples = 0
        self.prev_tokens = 0
        self.prev_seconds = 0.0
        self.counts_samples = False
        self.counts_tokens = False
        self.measures_time = False
        self.max_duration: Duration | None = None
        """The run's ``max_duration`` (``None`` when only intervals use durations)."""
        self.evaluate_every: Duration | None = None
        """``fit``'s step-level ``evaluate_every`` (``sp``/``tok``/``sec``/fractional ``ba``)."""
        self.limit_reached = False
        """Set after each step when a counted ``max_duration`` (sp/tok/sec) is met."""
        self._seconds_at_start = 0.0
        self._clock_at_start = 0.0
        self._group: Any = None

    def require(self, d: Duration) -> None:
        """Count what ``d`` is measured in from now on (``sp``, ``tok`` or ``sec``).

        Example:
            >>> t = DurationTracker(Progress()); t.require(Duration(2, "sec")); t.measures_time
            True
        """
        if d.unit == "sp":
            self.counts_samples = True
        elif d.unit == "tok":
            self.counts_tokens = True
        elif d.unit == "sec":
            self.measures_time = True

    @property
    def needs_step_updates(self) -> bool:
        """True when something must be counted after every train step."""
        return self.counts_samples or self.counts_tokens or self.measures_time

    def start(self) -> None:
        """Start (or, after a restore, continue) the wall clock."""
        self._seconds_at_start = self.seconds
        self._clock_at_start = self.clock()

    def elapsed(self) -> float:
        """Train wall time in seconds, read from ``clock`` now (this rank's clock)."""
        return self._seconds_at_start + self.clock() - self._clock_at_start

    def value(self, unit: str) -> float:
        """The current count in ``unit`` (``dur`` is not a count).

        Raises:
            ValueError: ``unit`` is ``dur`` or unknown.

        Example:
            >>> DurationTracker(Progress(num_epochs_completed=3)).value("ep")
            3
        """
        if unit == "ba":
            return self.progress.num_steps_completed
        if unit == "ep":
            return self.progress.num_epochs_completed
        if unit == "tok":
            return self.tokens
        if unit == "sp":
            return self.samples
        if unit == "sec":
            return self.seconds
        raise ValueError(
            f"unit={unit!r} is invalid: expected ep, ba, sp, tok or sec. Convert a dur "
            "interval with torchkit.loop.duration.resolve_interval first."
        )

    def reached(self, limit: Duration) -> bool:
        """True when the count in ``limit``'s unit is at least ``limit.value``."""
        return self.value(limit.unit) >= limit.value

    def fires(self, every: Duration) -> bool:
        """Whether the interval ``every`` fires after the train step that just completed.

        Call it after a train step (``on_train_step_end`` or later in the same step). ``ep``
        intervals never fire here: use ``fires_at_epoch_end``. ``ba`` compares the step counts
        before and after the step; ``sp``/``tok``/``sec`` the counts before and after it.

        Raises:
            ValueError: a ``dur`` interval (resolve it first).

        Example:
            >>> t = DurationTracker(Progress(num_steps_completed=10))
            >>> t.fires(Duration(5, "ba")), t.fires(Duration(3, "ba"))
            (True, False)
        """
        # ``crossed`` inlined: this runs every step of a run with a counted interval
        unit, n = every.unit, every.value
        if unit == "tok":
            return self.prev_tokens // n != self.tokens // n
        if unit == "ba":
            steps = self.progress.num_steps_completed
            return (steps - 1) // n != steps // n
        if unit == "sp":
            return self.prev_samples // n != self.samples // n
        if unit == "sec":
            return self.prev_seconds // n != self.seconds // n
        if unit == "ep":
            return False
        raise ValueError(
            f"every={str(every)!r} is invalid here: expected a resolved interval. Convert it "
            "with torchkit.loop.duration.resolve_interval before training starts."
        )

    def fires_at_epoch_end(self, every: Duration) -> bool:
        """Whether the ``ep`` interval ``every`` fires after the epoch that just completed.

        Example:
            >>> DurationTracker(Progress(num_epochs_completed=4)).fires_at_epoch_end(
            ...     Duration(2, "ep"))
            True
        """
        if every.unit != "ep":
            return False
        epochs = self.progress.num_epochs_completed
        return (epochs - 1) // every.value != epochs // every.value

    def setup_agreement(self) -> None:
        """Prepare ``agree`` (all ranks, before the first step): a CPU (gloo) group when the
        default backend is not gloo, so agreeing never syncs a device."""
        import torch.distributed as dist

        if self._group is None and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")

    def agree(self, samples: int, tokens: int, seconds: float) -> tuple[int, int, float]:
        """Sum this step's samples and tokens over ranks and take rank 0's wall time (the
        other ranks pass 0): one all-reduce of three numbers, on CPU."""
        import torch
        import torch.distributed as dist

        buf = torch.tensor([samples, tokens, seconds], dtype=torch.float64)
        dist.all_reduce(buf, group=self._group)
        s, k, sec = buf.tolist()  # a CPU tensor: no device sync
        return round(s), round(k), sec

    def state_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "tokens": self.tokens, "seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.samples = self.prev_samples = int(state_dict.get("samples", 0))
        self.tokens = self.prev_tokens = int(state_dict.get("tokens", 0))
        self.seconds = self.prev_seconds = float(state_dict.get("seconds", 0.0))

    def __repr__(self) -> str:
        return (
            f"DurationTracker(samples={self.samples}, tokens={self.tokens}, "
            f"seconds={self.seconds:.1f}, max_duration={self.max_duration})"
        )


_RESTORED_ATTR = "_torchkit_restored_durations"


def set_duration_state(unit: Any, state_dict: dict[str, Any] | None) -> None:
    """Record on the unit the tracker counts a checkpoint restored (``None``: none)."""
    if state_dict is None:
        unit.__dict__.pop(_RESTORED_ATTR, None)
    else:
        object.__setattr__(unit, _RESTORED_ATTR, dict(state_dict))


def pop_duration_state(unit: Any) -> dict[str, Any] | None:
    """Read and clear what ``set_duration_state`` recorded (the loop does, before any hook)."""
    restored: dict[str, Any] | None = unit.__dict__.pop(_RESTORED_ATTR, None)
    return restored


__all__ = ["DurationTracker", "pop_duration_state", "set_duration_state"]
