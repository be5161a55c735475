"""``AppStateMixin``: tracks a unit's checkpointable attributes as they are assigned.

This is the one piece of attribute magic in torchkit, kept TNT-compatible: assigning a module,
optimizer, LR scheduler, ``Progress``, torchmetrics metric or other ``Stateful`` to a unit
records it under the attribute name, like ``nn.Module.__setattr__`` records submodules.
Unlike ``nn.Module``, the value also stays a plain instance attribute, so reading
``self.module`` in a step costs nothing extra.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from torchkit.loop.progress import Progress

_KINDS = ("_modules", "_optimizers", "_lr_schedulers", "_progress", "_metrics", "_misc_statefuls")


def _is_metric(value: Any) -> bool:
    # torchmetrics objects can only exist once torchmetrics is imported, so this check never
    # imports it (keeps ``import torchkit`` light).
    tm = sys.modules.get("torchmetrics")
    return tm is not None and isinstance(value, (tm.Metric, tm.MetricCollection))


# Values assigned in steps (losses, counters, flags) take this exit before any isinstance check.
_PLAIN_TYPES = frozenset(
    {type(None), bool, int, float, str, bytes, tuple, list, dict, torch.Tensor}
)


def _kind_of(value: Any) -> str | None:
    cls = type(value)
    if cls in _PLAIN_TYPES or isinstance(value, type):  # a class is no stateful
        return None
    if _is_metric(value):
        return "_metrics"
    if isinstance(value, torch.nn.Module):
        return "_modules"
    if isinstance(value, torch.optim.Optimizer):
        return "_optimizers"
    if isinstance(value, torch.optim.lr_scheduler.LRScheduler):
        return "_lr_schedulers"
    if isinstance(value, Progress):
        return "_progress"
    # Structural check, equivalent to ``isinstance(value, Stateful)`` but without the runtime
    # Protocol machinery, which costs ~100 Python calls per assignment.
    if callable(getattr(cls, "state_dict", None)) and callable(
        getattr(cls, "load_state_dict", None)
    ):
        return "_misc_statefuls"
    return None


class AppStateMixin:
    """Tracks modules, optimizers, LR schedulers, progress, metrics and other statefuls.

    Example:
        >>> import torch
        >>> class U(AppStateMixin):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Linear(2, 2)
        ...         self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        >>> sorted(U().app_state())
        ['net', 'opt']
    """

    def __init__(self) -> None:
        for kind in _KINDS:
            object.__setattr__(self, kind, {})

    def _tracked(self, kind: str) -> dict[str, Any]:
        d = self.__dict__.get(kind)
        if d is None:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning "
                "attributes, so that torchkit can track them for checkpointing."
            )
        return d

    def __setattr__(self, name: str, value: Any) -> None:
        if "_modules" in self.__dict__:
            d = self.__dict__
            for kind in _KINDS:
                d[kind].pop(name, None)
            new_kind = _kind_of(value)
            if new_kind is not None:
                self.__dict__[new_kind][name] = value
        elif _kind_of(value) is not None:
            self._tracked("_modules")  # raises the "call super().__init__()" error
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for kind in _KINDS:
            self.__dict__.get(kind, {}).pop(name, None)
        object.__delattr__(self, name)

    def tracked_modules(self) -> dict[str, torch.nn.Module]:
        """Modules assigned to this unit, by attribute name."""
        return dict(self._tracked("_modules"))

    def tracked_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._tracked("_optimizers"))

    def tracked_lr_schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return dict(self._tracked("_lr_schedulers"))

    def tracked_progress(self) -> dict[str, Progress]:
        return dict(self._tracked("_progress"))

    def tracked_metrics(self) -> dict[str, Any]:
        """torchmetrics ``Metric`` / ``MetricCollection`` objects."""
        return dict(self._tracked("_metrics"))

    def tracked_misc_statefuls(self) -> dict[str, Any]:
        """Other objects with ``state_dict``/``load_state_dict`` (e.g. a ``GradScaler``)."""
        return dict(self._tracked("_misc_statefuls"))

    def tracked_stateful_names(self) -> set[str]:
        """Names of everything ``app_state()`` returns."""
        return set(self.app_state())

    def app_state(self) -> dict[str, Any]:
        """Everything a checkpoint must hold, by attribute name.

        Built from the ``tracked_*()`` methods, so a unit that overrides one of them (to add
        or hide entries) changes what is checkpointed, as in TNT.
        """
        return {
            **self.tracked_modules(),
            **self.tracked_optimizers(),
            **self.tracked_lr_schedulers(),
            **self.tracked_progress(),
            **self.tracked_metrics(),
            **self.tracked_misc_statefuls(),
        }
