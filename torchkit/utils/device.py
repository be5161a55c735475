"""Moving nested batches (dicts, lists, tuples, namedtuples, dataclasses) between devices."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def map_leaves(data: Any, fn: Callable[[Any], Any]) -> Any:
    """``data`` rebuilt with ``fn`` applied to every leaf: the one traversal behind
    ``copy_data_to_device``, ``record_data_in_stream`` and the prefetcher's pinning.

    Containers are mappings (``defaultdict`` keeps its factory; a mapping type that cannot be
    rebuilt from a dict becomes a dict), lists (subclasses kept), tuples, namedtuples and
    dataclass instances (their ``init`` fields). A leaf is a tensor or any other object with a
    callable ``.to``; everything else (numbers, strings, ``None``...) is returned unchanged.

    Args:
        data: a leaf or a nested container.
        fn: called once per leaf; its result replaces the leaf.

    Returns:
        A structure of the same types holding ``fn``'s results.

    Example:
        >>> import torch
        >>> map_leaves({"x": [torch.ones(1)], "n": 3}, lambda t: t * 2)
        {'x': [tensor([2.])], 'n': 3}
    """
    if isinstance(data, torch.Tensor):
        return fn(data)
    if isinstance(data, tuple):
        items = [map_leaves(v, fn) for v in data]
        if hasattr(data, "_fields"):  # namedtuple
            return type(data)(*items)
        return type(data)(items)
    if isinstance(data, list):
        moved = [map_leaves(v, fn) for v in data]
        return moved if type(data) is list else type(data)(moved)
    if isinstance(data, Mapping):
        moved_map = {k: map_leaves(v, fn) for k, v in data.items()}
        if isinstance(data, defaultdict):  # its constructor takes the factory first
            return type(data)(data.default_factory, moved_map)
        try:
            return type(data)(moved_map)  # type: ignore[call-arg]
        except TypeError:
            return moved_map
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        changes = {
            f.name: map_leaves(getattr(data, f.name), fn)
            for f in dataclasses.fields(data)
            if f.init
        }
        return dataclasses.replace(data, **changes)
    if callable(getattr(data, "to", None)) and not isinstance(data, type):
        return fn(data)
    return data


def copy_data_to_device(
    data: T,
    device: torch.device | str,
    *,
    non_blocking: bool = False,
    stream_to_record: torch.cuda.Stream | None = None,
) -> T:
    """Copy every tensor inside ``data`` to ``device``, keeping the container types.

    Recurses into mappings, lists, tuples, namedtuples and dataclass instances (see
    ``map_leaves``). Objects that define ``.to(device)`` (other than tensors) are moved with
    it; anything else is returned unchanged.

    Args:
        data: a tensor or a nested container of tensors.
        device: target device.
        non_blocking: passed to ``.to``; use with pinned memory on CUDA.
        stream_to_record: when copying on a side stream, the stream that will use the data:
            ``record_stream`` is called on every moved leaf (see ``record_data_in_stream``).

    Returns:
        A container of the same type holding the moved tensors.

    Raises:
        TypeError: ``stream_to_record`` is given and a moved non-tensor leaf has no
            ``record_stream``.

    Example:
        >>> import torch
        >>> out = copy_data_to_device({"x": [torch.ones(1)]}, "cpu")
        >>> type(out["x"]).__name__
        'list'
    """
    dev = torch.device(device) if isinstance(device, str) else device

    def move(leaf: Any) -> Any:
        try:
            moved = leaf.to(dev, non_blocking=non_blocking)
        except TypeError:  # a .to() without the keyword
            if isinstance(leaf, torch.Tensor):
                raise
            moved = leaf.to(dev)
        if stream_to_record is not None:
            _record(moved, stream_to_record)
        return moved

    return map_leaves(data, move)


def _record(leaf: Any, stream: Any) -> None:
    if isinstance(leaf, torch.Tensor):
        if leaf.is_cuda:  # host tensors have no stream; a move override may leave some there
            leaf.record_stream(stream)
        return
    record = getattr(leaf, "record_stream", None)
    if not callable(record):
        raise TypeError(
            f"enable_prefetch=True is invalid for a batch holding a {type(leaf).__name__}: "
            "it is moved with .to() on the prefetch side stream but has no "
            ".record_stream(stream), so its memory could be reused while the compute stream "
            f"still reads it. Give {type(leaf).__name__} a record_stream method (calling it on "
            "its tensors), hold its tensors in a dict/dataclass/namedtuple, or pass "
            "enable_prefetch=False."
        )
    record(stream)


def record_data_in_stream(data: Any, stream: torch.cuda.Stream) -> None:
    """Call ``record_stream(stream)`` once on every leaf nested anywhere in ``data``: each
    CUDA tensor, and each other object with ``.to`` (which must then have ``record_stream``).

    Needed after copying a batch on a side stream: without it the caching allocator may reuse
    the memory of a nested tensor while ``stream`` still reads it (TorchTNT records only a
    top-level tensor). Host tensors are skipped.

    Args:
        data: a batch, as returned by ``copy_data_to_device``.
        stream: the stream that will use the batch (usually the current stream).

    Raises:
        TypeError: a non-tensor leaf with ``.to`` has no ``record_stream``.

    Example:
        >>> import torch
        >>> record_data_in_stream({"x": torch.ones(1)}, None)  # host tensors: nothing to do
    """
    map_leaves(data, lambda leaf: _record(leaf, stream))
