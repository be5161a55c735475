"""``Duration``: Composer-style time strings (``"2ep"``, ``"1e9tok"``, ``"36h"``), firing rule.

A ``Duration`` is a value and a unit:

* ``ep``: train epochs completed; ``ba``: train *unit steps* completed
  (``Progress.num_steps_completed``, micro-batches under accumulation: TNT's meaning, not
  Composer's optimizer batches);
* ``sp``: samples and ``tok``: tokens, global across ranks, counted by the unit's
  ``count_samples(batch)`` / ``count_tokens(batch)``;
* ``sec``: train wall-clock seconds (rank 0's clock; time before a preemption counts);
* ``dur``: a fraction of ``max_duration``, converted up front by ``resolve_interval``.

How a loop component (an eval schedule, a checkpointer, a callback) uses one:

1. At construction, validate the user's value: ``every = Duration.parse(every, name="every")``
   (``ValueError`` naming the argument otherwise). ``check_interval`` also rejects a zero
   interval.
2. Before ``on_train_start``, convert ``dur`` into a concrete unit and tell the run what to
   count. A callback defines ``resolve_durations(max_duration, steps_per_epoch) ->
   list[Duration]``, which ``train``/``fit`` call before any hook (the checkpointers'
   ``save_every`` does this, with ``resolve_interval(every, max_duration, steps_per_epoch,
   name=...)``); loop code calls ``DurationPlan.add_interval(every, name=...)``
   (``torchkit.loop.duration_loop``) on the run's plan before ``plan.attach``.
3. After each train step (in ``on_train_step_end`` or the loop's ``after_step``), ask the
   run's tracker: ``state.duration_tracker.fires(every)``; after each train epoch,
   ``state.duration_tracker.fires_at_epoch_end(every)`` (only ``ep`` intervals fire there).
   Both apply ``crossed``: an interval fires when floor(prev / every) != floor(curr / every),
   which stays right when a counter jumps by more than one per step (tokens, samples).

Example:
    >>> Duration.parse("1e6tok")
    Duration(value=1000000, unit='tok')
    >>> Duration.parse("1h30m").value
    5400
    >>> [s for s in range(1, 9) if crossed(64 * (s - 1), 64 * s, 100)]
    [2, 4, 5, 7, 8]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

DurationUnit = Literal["ep", "ba", "sp", "tok", "sec", "dur"]
UNITS: tuple[str, ...] = ("ep", "ba", "sp", "tok", "sec", "dur")
"""Accepted units, in the order error messages list them."""

_FORMS = (
    "a number and a unit, one of ep, ba, sp, tok, sec, dur (e.g. '10ep', '500ba', '1e6tok', "
    "'0.25dur'), or a wall-clock time built from d, h, m, s (e.g. '36h', '1h30m', '1d12h', "
    "'3600s')"
)
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?"
_UNIT_RE = re.compile(rf"^({_NUMBER})([a-z]+)$")
_CLOCK_RE = re.compile(
    r"^(?:(\d+(?:\.\d*)?)d)?(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?$"
)
_CLOCK_SECONDS = (86400, 3600, 60, 1)


class DurationTypeError(ValueError, TypeError):
    """A duration of the wrong kind (neither a ``Duration``, a string nor ``(value, unit)``).

    It is both a ``ValueError`` (the contract for bad durations) and a ``TypeError`` (the
    library's rule for wrong kinds), so either ``except`` catches it.
    """


class _Raise:
    """Builds the library's error message for one argument."""

    def __init__(self, name: str, value: Any) -> None:
        self.prefix = f"{name}={value!r} is invalid"

    def __call__(self, rule: str, fix: str) -> ValueError:
        return ValueError(f"{self.prefix}: expected {rule}. {fix}.")


@dataclass(frozen=True)
class Duration:
    """An amount of training: ``value`` in ``unit`` (see the module docstring for units).

    Every unit but ``dur`` takes a non-negative int (integral floats are converted);
    ``dur`` takes a fraction in (0, 1].

    Args:
        value: the amount.
        unit: one of ``ep``, ``ba``, ``sp``, ``tok``, ``sec``, ``dur``.

    Raises:
        ValueError: an unknown unit, a negative or non-integral value, or a ``dur`` outside
            (0, 1].

    Example:
        >>> Duration(2, "ep")
        Duration(value=2, unit='ep')
        >>> str(Duration(7200, "sec")), str(Duration(0.5, "dur"))
        ('7200sec', '0.5dur')
    """

    value: int | float
    unit: DurationUnit

    def __post_init__(self) -> None:
        value = _checked_value("duration", (self.value, self.unit), self.value, self.unit)
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        return f"{self.value}{self.unit}"

    @classmethod
    def parse(cls, x: Any, *, name: str = "duration") -> Duration:
        """A ``Duration`` from a ``Duration``, a string, or a ``(value, unit)`` pair.

        Strings are case-insensitive and may contain spaces; integer units accept scientific
        notation (``"1e6tok"`` is the int 1,000,000). Wall-clock strings combine ``d``, ``h``,
        ``m`` and ``s`` parts of any magnitude (``"36h"``, ``"90m"``, ``"1d12h"``, ``"3600s"``,
        ``"3600sec"``) and give whole seconds.

        Args:
            x: what the user passed.
            name: the argument's name, used in error messages.

        Returns:
            The ``Duration``.

        Raises:
            ValueError: a malformed string, an unknown unit (the message lists the accepted
                units), a negative or non-integral value, or a ``dur`` outside (0, 1]. A wrong
                kind of object raises ``DurationTypeError``, a ``ValueError`` that is also a
                ``TypeError``.

        Example:
            >>> Duration.parse("10 EP"), Duration.parse((500, "ba"))
            (Duration(value=10, unit='ep'), Duration(value=500, unit='ba'))
            >>> Duration.parse("1d12h")
            Duration(value=129600, unit='sec')
        """
        if isinstance(x, Duration):
            return x
        if isinstance(x, str):
            return _parse_string(name, x)
        if isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], str):
            unit = x[1].strip().lower()
            return cls(_checked_value(name, x, x[0], unit), cast(DurationUnit, unit))
        raise DurationTypeError(
            f"{name}={x!r} is invalid: expected a torchkit.Duration, a string such as '2ep' or "
            f"'1e9tok', or a (value, unit) pair; got a {type(x).__name__}. Write e.g. "
            f"{name}='10ep' (a bare number has no unit)."
        )


