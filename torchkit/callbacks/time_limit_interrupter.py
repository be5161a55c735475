"""``TimeLimitInterrupter``: stops training once a wall-clock budget is spent."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any, Literal

from torchkit.callbacks._logging_utils import check_choice, check_interval
from torchkit.callbacks._reachability import warn_if_never_reached
from torchkit.callbacks.callback import Callback
from torchkit.loop.state import State
from torchkit.utils.distributed import sync_bool

logger = logging.getLogger(__name__)


def parse_duration(duration: str | timedelta) -> timedelta:
    """``"DD:HH:MM"`` (TNT's format) or a ``timedelta`` -> ``timedelta``."""
    if isinstance(duration, timedelta):
        if duration.total_seconds() <= 0:
            raise ValueError(
                f"duration={duration!r} is invalid: expected a positive time. Pass e.g. "
                "timedelta(hours=4) or '00:04:00'."
            )
        return duration
    if not isinstance(duration, str) or not re.fullmatch(r"\d+:\d{1,2}:\d{1,2}", duration):
        raise ValueError(
            f"duration={duration!r} is invalid: expected 'DD:HH:MM' or a timedelta. Pass e.g. "
            "'00:04:30' for 4 h 30 min."
        )
    days, hours, minutes = (int(x) for x in duration.split(":"))
    return parse_duration(timedelta(days=days, hours=hours, minutes=minutes))


class TimeLimitInterrupter(Callback):
    """Calls ``state.stop()`` once ``duration`` has passed since training started (or once the
    wall clock passes ``timestamp``). Checked at the end of every ``interval_freq``-th epoch or
    step; rank 0's clock decides for all ranks (one collective per check).

    Args:
        duration: ``"DD:HH:MM"`` or a ``timedelta``.
        interval: check at ``"epoch"`` or ``"step"`` ends.
        interval_freq: check every this many epochs/steps.
        timestamp: optional absolute deadline (a timezone-aware or local ``datetime``).

    Raises:
        ValueError: a bad ``duration``, ``interval`` or ``interval_freq``.

    Example:
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> unit = DummyTrainUnit(2)
        >>> tl = TimeLimitInterrupter(timedelta(microseconds=1), interval="step")
        >>> _ = train(unit, generate_random_dataloader(8, 2, 2), max_epochs=5, callbacks=[tl])
        >>> unit.train_progress.num_steps_completed
        1
    """

    def __init__(
        self,
        duration: str | timedelta,
        interval: Literal["epoch", "step"] = "epoch",
        interval_freq: int = 1,
        timestamp: datetime | None = None,
    ) -> None:
        self.duration = parse_duration(duration)
        self.interval = check_choice("interval", interval, ("epoch", "step"))
        self.interval_freq = check_interval("interval_freq", interval_freq)
        self.timestamp = timestamp
        self._start = time.monotonic()

    def on_train_start(self, state: State, unit: Any) -> None:
        self._start = time.monotonic()
        ts = state.train_state
        if ts is not None:  # an interval beyond the run's limits would never check the time
            limit_name = "max_epochs" if self.interval == "epoch" else "max_steps"
            limit = ts.max_epochs if self.interval == "epoch" else ts.max_steps
            warn_if_never_reached(
                "TimeLimitInterrupter", "interval_freq", self.interval_freq, limit_name, limit
            )

    def _check(self, state: State) -> None:
        expired = time.monotonic() - self._start >= self.duration.total_seconds()
        if self.timestamp is not None:
            now = datetime.now(self.timestamp.tzinfo)
            expired = expired or now >= self.timestamp
        if sync_bool(expired, coherence_mode="rank_zero"):
            logger.info("Time limit reached (%s): stopping.", self.duration)
            state.stop()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        steps = unit.train_progress.num_steps_completed
        if self.interval == "step" and steps % self.interval_freq == 0:
            self._check(state)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        epochs = unit.train_progress.num_epochs_completed
        if self.interval == "epoch" and epochs % self.interval_freq == 0:
            self._check(state)
