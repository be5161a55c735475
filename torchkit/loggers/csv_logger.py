"""``CSVLogger``: one CSV row per step, written through fsspec, columns grow as metrics appear."""

from __future__ import annotations

import csv
import io

from torchkit.loggers._buffered import BufferedFileLogger


class CSVLogger(BufferedFileLogger):
    """Writes scalars as CSV: a ``step`` column, then one column per metric name.

    Rows are buffered and written every ``steps_before_flushing`` distinct steps and at
    ``close()``. When a metric first appears after the header was written (e.g. ``eval/loss``
    after the first train rows), the file is rewritten once with the wider header, so no
    column is lost; cells a row has no value for stay empty. Writes on rank 0 by default.

    Args:
        path: CSV file path or fsspec URL (``memory://``, ``s3://`` with ``s3fs``...).
        steps_before_flushing: distinct steps buffered between writes.
        log_all_ranks: every rank writes (ranks > 0 to ``<name>_rank<r>.csv``).

    Raises:
        ValueError: ``steps_before_flushing`` < 1, or ``path`` cannot be written.

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

    def __init__(
        self, path: str, *, steps_before_flushing: int = 100, log_all_ranks: bool = False
    ) -> None:
        super().__init__(
            path, steps_before_flushing=steps_before_flushing, log_all_ranks=log_all_ranks
        )
        self._columns: list[str] = []

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        new = [n for _, row in rows for n in row if n not in self._columns]
        new = list(dict.fromkeys(new))
        if self._columns and new:
            self._columns += new
            old_rows = list(csv.DictReader(io.StringIO(self._read_text())))
            text = self._render(old_rows, header=True) + self._render_rows(rows)
            with self._fs.open(self._inner, "w", encoding="utf-8") as f:
                f.write(text)
            return
        header = not self._columns
        if header:
            self._columns = new
            if self._fs.exists(self._inner):
                self._fs.rm(self._inner)  # a fresh logger starts a fresh file
        self._append_text(self._render([], header=header) + self._render_rows(rows))

    def _render(self, dict_rows: list[dict[str, str]], *, header: bool) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["step", *self._columns], lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(dict_rows)
        return buf.getvalue()

    def _render_rows(self, rows: list[tuple[int, dict[str, float]]]) -> str:
        return self._render(
            [{"step": str(step), **{k: repr(v) for k, v in row.items()}} for step, row in rows],
            header=False,
        )
