"""A TensorBoard event file written in-process, on any fsspec filesystem.

The file is a sequence of records, each ``uint64 length``, ``uint32 masked CRC32C of the
length``, ``data`` (a serialized ``Event`` protobuf) and ``uint32 masked CRC32C of data``
(little-endian), the layout TensorBoard's readers expect. The first event names the file
version.

Events are buffered as protobufs and framed only when written, on the caller's thread: unlike
``SummaryWriter`` there is no writer thread, so logging never wakes a thread that competes
with the training loop for the GIL.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from typing import Any

_FILE_COUNTER = itertools.count()


def event_file_name(prefix: str = "") -> str:
    """``events.out.tfevents.<seconds>.<host>.<pid>.<n>``: the name TensorBoard looks for."""
    return (
        f"{prefix}events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
        f"{os.getpid()}.{next(_FILE_COUNTER)}"
    )


def _crc32c_table() -> tuple[int, ...]:
    """The byte table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
    """CRC-32C of ``data``, masked the way TFRecord framing requires (rotated right by 15 bits
    plus a constant), so that a CRC of CRC-carrying data stays well distributed."""
    table = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: the length, its masked CRC, the data and its masked CRC."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class EventFileWriter:
    """Buffers ``Summary`` protos and appends them to one event file on ``write()``.

    Args:
        fs: an fsspec filesystem.
        directory: the log directory inside ``fs`` (created if missing).
    """

    def __init__(self, fs: Any, directory: str) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._event_cls = Event
        fs.makedirs(directory, exist_ok=True)
        self.path = f"{directory.rstrip('/')}/{event_file_name()}"
        self._file: Any = fs.open(self.path, "wb")
        self._pending: list[tuple[float, int, Any]] = []
        self._file.write(
            frame_record(
                Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
            )
        )
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
        event = self._event_cls
        chunk = b"".join(
            frame_record(event(wall_time=t, step=s, summary=summary).SerializeToString())
            for t, s, summary in self._pending
        )
        self._pending = []
        self._file.write(chunk)
        self._file.flush()

    def close(self) -> None:
        """Write what is pending and close the file; later calls are no-ops."""
        if self._file is not None:
            self.write()
            self._file.close()
            self._file = None