def _checked_value(name: str, shown: Any, value: Any, unit: str) -> int | float:
    error = _Raise(name, shown)
    if unit not in UNITS:
        raise error(f"a unit in {', '.join(UNITS)}", "Write e.g. '10ep', '500ba', '1e6tok' or '2h'")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DurationTypeError(
            f"{error.prefix}: expected an int or float value, got a {type(value).__name__}. "
            "Pass e.g. (10, 'ep')."
        )
    if not math.isfinite(value):
        raise error("a finite value", "Pass a number such as 10")
    if unit == "dur":
        if not 0 < value <= 1:
            raise error(
                "a fraction of max_duration in (0, 1]", "Write e.g. '0.25dur' for a quarter"
            )
        return float(value)
    if value < 0:
        raise error("a non-negative amount", f"Write e.g. '10{unit}'")
    if isinstance(value, float):
        if not value.is_integer():
            raise error(
                f"a whole number of {unit}",
                f"Round it (e.g. '{math.ceil(value)}{unit}'), or use a finer unit",
            )
        return int(value)
    return int(value)


def _parse_string(name: str, text: str) -> Duration:
    s = "".join(text.split()).lower()
    error = _Raise(name, text)
    if not s:
        raise error(_FORMS, "Pass e.g. '10ep'")
    m = _UNIT_RE.match(s)
    if m is not None and m.group(2) in UNITS:
        number, unit = m.groups()
        value: int | float = int(number) if number.isdigit() else float(number)
        return Duration(_checked_value(name, text, value, unit), cast(DurationUnit, unit))
    clock = _CLOCK_RE.match(s)
    if clock is not None and any(clock.groups()):
        seconds = sum(float(g) * k for g, k in zip(clock.groups(), _CLOCK_SECONDS) if g)
        return Duration(_checked_value(name, text, seconds, "sec"), "sec")
    if m is not None:
        raise error(
            f"a unit in {', '.join(UNITS)} or a wall-clock time of d, h, m, s; got unit "
            f"{m.group(2)!r}",
            "Write e.g. '10ep', '1e6tok' or '36h'",
        )
    raise error(_FORMS, "Write e.g. '10ep', '1e6tok' or '1h30m'")


