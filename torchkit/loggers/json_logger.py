"""``JSONLogger``: one JSON object per step (JSON Lines), written through fsspec."""

from __future__ import annotations

import json

from torchkit.loggers._buffered import BufferedFileLogger, Rows


class JSONLogger(BufferedFileLogger):
    """Writes scalars as JSON Lines: one ``{"step": s, "<name>": value, ...}`` object per line.

    Each line carries its own keys, so a metric that appears late is simply present from then
    on. Rows are buffered and written every ``steps_before_flushing`` distinct steps and at
    ``close()``; rank 0 writes by default. Read it back with
    ``[json.loads(line) for line in f]``.

    By default an existing file is continued, so a run resumed from a checkpoint keeps the
    history of the run it resumes: at the first write, the lines whose step is after the first
    step written now (logged after that checkpoint by the earlier run) are dropped, a line at
    that very step is merged with the new one (new values win), and the earlier lines are kept
    exactly as they were.

    Args:
        path: file path or fsspec URL (``memory://``, ``s3://`` with ``s3fs``...).
        steps_before_flushing: distinct steps buffered between writes.
        log_all_ranks: every rank writes (ranks > 0 to ``<name>_rank<r>.jsonl``).
        overwrite: ``True``: the first write replaces an existing file. ``False``: an
            existing file is continued as described above; it is read when the logger is
            created, and one with a line that is not a JSON object with an integer ``"step"``
            is refused.

    Raises:
        ValueError: ``steps_before_flushing`` < 1, ``path`` cannot be written, or
            (``overwrite=False``) ``path`` is a file that cannot be continued (it is left
            unchanged).

    Example:
        >>> import json, fsspec
        >>> lg = JSONLogger("memory://doc/metrics.jsonl")
        >>> lg.log("train/loss", 0.5, step=1)
        >>> lg.close()
        >>> with fsspec.open("memory://doc/metrics.jsonl", "r") as f:
        ...     [json.loads(line) for line in f]
        [{'step': 1, 'train/loss': 0.5}]
    """

    def _continue(self, text: str, rows: Rows) -> str:
        kept_lines, at_first = self._split_at_resume(self._parse(text), rows)
        kept = [line + "\n" for line in kept_lines]
        if at_first:  # lines at the resume step itself are merged, new values win
            merged: dict[str, object] = {}
            for line in at_first:
                merged.update(json.loads(line))
            kept.append(json.dumps({**merged, **rows[0][1]}) + "\n")
            rows = rows[1:]
        return "".join(kept) + self._render(rows)

    def _write(self, rows: Rows) -> None:
        self._append_text(self._render(rows))

    def _parse(self, text: str) -> list[tuple[int, str]]:
        """``(step, line)`` for each non-blank line of an existing file, lines as they are."""
        out: list[tuple[int, str]] = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise self._unreadable(f"line {number} is not JSON ({exc})") from exc
            step = record.get("step") if isinstance(record, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                raise self._unreadable(
                    f'line {number} is not a JSON object with an integer "step": {line[:80]!r}'
                )
            out.append((step, line))
        return out

    @staticmethod
    def _render(rows: Rows) -> str:
        return "".join(json.dumps({"step": step, **row}) + "\n" for step, row in rows)
