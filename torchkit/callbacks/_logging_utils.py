"""Helpers shared by the logging callbacks: logger lists, interval checks, choice checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkit.loggers.metric_logger import MetricLogger


def as_logger_list(name: str, loggers: Any) -> list[MetricLogger]:
    """Accept one logger or a sequence of them; every element must have ``log_dict``."""
    items = list(loggers) if isinstance(loggers, Sequence) else [loggers]
    for i, lg in enumerate(items):
        if not callable(getattr(lg, "log_dict", None)) or not callable(getattr(lg, "log", None)):
            raise TypeError(
                f"{name}[{i}]={lg!r} is invalid: expected a MetricLogger (with log, log_dict "
                "and close). Pass e.g. torchkit.loggers.TensorBoardLogger('runs/x')."
            )
    return items


def check_interval(name: str, value: Any, fix: str = "Pass a positive number of steps") -> int:
    """An interval: an ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: expected an int >= 1. {fix}.")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """A string among ``choices`` (the runtime check behind ``Literal[...]`` arguments)."""
    if value not in choices:
        options = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is invalid: expected {options}. Pass one of them.")
    return str(value)


def log_to_all(loggers: list[MetricLogger], payload: dict[str, float], step: int) -> None:
    """``log_dict`` on every logger (skipped when there is nothing to log)."""
    if payload:
        for lg in loggers:
            lg.log_dict(payload, step)


def flush_all(loggers: list[MetricLogger]) -> None:
    """Call ``flush()`` on the loggers that have one."""
    for lg in loggers:
        flush = getattr(lg, "flush", None)
        if callable(flush):
            flush()


def current_lrs(unit: Any, prefix: str = "lr") -> dict[str, float]:
    """Learning rates of the unit's tracked optimizers (Python floats: no host sync).

    One optimizer with one param group gives ``{prefix: lr}``; otherwise names get
    ``/<optimizer attribute>`` and ``/pg<i>`` suffixes.
    """
    tracked = getattr(unit, "tracked_optimizers", None)
    optimizers = tracked() if callable(tracked) else {}
    out: dict[str, float] = {}
    for opt_name, opt in optimizers.items():
        groups = opt.param_groups
        for i, group in enumerate(groups):
            name = prefix if len(optimizers) == 1 else f"{prefix}/{opt_name}"
            if len(groups) > 1:
                name = f"{name}/pg{i}"
            lr = group["lr"]
            out[name] = float(lr) if not hasattr(lr, "item") else lr
    return out
