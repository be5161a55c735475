"""``CSVLogger``: one CSV row per step, written through fsspec, columns grow as metrics appear."""

from __future__ import annotations

import csv
import io

from torchkit.loggers._buffered import BufferedFileLogger, Rows


class CSVLogger(BufferedFileLogger):
    """Writes scalars as CSV: a ``step`` column, then one column per metric name.

    Rows are buffered and written every ``steps_before_flushing`` distinct steps and at
    ``close()``. When a metric first appears after the header was written (e.g. ``eval/loss``
    after the first train rows), the file is rewritten once with the wider header, so no
    column is lost; cells a row has no value for stay empty. Writes on rank 0 by default.

    By default an existing file is continued, so a run resumed from a checkpoint keeps the
    history of the run it resumes: at the first write, the rows whose step is after the first
    step written now (logged after that checkpoint by the earlier run) are dropped, a row at
    that very step is merged with the new one (new values win), the earlier rows keep their
    cells as they were, the header keeps its columns in their order and
    new metric names are added on its right.

    Args:
        path: CSV file path or fsspec URL (``memory://``, ``s3://`` with ``s3fs``...).
        steps_before_flushing: distinct steps buffered between writes.
        log_all_ranks: every rank writes (ranks > 0 to ``<name>_rank<r>.csv``).
        overwrite: ``True``: the first write replaces an existing file. ``False``: an
            existing file is continued as described above; it is read when the logger is
            created, and one without a ``step`` column or with a non-integer step is refused.

    Raises:
        ValueError: ``steps_before_flushing`` < 1, ``path`` cannot be written, or
            (``overwrite=False``) ``path`` is a file that cannot be continued (it is left
            unchanged).

    Example:
        >>> import csv, fsspec
        >>> lg = CSVLogger("memory://doc/metrics.csv", steps_before_flushing=1)
        >>> lg.log("train/loss", 0.5, step=1)
        >>> lg.log_dict({"train/loss": 0.25, "eval/loss": 0.3}, step=2)
        >>> lg.close()
        >>> with fsspec.open("memory://doc/metrics.csv", "r") as f:
        ...     rows = list(csv.DictReader(f))
        >>> rows[1]["eval/loss"], rows[0]["eval/loss"]
        ('0.3', '')
    """

    _fields: list[str]
    """The header, ``step`` included (set when the file is first continued or written)."""

    def _continue(self, text: str, rows: Rows) -> str:
        kept: list[dict[str, str]] = []
        self._fields = ["step"]
        if text:
            self._fields, old_rows = self._parse(text)
            kept, at_first = self._split_at_resume(old_rows, rows)
            self._fields += self._new_names(rows)
            if at_first:  # rows at the resume step itself are merged, the new values winning
                merged: dict[str, str] = {}
                for r in at_first:
                    merged.update({k: v for k, v in r.items() if v})
                merged.update({k: repr(v) for k, v in rows[0][1].items()})
                kept.append(merged)
                rows = rows[1:]
        self._fields += self._new_names(rows)
        return self._render(kept, header=True) + self._render_rows(rows)

    def _write(self, rows: Rows) -> None:
        new = self._new_names(rows)
        if not new:
            self._append_text(self._render_rows(rows))
            return
        old_rows = list(csv.DictReader(io.StringIO(self._read_text())))
        self._fields += new  # the header widens: rewrite the file once
        self._replace_text(self._render(old_rows, header=True) + self._render_rows(rows))

    def _parse(self, text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
        """The header and ``(step, row)`` of each row of an existing file, cells as text."""
        reader = csv.DictReader(io.StringIO(text))
        try:
            fields = list(reader.fieldnames or [])
            if "step" not in fields or len(set(fields)) != len(fields):
                raise self._unreadable(
                    f"expected a CSV header with a 'step' column and distinct names, got {fields}"
                )
            rows: list[tuple[int, dict[str, str]]] = []
            for row in reader:
                if None in row:
                    raise self._unreadable(f"line {reader.line_num} has more cells than the header")
                rows.append((self._step_of(row["step"], reader.line_num), row))
        except csv.Error as exc:
            raise self._unreadable(f"it is not CSV ({exc})") from exc
        return fields, rows

    def _step_of(self, cell: str | None, line: int) -> int:
        try:
            return int(cell or "")
        except ValueError:
            raise self._unreadable(f"line {line} has step {cell!r}, expected an integer") from None

    def _new_names(self, rows: Rows) -> list[str]:
        return list(dict.fromkeys(n for _, row in rows for n in row if n not in self._fields))

    def _render(self, dict_rows: list[dict[str, str]], *, header: bool) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._fields, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(dict_rows)
        return buf.getvalue()

    def _render_rows(self, rows: Rows) -> str:
        return self._render(
            [{"step": str(step), **{k: repr(v) for k, v in row.items()}} for step, row in rows],
            header=False,
        )
