"""``JSONLogger``: one JSON object per step (JSON Lines), written through fsspec."""

from __future__ import annotations

import json

from torchkit.loggers._buffered import BufferedFileLogger


class JSONLogger(BufferedFileLogger):
    """Writes scalars as JSON Lines: one ``{"step": s, "<name>": value, ...}`` object per line.

    Each line carries its own keys, so a metric that appears late is simply present from then
    on. Rows are buffered and written every ``steps_before_flushing`` distinct steps and at
    ``close()``; rank 0 writes by default. Read it back with
    ``[json.loads(line) for line in f]``.

    Args:
        path: file path or fsspec URL (``memory://``, ``s3://`` with ``s3fs``...).
        steps_before_flushing: distinct steps buffered between writes.
        log_all_ranks: every rank writes (ranks > 0 to ``<name>_rank<r>.jsonl``).

    Raises:
        ValueError: ``steps_before_flushing`` < 1, or ``path`` cannot be written.

    Example:
        >>> import json, fsspec
        >>> lg = JSONLogger("memory://doc/metrics.jsonl")
        >>> lg.log("train/loss", 0.5, step=1)
        >>> lg.close()
        >>> with fsspec.open("memory://doc/metrics.jsonl", "r") as f:
        ...     [json.loads(line) for line in f]
        [{'step': 1, 'train/loss': 0.5}]
    """

    def __init__(
        self, path: str, *, steps_before_flushing: int = 100, log_all_ranks: bool = False
    ) -> None:
        super().__init__(
            path, steps_before_flushing=steps_before_flushing, log_all_ranks=log_all_ranks
        )
        self._started = False

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        if not self._started:
            self._started = True
            if self._fs.exists(self._inner):
                self._fs.rm(self._inner)  # a fresh logger starts a fresh file
        text = "".join(json.dumps({"step": step, **row}) + "\n" for step, row in rows)
        self._append_text(text)
