"""``StdoutLogger``: writes one line of scalars per step to a text stream (stdout by default)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from torchkit.loggers.metric_logger import Scalar, to_float
from torchkit.utils.distributed import get_global_rank


class StdoutLogger:
    """Writes ``[step 10] train/loss=0.4123 train/accuracy=0.8`` lines on rank 0.

    Args:
        precision: significant digits shown per value.
        stream: where to write; ``None`` means ``sys.stdout`` at the time of each write.

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> StdoutLogger(stream=buf).log_dict({"train/loss": 0.5}, step=10)
        >>> buf.getvalue()
        '[step 10] train/loss=0.5\\n'
    """

    def __init__(self, precision: int = 4, *, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.precision = precision
        self._enabled = get_global_rank() == 0

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Write one scalar."""
        self.log_dict({name: value}, step)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Write several scalars on one line."""
        if not self._enabled:
            return
        text = " ".join(f"{k}={to_float(v):.{self.precision}g}" for k, v in payload.items())
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(f"[step {int(step)}] {text}\n")

    def close(self) -> None:
        """Flush the stream."""
        stream = self._stream if self._stream is not None else sys.stdout
        stream.flush()
