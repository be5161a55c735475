"""Moving nested batches (dicts, lists, tuples, namedtuples, dataclasses) between devices."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def copy_data_to_device(data: T, device: torch.device | str, *, non_blocking: bool = False) -> T:
    """Copy every tensor inside ``data`` to ``device``, keeping the container types.

    Recurses into mappings, lists, tuples, namedtuples and dataclass instances. Objects that
    define ``.to(device)`` (other than tensors) are moved with it; anything else is returned
    unchanged.

    Args:
        data: a tensor or a nested container of tensors.
        device: target device.
        non_blocking: passed to ``Tensor.to``; use with pinned memory on CUDA.

    Returns:
        A container of the same type holding the moved tensors.

    Example:
        >>> import torch
        >>> out = copy_data_to_device({"x": [torch.ones(1)]}, "cpu")
        >>> type(out["x"]).__name__
        'list'
    """
    return _copy(data, torch.device(device) if isinstance(device, str) else device, non_blocking)


def _copy(data: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=non_blocking)
    if isinstance(data, tuple):
        items = [_copy(v, device, non_blocking) for v in data]
        if hasattr(data, "_fields"):  # namedtuple
            return type(data)(*items)
        return type(data)(items)
    if isinstance(data, list):
        moved = [_copy(v, device, non_blocking) for v in data]
        return moved if type(data) is list else type(data)(moved)
    if isinstance(data, Mapping):
        moved_map = {k: _copy(v, device, non_blocking) for k, v in data.items()}
        if isinstance(data, defaultdict):  # its constructor takes the factory first
            return type(data)(data.default_factory, moved_map)
        try:
            return type(data)(moved_map)  # type: ignore[call-arg]
        except TypeError:
            return moved_map
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        changes = {
            f.name: _copy(getattr(data, f.name), device, non_blocking)
            for f in dataclasses.fields(data)
            if f.init
        }
        return dataclasses.replace(data, **changes)
    if hasattr(data, "to") and callable(data.to) and not isinstance(data, type):
        try:
            return data.to(device, non_blocking=non_blocking)
        except TypeError:
            return data.to(device)
    return data


def record_data_in_stream(data: Any, stream: torch.cuda.Stream) -> None:
    """Call ``record_stream(stream)`` on every CUDA tensor nested anywhere in ``data``.

    Needed after copying a batch on a side stream: without it the caching allocator may reuse
    the memory of a nested tensor while the main stream still reads it.
    """
    if isinstance(data, torch.Tensor):
        if data.is_cuda:
            data.record_stream(stream)
    elif isinstance(data, (list, tuple)):
        for v in data:
            record_data_in_stream(v, stream)
    elif isinstance(data, Mapping):
        for v in data.values():
            record_data_in_stream(v, stream)
    elif dataclasses.is_dataclass(data) and not isinstance(data, type):
        for f in dataclasses.fields(data):
            record_data_in_stream(getattr(data, f.name), stream)
