"""``MetricLogger``: the protocol every logger implements, plus shared validation helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

Scalar = Any
"""A number: a Python ``int``/``float`` or a 0-d tensor (read on the logger's side)."""


@runtime_checkable
class MetricLogger(Protocol):
    """What callbacks need from a logger: scalars by name and step, and ``close()``.

    Any object with these three methods works (``TensorBoardLogger``, ``CSVLogger``,
    ``JSONLogger``, ``InMemoryLogger``, ``StdoutLogger``, ``MLflowLogger`` or your own).

    Example:
        >>> from torchkit.loggers import InMemoryLogger
        >>> isinstance(InMemoryLogger(), MetricLogger)
        True
    """

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Record one scalar ``value`` under ``name`` at ``step``."""

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Record several scalars at ``step``."""

    def close(self) -> None:
        """Flush what is buffered and release files; later calls are no-ops."""


def to_float(value: Scalar) -> float:
    """``value`` as a Python float (a tensor is read here: a host sync for device tensors)."""
    if hasattr(value, "item"):
        return float(value.item())
    return float(value)


def check_positive_int(name: str, value: Any, fix: str) -> int:
    """Validate an interval-like argument: an ``int`` >= 1 (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: expected an int >= 1. {fix}.")
    return value


def check_writable_url(name: str, path: Any, *, is_file: bool) -> tuple[Any, str]:
    """Resolve ``path`` with fsspec and make sure its directory can be created and written.

    Args:
        name: the argument name, for the error message.
        path: a local path or fsspec URL.
        is_file: ``path`` names a file (its parent directory is checked) or a directory.

    Returns:
        ``(filesystem, path inside it)``.

    Raises:
        TypeError: ``path`` is not a string or ``os.PathLike``.
        ValueError: the location cannot be created or written.
    """
    import os

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{name}={path!r} is invalid: expected a path or URL string. "
            "Pass e.g. 'logs/run1' or 'memory://logs'."
        )
    from torchkit.utils.fs import url_to_fs

    fs, inner = url_to_fs(os.fspath(path))
    directory = str(fs._parent(inner)) if is_file else inner
    try:
        if fs.isdir(inner) and is_file:
            raise IsADirectoryError(f"{inner} is a directory")
        fs.makedirs(directory, exist_ok=True)
        probe = f"{directory.rstrip('/')}/.torchkit_write_probe"
        with fs.open(probe, "wb") as f:
            f.write(b"")
        fs.rm(probe)
    except (OSError, ValueError, NotImplementedError) as exc:
        raise ValueError(
            f"{name}={os.fspath(path)!r} is invalid: expected a writable directory ({exc}). "
            "Pass a location you can write to, e.g. a directory under your home or /tmp."
        ) from exc
    return fs, inner
