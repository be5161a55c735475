"""Shared machinery of the file loggers: rank check, per-step row buffer, periodic flush."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from torchkit.loggers.metric_logger import Scalar, check_positive_int, check_writable_url, to_float
from torchkit.utils.distributed import get_global_rank
from torchkit.utils.fs import protocol_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

Rows = list[tuple[int, dict[str, float]]]
"""Buffered rows as ``[(step, {name: value})]``, sorted by step."""


class BufferedFileLogger:
    """Buffers ``{step: {name: value}}`` rows and writes them every ``steps_before_flushing``
    distinct steps and at ``close()``. Subclasses implement ``_continue(text, rows)`` (the
    whole file at the first write) and ``_write(rows)`` (the later writes).

    An existing file is continued (see ``overwrite``): it is read and validated when the
    logger is created, and at the first write it is rewritten once, whole, keeping its rows
    with a step below the first step written now, merging a row at that step with the new
    one, then the new rows. A logger that never
    writes leaves the file as it was.

    Args:
        path: file path or fsspec URL (``memory://``, ``s3://``... with the backend installed).
        steps_before_flushing: number of distinct steps buffered before a write.
        log_all_ranks: write on every rank (the file name gets a ``_rank{r}`` suffix on
            ranks other than 0) instead of rank 0 only.
        overwrite: ``True``: the first write replaces an existing file. ``False``: an
            existing file is continued (a run resumed from a checkpoint keeps its history).

    Raises:
        ValueError: ``steps_before_flushing`` < 1, a location that cannot be written, or
            (``overwrite=False``) an existing file that cannot be read as this format.
    """

    def __init__(
        self,
        path: str,
        steps_before_flushing: int = 100,
        log_all_ranks: bool = False,
        *,
        overwrite: bool = False,
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
        self.overwrite = bool(overwrite)
        self._buffer: dict[int, dict[str, float]] = {}
        self._closed = False
        self._started = False  # the first write (which replaces or continues the file) is done
        self._fs: Any = None
        self._inner = ""
        if self._enabled:  # validated before any write happens
            self._fs, self._inner = check_writable_url("path", path, is_file=True)
            if not self.overwrite:
                self._continue(self._existing_text(), [])  # parses only: raises if unreadable

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
        if self._started:
            self._write(rows)
            return
        self._started = True
        old = "" if self.overwrite else self._existing_text()
        self._replace_text(self._continue(old, rows))

    def close(self) -> None:
        """Write what is left; later calls do nothing."""
        if self._closed:
            return
        self.flush()
        self._closed = True

    def _continue(self, text: str, rows: Rows) -> str:
        """The whole file: the records of ``text`` (the existing file, ``""`` for none) with
        a step below ``rows[0]``'s (all of them when ``rows`` is empty), one at ``rows[0]``'s
        step merged with it, then ``rows``.

        Raises ``self._unreadable(...)`` when ``text`` is not this format.
        """
        raise NotImplementedError

    def _write(self, rows: Rows) -> None:
        """Add ``rows`` to the file written by an earlier write."""
        raise NotImplementedError

    @staticmethod
    def _split_at_resume(old: list[tuple[int, T]], rows: Rows) -> tuple[list[T], list[T]]:
        """The existing records to keep as they are (a step below the first new one; all of
        them without new rows) and those at the first new step, to merge with it."""
        first = rows[0][0] if rows else None
        kept = [r for step, r in old if first is None or step < first]
        return kept, [r for step, r in old if step == first]

    def _unreadable(self, reason: str) -> ValueError:
        return ValueError(
            f"path={self.path!r} is invalid: the existing file cannot be continued: {reason}. "
            "It was left unchanged. Pass overwrite=True to replace it, or choose another path."
        )

    def _existing_text(self) -> str:
        """The existing file's text without a partial last line; ``""`` when there is none or
        it holds only whitespace."""
        try:
            text = self._read_text()
        except UnicodeDecodeError as exc:
            raise self._unreadable(f"it is not UTF-8 text ({exc})") from exc
        if text and not text.endswith("\n"):
            # every write ends its records with a newline: a run killed mid-write left a
            # partial last record, which cannot be trusted
            text, _, partial = text.rpartition("\n")
            text = text + "\n" if text else ""
            logger.warning(
                "%s ends with a partial record %r (a run killed while writing?); it is dropped",
                self.path,
                partial[:80],
            )
        return text if text.strip() else ""

    def _append_text(self, text: str) -> None:
        """Append to the file; rewrite it whole on filesystems without append (object stores)."""
        fs, inner = self._fs, self._inner
        try:
            with fs.open(inner, "a" if fs.exists(inner) else "w", encoding="utf-8") as f:
                f.write(text)
        except (NotImplementedError, ValueError):
            self._replace_text(self._read_text() + text)

    def _replace_text(self, text: str) -> None:
        """Write the whole file; on a local disk through a temporary file renamed over it, so
        that a run killed mid-write leaves the old file rather than a truncated one."""
        fs, inner = self._fs, self._inner
        if protocol_of(fs) not in ("file", "local"):
            with fs.open(inner, "w", encoding="utf-8") as f:  # object stores: atomic at close
                f.write(text)
            return
        tmp = f"{inner}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with fs.open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            fs.mv(tmp, inner)
        finally:
            if fs.exists(tmp):
                fs.rm(tmp)

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
