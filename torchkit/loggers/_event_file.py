"""A TensorBoard event file written in-process, on any fsspec filesystem.

The file is a sequence of TFRecords, each holding a serialized ``Event`` protobuf; the framing
(lengths and masked CRC-32C checksums) is done by tensorboard's own ``RecordWriter``, and the
first event names the file version.

Events are buffered as protobufs and framed only when written, on the caller's thread: unlike
``SummaryWriter`` there is no writer thread, so logging never wakes a thread that competes
with the training loop for the GIL. The framed records of one write are joined and reach the
(fsspec) file as one ``write`` call.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from typing import Any

_FILE_COUNTER = itertools.count()


def event_file_name(prefix: str = "") -> str:
    """``events.out.tfevents.<seconds>.<host>.<pid>.<n>``: the name TensorBoard looks for."""
    return (
        f"{prefix}events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
        f"{os.getpid()}.{next(_FILE_COUNTER)}"
    )


class _Chunks:
    """A write-only sink that keeps what ``RecordWriter`` frames, to join it into one write."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.write = self.parts.append

    def take(self) -> bytes:
        """Everything written since the last call, as one bytes object."""
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class EventFileWriter:
    """Buffers ``Summary`` protos and appends them to one event file on ``write()``.

    Args:
        fs: an fsspec filesystem.
        directory: the log directory inside ``fs`` (created if missing).
    """

    def __init__(self, fs: Any, directory: str) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event_cls = Event
        self._chunks = _Chunks()
        self._records = RecordWriter(self._chunks)
        fs.makedirs(directory, exist_ok=True)
        self.path = f"{directory.rstrip('/')}/{event_file_name()}"
        self._file: Any = fs.open(self.path, "wb")
        self._pending: list[tuple[float, int, Any]] = []
        self._records.write(
            Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )
        self._file.write(self._chunks.take())
        self._file.flush()

    @property
    def num_pending(self) -> int:
        """Events added and not yet written."""
        return len(self._pending)

    def add(self, summary: Any, step: int) -> None:
        """Buffer ``summary`` (a ``Summary`` proto) at ``step``, stamped with the wall time now."""
        self._pending.append((time.time(), step, summary))

    def write(self) -> None:
        """Frame the buffered events and write them to the file, then flush it."""
        if not self._pending or self._file is None:
            return
        event, frame = self._event_cls, self._records.write
        for t, s, summary in self._pending:
            frame(event(wall_time=t, step=s, summary=summary).SerializeToString())
        self._pending = []
        self._file.write(self._chunks.take())
        self._file.flush()

    def close(self) -> None:
        """Write what is pending and close the file; later calls are no-ops."""
        if self._file is not None:
            self.write()
            self._file.close()
            self._file = None
