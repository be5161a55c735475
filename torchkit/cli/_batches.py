"""``Batches``: the type of a dataloader argument (any iterable class, given by class_path)."""

from __future__ import annotations

from abc import ABC
from typing import Any

__all__ = ["Batches"]

_NOT_LOADERS = (str, bytes, dict, list, tuple, set, frozenset)


class Batches(ABC):  # noqa: B024 (a marker ABC: every iterable class is a virtual subclass)
    """Any iterable of batches built from a ``class_path`` (a ``DataLoader``, a data module).

    Plain containers (dicts, lists, strings) are not virtual subclasses, so a config's
    ``{class_path: ..., init_args: ...}`` mapping is read as a class to build, never taken
    as the iterable itself.

    Example:
        >>> import torch
        >>> issubclass(torch.utils.data.DataLoader, Batches), issubclass(dict, Batches)
        (True, False)
    """

    @classmethod
    def __subclasshook__(cls, subclass: type) -> Any:
        if issubclass(subclass, _NOT_LOADERS) or subclass.__name__ == "Namespace":
            return NotImplemented
        if any("__iter__" in vars(base) for base in subclass.__mro__):
            return True
        return NotImplemented
