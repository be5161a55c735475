"""``InMemoryLogger``: keeps every logged scalar in a dict, for tests and notebooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from torchkit.loggers.metric_logger import Scalar, to_float

logger = logging.getLogger(__name__)


class InMemoryLogger:
    """Stores scalars in ``log_buffer``: ``{step: {name: value}}`` (TNT's layout).

    Example:
        >>> lg = InMemoryLogger()
        >>> lg.log("train/loss", 0.5, step=3)
        >>> lg.log_buffer
        {3: {'train/loss': 0.5}}
    """

    def __init__(self) -> None:
        self.log_buffer: dict[int, dict[str, float]] = {}

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Store one scalar."""
        self.log_buffer.setdefault(int(step), {})[name] = to_float(value)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Store several scalars at one step."""
        row = self.log_buffer.setdefault(int(step), {})
        for name, value in payload.items():
            row[name] = to_float(value)

    def flush(self) -> None:
        """Log the buffer at INFO level (nothing is written anywhere)."""
        for step, row in sorted(self.log_buffer.items()):
            logger.info("step %d: %s", step, row)

    def close(self) -> None:
        """Keep the buffer (so tests can read it after ``close``)."""