def check_interval(every: Any, *, name: str) -> Duration | None:
    """Parse an interval (``None`` stays ``None``); a zero interval is rejected.

    Raises:
        ValueError: what ``Duration.parse`` rejects, or a zero value.

    Example:
        >>> check_interval("100tok", name="evaluate_every")
        Duration(value=100, unit='tok')
    """
    if every is None:
        return None
    d = Duration.parse(every, name=name)
    if d.value == 0:
        raise ValueError(
            f"{name}={every!r} is invalid: expected a positive interval. Pass e.g. "
            f"'1{d.unit}', or None to turn it off."
        )
    return d


def check_max_duration(max_duration: Any, *, name: str = "max_duration") -> Duration | None:
    """Parse ``max_duration`` (``None`` stays ``None``); ``dur`` cannot bound itself.

    Raises:
        ValueError: what ``Duration.parse`` rejects, or a ``dur`` value.

    Example:
        >>> check_max_duration("2ep")
        Duration(value=2, unit='ep')
    """
    if max_duration is None:
        return None
    d = Duration.parse(max_duration, name=name)
    if d.unit == "dur":
        raise ValueError(
            f"{name}={max_duration!r} is invalid: expected a unit other than dur (a fraction "
            f"of itself). Write e.g. {name}='2ep' or '1e9tok'."
        )
    return d


def resolve_interval(
    every: Duration,
    max_duration: Duration | None,
    steps_per_epoch: int | None,
    *,
    name: str,
) -> Duration:
    """Convert a ``dur`` interval into ``max_duration``'s unit; other units pass through.

    A fraction of an epoch budget that is not a whole number of epochs is converted into
    unit steps, which needs ``steps_per_epoch`` (``len(dataloader)``, capped by
    ``max_steps_per_epoch``). The converted value may be fractional (``0.3dur`` of ``"20ba"``
    is 6 steps; ``0.33dur`` fires by the floor rule at steps 7, 14, 20).

    Args:
        every: the interval.
        max_duration: the run's budget.
        steps_per_epoch: steps in one epoch, or ``None`` when the loader is unsized.
        name: the interval argument's name, for error messages.

    Raises:
        ValueError: a ``dur`` interval without ``max_duration``, or one that needs the
            length of an unsized dataloader.

    Example:
        >>> resolve_interval(Duration(0.25, "dur"), Duration(20, "ba"), None, name="every")
        Duration(value=5, unit='ba')
        >>> resolve_interval(Duration(0.25, "dur"), Duration(2, "ep"), 8, name="every")
        Duration(value=4, unit='ba')
    """
    if every.unit != "dur":
        return every
    if max_duration is None:
        raise ValueError(
            f"{name}={str(every)!r} is invalid: expected max_duration to be set, since dur is "
            "a fraction of it. Pass max_duration (e.g. '2ep'), or use another unit."
        )
    if max_duration.value == 0:
        raise ValueError(
            f"{name}={str(every)!r} is invalid with max_duration={str(max_duration)!r}: "
            "expected a positive max_duration, since dur is a fraction of it. Use another unit."
        )
    amount = every.value * max_duration.value
    if max_duration.unit == "ep" and not float(amount).is_integer():
        if steps_per_epoch is None:
            raise ValueError(
                f"{name}={str(every)!r} is invalid with max_duration={str(max_duration)!r}: "
                f"expected a sized train dataloader, since {amount:g} epochs must be converted "
                "into steps with len(dataloader). Use an integer number of epochs, a 'ba' "
                "interval, or a dataloader with __len__."
            )
        return _concrete(amount * steps_per_epoch, "ba")
    return _concrete(amount, max_duration.unit)


def _concrete(amount: float, unit: str) -> Duration:
    value: int | float = int(amount) if float(amount).is_integer() else amount
    d = object.__new__(Duration)  # fractional intervals bypass the whole-number check
    object.__setattr__(d, "value", value)
    object.__setattr__(d, "unit", unit)
    return d


def crossed(prev: float, curr: float, every: float) -> bool:
    """The firing rule: True when ``floor(prev / every) != floor(curr / every)``.

    ``prev`` and ``curr`` are a counter before and after one step; ``every`` is the
    interval in the same unit.

    Example:
        >>> crossed(96, 112, 100), crossed(0, 64, 100)
        (True, False)
    """
    return prev // every != curr // every


__all__ = [
    "UNITS",
    "Duration",
    "DurationTypeError",
    "DurationUnit",
    "check_interval",
    "check_max_duration",
    "crossed",
    "resolve_interval",
]
