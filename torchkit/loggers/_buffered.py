"""Shared machinery of the file loggers: rank check, per-step row buffer, periodic flush."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torchkit.loggers.metric_logger import Scalar, check_positive_int, check_writable_url, to_float
from torchkit.utils.distributed import get_global_rank

logger = logging.getLogger(__name__)


class BufferedFileLogger:
    """Buffers ``{step: {name: value}}`` rows and writes them every ``steps_before_flushing``
    distinct steps and at ``close()``. Subclasses implement ``_write(rows)``.

    Args:
        path: file path or fsspec URL (``memory://``, ``s3://``... with the backend installed).
        steps_before_flushing: number of distinct steps buffered before a write.
        log_all_ranks: write on every rank (the file name gets a ``_rank{r}`` suffix on
            ranks other than 0) instead of rank 0 only.

    Raises:
        ValueError: ``steps_before_flushing`` < 1 or a location that cannot be written.
    """

    def __init__(
        self, path: str, *, steps_before_flushing: int = 100, log_all_ranks: bool = False
    ) -> None:
        check_positive_int(
            "steps_before_flushing",
            steps_before_flushing,
            "Pass 1 to write after every step or a larger number to write less often",
        )
        rank = get_global_rank()
        self._enabled = log_all_ranks or rank == 0
        if self._enabled and rank != 0:
            path = _with_rank_suffix(str(path), rank)
        self.path = str(path)
        self.steps_before_flushing = steps_before_flushing
        self._buffer: dict[int, dict[str, float]] = {}
        self._closed = False
        self._fs: Any = None
        self._inner = ""
        if self._enabled:  # validated before any write happens
            self._fs, self._inner = check_writable_url("path", path, is_file=True)

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Buffer one scalar (a tensor is read here: log on logging steps only)."""
        if not self._enabled:
            return
        self._buffer.setdefault(int(step), {})[name] = to_float(value)
        self._maybe_flush()

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Buffer several scalars at one step."""
        if not self._enabled:
            return
        row = self._buffer.setdefault(int(step), {})
        for name, value in payload.items():
            row[name] = to_float(value)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._buffer) >= self.steps_before_flushing:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows now."""
        if not self._enabled or not self._buffer:
            return
        rows = sorted(self._buffer.items())
        self._buffer = {}
        self._write(rows)

    def close(self) -> None:
        """Write what is left; later calls do nothing."""
        if self._closed:
            return
        self.flush()
        self._closed = True

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        raise NotImplementedError

    def _append_text(self, text: str) -> None:
        """Append to the file; rewrite it whole on filesystems without append (object stores)."""
        fs, inner = self._fs, self._inner
        try:
            with fs.open(inner, "a" if fs.exists(inner) else "w", encoding="utf-8") as f:
                f.write(text)
        except (NotImplementedError, ValueError):
            old = self._read_text()
            with fs.open(inner, "w", encoding="utf-8") as f:
                f.write(old + text)

    def _read_text(self) -> str:
        if not self._fs.exists(self._inner):
            return ""
        with self._fs.open(self._inner, "r", encoding="utf-8") as f:
            return str(f.read())

    def __del__(self) -> None:
        try:
            if not self._closed and self._buffer:
                self.close()
        except Exception:
            logger.debug("could not flush %s at exit", getattr(self, "path", "?"))


def _with_rank_suffix(path: str, rank: int) -> str:
    head, dot, ext = path.rpartition(".")
    if not dot or "/" in ext:
        return f"{path}_rank{rank}"
    return f"{head}_rank{rank}.{ext}"
