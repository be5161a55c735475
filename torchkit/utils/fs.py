"""fsspec helpers: every path torchkit writes to is a URL (local, ``file://``, ``memory://``...)."""

from __future__ import annotations

from typing import Any


def get_filesystem(path: str, **storage_options: Any) -> Any:
    """The fsspec filesystem that serves ``path`` (``fsspec.core.url_to_fs``).

    Example:
        >>> fs = get_filesystem("memory://x")
        >>> fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
        'memory'
    """
    return url_to_fs(path, **storage_options)[0]


def url_to_fs(path: str, **storage_options: Any) -> tuple[Any, str]:
    """``(filesystem, path within it)`` for ``path``."""
    from fsspec.core import url_to_fs as _url_to_fs

    fs, inner = _url_to_fs(str(path), **storage_options)
    return fs, inner


def protocol_of(fs: Any) -> str:
    """The filesystem's main protocol name (``"file"``, ``"memory"``, ``"s3"``...)."""
    proto = fs.protocol
    return str(proto[0] if isinstance(proto, (tuple, list)) else proto)


def join_url(base: str, *parts: str) -> str:
    """Join path parts onto a URL or local path with ``/``."""
    out = str(base).rstrip("/")
    for p in parts:
        out = f"{out}/{str(p).strip('/')}"
    return out


def unstrip_protocol(fs: Any, inner_path: str) -> str:
    """Turn a path inside ``fs`` back into a URL that keeps its protocol (``memory://...``)."""
    proto = protocol_of(fs)
    if proto in ("file", "local"):
        return inner_path
    return str(fs.unstrip_protocol(inner_path))
