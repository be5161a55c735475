"""``TensorBoardLogger``: real TensorBoard event files (scalars, text, hparams, histograms...)."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from torchkit.loggers._event_file import EventFileWriter
from torchkit.loggers.metric_logger import Scalar, check_positive_int, check_writable_url, to_float
from torchkit.utils.distributed import get_global_rank

logger = logging.getLogger(__name__)


class TensorBoardLogger:
    """Writes a TensorBoard event file under ``path`` on rank 0 (other ranks do nothing).

    The file is readable by ``tensorboard --logdir <path>`` and by
    ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``. ``path`` is a
    local directory or any fsspec URL (``memory://``, ``s3://``... with the backend
    installed). On object stores the file becomes visible when it is closed.

    Events are buffered in memory and written on the logging thread every ``max_pending``
    events, every ``flush_secs`` seconds (checked when something is logged), on ``flush()``
    and on ``close()``. There is no background writer thread, so logging costs the training
    loop a list append between writes.

    Args:
        path: log directory or URL.
        flush_secs: write buffered events when this many seconds passed since the last write.
        max_pending: write buffered events when this many are pending.

    Raises:
        ValueError: ``path`` cannot be created or written, or ``flush_secs`` /
            ``max_pending`` is not a positive int.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> tb = TensorBoardLogger(d)
        >>> tb.log("train/loss", 0.5, step=1)
        >>> tb.close()
    """

    def __init__(self, path: str, *, flush_secs: int = 120, max_pending: int = 100) -> None:
        self.flush_secs = check_positive_int(
            "flush_secs", flush_secs, "Pass e.g. flush_secs=120 to write every two minutes"
        )
        self.max_pending = check_positive_int(
            "max_pending", max_pending, "Pass e.g. max_pending=100 to write every 100 events"
        )
        self.path = os.fspath(path)
        self._events: EventFileWriter | None = None
        self._summary_writer: Any = None
        self._last_write = time.monotonic()
        if get_global_rank() != 0:
            return
        fs, inner = check_writable_url("path", self.path, is_file=False)
        self._events = EventFileWriter(fs, inner)

    @property
    def event_file(self) -> str | None:
        """Path of the event file inside its filesystem (``None`` off rank 0 or after close)."""
        return self._events.path if self._events is not None else None

    @property
    def writer(self) -> Any:
        """A ``torch.utils.tensorboard.SummaryWriter`` on the same directory, for what this
        logger does not wrap (graphs, embeddings...). Created on first use; it writes its own
        event file (with its own writer thread) next to this logger's. ``None`` on ranks other
        than 0 or after ``close()``."""
        if self._events is None:
            return None
        if self._summary_writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._summary_writer = SummaryWriter(log_dir=self.path)
        return self._summary_writer

    def _add(self, summary: Any, step: int) -> None:
        events = self._events
        assert events is not None
        events.add(summary, step)
        if events.num_pending >= self.max_pending or (
            time.monotonic() - self._last_write >= self.flush_secs
        ):
            self._write()

    def _write(self) -> None:
        if self._events is not None:
            self._events.write()
        self._last_write = time.monotonic()

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Add one scalar."""
        self.log_dict({name: value}, step)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Add several scalars, each under its own tag, as one event (cheaper than one
        ``add_scalar`` per value; readers see the same tags and steps)."""
        if self._events is None or not payload:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=k, simple_value=to_float(v)) for k, v in payload.items()]
        self._add(Summary(value=values), int(step))

    def log_text(self, name: str, text: str, step: int) -> None:
        """Add a text entry (the TEXT tab)."""
        if self._events is not None:
            self._add(_summaries().text(name, text), int(step))

    def log_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Add hyper-parameters with the metrics they produced (the HPARAMS tab)."""
        if self._events is not None:
            for summary in _summaries().hparams(dict(hparams), dict(metrics)):
                self._add(summary, 0)
            self.log_dict(metrics, 0)

    def log_histogram(self, name: str, values: Any, step: int, bins: str = "tensorflow") -> None:
        """Add a histogram of ``values`` (a tensor or array).

        ``bins="tensorflow"`` uses TensorBoard's usual exponential buckets (edges growing by
        10 % from 1e-12 to 1e20, mirrored for negatives); any other value goes to
        ``numpy.histogram`` (``"auto"``, ``"fd"``, an int...)."""
        if self._events is not None:
            edges: Any = _tensorflow_bins() if bins == "tensorflow" else bins
            self._add(_summaries().histogram(name, _to_numpy(values), edges), int(step))

    def log_image(self, name: str, image: Any, step: int, dataformats: str = "CHW") -> None:
        """Add an image (tensor or array, layout given by ``dataformats``)."""
        if self._events is not None:
            summary = _summaries().image(name, _to_numpy(image), dataformats=dataformats)
            self._add(summary, int(step))

    def flush(self) -> None:
        """Write pending events now."""
        self._write()
        if self._summary_writer is not None:
            self._summary_writer.flush()

    def close(self) -> None:
        """Write pending events and close the event file; later calls are no-ops."""
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._summary_writer is not None:
            self._summary_writer.close()
            self._summary_writer = None

    def __del__(self) -> None:
        # a logger dropped without close() still writes what it buffered
        if (
            getattr(self, "_events", None) is None
            and getattr(self, "_summary_writer", None) is None
        ):
            return  # closed, or __init__ raised before opening anything
        try:
            self.close()
        except Exception:
            logger.debug("could not close TensorBoardLogger(%r) when collected", self.path)


def _summaries() -> Any:
    """``torch.utils.tensorboard.summary``: builds text, hparams, histogram and image protos."""
    from torch.utils.tensorboard import summary

    return summary


@functools.cache
def _tensorflow_bins() -> list[float]:
    """Bucket edges growing by 10 % from 1e-12 to 1e20, mirrored, with 0 in the middle."""
    edges = []
    v = 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0.0] + edges


def _to_numpy(values: Any) -> Any:
    """A tensor as a CPU numpy array (a host sync); anything else unchanged."""
    if hasattr(values, "detach"):
        values = values.detach()
        if values.is_floating_point() and values.element_size() < 4:  # numpy has no bf16
            values = values.float()
        return values.cpu().numpy()
    return values
