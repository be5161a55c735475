"""The ``Stateful`` protocol and ``MultiStateful``, which checkpoints several statefuls."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Stateful(Protocol):
    """Anything with ``state_dict()`` and ``load_state_dict()``, as torch objects have.

    Example:
        >>> import torch
        >>> isinstance(torch.nn.Linear(2, 2), Stateful)
        True
    """

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class MultiStateful:
    """Wraps a dict of statefuls so they save and load as one.

    Args:
        stateful_objs: name -> stateful object.

    Example:
        >>> import torch
        >>> ms = MultiStateful({"a": torch.nn.Linear(1, 1), "b": torch.nn.Linear(1, 1)})
        >>> sorted(ms.state_dict())
        ['a', 'b']
    """

    def __init__(self, stateful_objs: dict[str, Any]) -> None:
        self.stateful_objs = stateful_objs

    def state_dict(self) -> dict[str, Any]:
        return {k: v.state_dict() for k, v in self.stateful_objs.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for k, v in state_dict.items():
            self.stateful_objs[k].load_state_dict(v)
