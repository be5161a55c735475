"""``TensorBoardLogger``: real TensorBoard event files (scalars, text, hparams, histograms...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torchkit.loggers.metric_logger import Scalar, check_writable_url, to_float
from torchkit.utils.distributed import get_global_rank


class TensorBoardLogger:
    """Writes TensorBoard event files under ``path`` on rank 0 (other ranks do nothing).

    The files are readable by ``tensorboard --logdir <path>`` and by
    ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``. Local paths
    and the URLs TensorBoard's own file layer supports (``gs://``, ``s3://``...) work;
    ``memory://`` does not.

    Args:
        path: log directory.
        flush_secs: how often the writer flushes to disk, in seconds.
        max_pending: scalar events kept before they are handed to the writer (``flush()`` and
            ``close()`` hand them over at once).
        **writer_kwargs: more arguments for ``torch.utils.tensorboard.SummaryWriter``.

    Raises:
        ValueError: ``path`` cannot be created or written.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> tb = TensorBoardLogger(d)
        >>> tb.log("train/loss", 0.5, step=1)
        >>> tb.close()
    """

    def __init__(
        self, path: str, *, flush_secs: int = 120, max_pending: int = 100, **writer_kwargs: Any
    ) -> None:
        self.path = os.fspath(path)
        self.max_pending = max_pending
        self._pending: list[tuple[Any, int]] = []
        self._writer: Any = None
        if get_global_rank() != 0:
            return
        if "://" not in self.path:  # TensorBoard writes local files itself; check them first
            check_writable_url("path", self.path, is_file=False)
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=self.path, flush_secs=flush_secs, **writer_kwargs)

    @property
    def writer(self) -> Any:
        """The underlying ``SummaryWriter`` (``None`` on ranks other than 0 or after close)."""
        return self._writer

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Add one scalar."""
        self.log_dict({name: value}, step)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Add several scalars, each under its own tag, as one event (cheaper than one
        ``add_scalar`` per value; readers see the same tags and steps)."""
        if self._writer is None or not payload:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=k, simple_value=to_float(v)) for k, v in payload.items()]
        self._pending.append((Summary(value=values), int(step)))
        if len(self._pending) >= self.max_pending:
            self._drain()

    def _drain(self) -> None:
        """Hand the buffered scalar events to the writer. Done in batches because every hand-off
        wakes TensorBoard's writer thread, and its GIL hand-offs cost far more per step than
        the write itself when they happen on every logging step."""
        if self._writer is not None and self._pending:
            file_writer = self._writer.file_writer
            for summary, step in self._pending:
                file_writer.add_summary(summary, step)
        self._pending = []

    def log_text(self, name: str, text: str, step: int) -> None:
        """Add a text entry."""
        if self._writer is not None:
            self._drain()
            self._writer.add_text(name, text, global_step=int(step))

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Add hyper-parameters with the metrics they produced (the HPARAMS tab)."""
        if self._writer is not None:
            self._drain()
            self._writer.add_hparams(dict(hparams), dict(metrics), run_name=".")

    def log_histogram(self, name: str, values: Any, step: int, bins: str = "tensorflow") -> None:
        """Add a histogram of ``values`` (a tensor or array)."""
        if self._writer is not None:
            self._drain()
            self._writer.add_histogram(name, values, global_step=int(step), bins=bins)

    def log_image(self, name: str, image: Any, step: int, dataformats: str = "CHW") -> None:
        """Add an image (tensor or array, layout given by ``dataformats``)."""
        if self._writer is not None:
            self._drain()
            self._writer.add_image(name, image, global_step=int(step), dataformats=dataformats)

    def flush(self) -> None:
        """Write pending events to disk now."""
        if self._writer is not None:
            self._drain()
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; later calls are no-ops."""
        if self._writer is not None:
            self._drain()
            self._writer.close()
            self._writer = None
