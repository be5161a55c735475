"""How ``train``/``fit`` use ``Duration`` limits and intervals: validation, counting, decisions.

Nothing here runs per step unless a duration needs it. ``ep`` and ``ba`` budgets become
``max_epochs`` / ``max_steps`` and ``ep`` / whole ``ba`` eval intervals become
``evaluate_every_n_epochs`` / ``evaluate_every_n_steps``, so they run the integer code path
exactly. Only ``sp``, ``tok`` and ``sec`` (and fractional ``ba`` intervals) add work: the unit's
train step is wrapped to count after it (before ``on_train_step_end``, so checkpointers see
the counts of the step they save), and a function after the step's hooks evaluates and stops.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torchkit.loop.duration import (
    Duration,
    check_interval,
    check_max_duration,
    resolve_interval,
)
from torchkit.loop.duration_tracker import DurationTracker, pop_duration_state
from torchkit.loop.state import State
from torchkit.units.unit import TrainUnit
from torchkit.utils.distributed import get_global_rank, get_world_size

COUNTED_UNITS = ("sp", "tok", "sec")
"""Units counted after every train step (the others are read from ``Progress``)."""


class _DefaultEveryNEpochs(int):
    """``fit``'s default ``evaluate_every_n_epochs``: equal to 1, recognised by identity."""


DEFAULT_EVERY_N_EPOCHS = _DefaultEveryNEpochs(1)
"""``fit(evaluate_every_n_epochs=...)``'s default: ``== 1``, but ``is`` tells it from a user's 1."""


def _steps_per_epoch(dataloader: Iterable[Any], max_steps_per_epoch: int | None) -> int | None:
    try:
        n: int | None = len(dataloader)  # type: ignore[arg-type]
    except (TypeError, NotImplementedError):
        n = None
    if n is None or max_steps_per_epoch is None:
        return n
    return min(n, max_steps_per_epoch)


@dataclass
class DurationPlan:
    """The durations of one ``train``/``fit`` call, validated and resolved before any hook.

    Args:
        max_duration: the budget (``None``: none).
        evaluate_every: ``fit``'s eval interval, resolved (``None``: none).
        required: every duration the tracker must measure (limits and intervals).

    Example:
        >>> plan = DurationPlan.build([1, 2], max_duration="3ba")
        >>> plan.limits(None, 10)
        (None, 3)
    """

    max_duration: Duration | None = None
    evaluate_every: Duration | None = None
    required: list[Duration] = field(default_factory=list)
    steps_per_epoch: int | None = None

    @classmethod
    def build(
        cls,
        dataloader: Iterable[Any],
        *,
        max_duration: Any = None,
        max_steps_per_epoch: int | None = None,
        evaluate_every: Any = None,
        callbacks: Iterable[Any] | None = None,
    ) -> DurationPlan:
        """Parse and resolve every duration of a run; raises before any side effect.

        Callbacks that take durations (the checkpointers' ``save_every``) define
        ``resolve_durations(max_duration, steps_per_epoch) -> list[Duration]``: it converts
        their ``dur`` intervals and returns what the run must measure.

        Raises:
            ValueError: a malformed duration, a ``dur`` budget, a ``dur`` interval without
                ``max_duration`` or one that needs the length of an unsized dataloader.
        """
        limit = check_max_duration(max_duration)
        spe = _steps_per_epoch(dataloader, max_steps_per_epoch)
        plan = cls(max_duration=limit, steps_per_epoch=spe)
        if limit is not None:
            plan.required.append(limit)
        if evaluate_every is not None:
            plan.evaluate_every = plan.add_interval(evaluate_every, name="evaluate_every")
        for cb in callbacks or ():
            resolve = getattr(cb, "resolve_durations", None)
            if callable(resolve):
                plan.required.extend(resolve(limit, spe))
        return plan

    def add_interval(self, every: Any, *, name: str) -> Duration:
        """Parse and resolve another interval of the run (e.g. one eval set's ``every``) and
        make the tracker measure it; call before ``attach``.

        Args:
            every: the user's value (a ``Duration``, a string or a pair).
            name: the argument's name, for error messages.

        Raises:
            ValueError: what ``check_interval`` and ``resolve_interval`` reject.

        Example:
            >>> plan = DurationPlan.build([1, 2], max_duration="10tok")
            >>> plan.add_interval("0.5dur", name="every")
            Duration(value=5, unit='tok')
        """
        d = check_interval(every, name=name)
        if d is None:
            raise ValueError(f"{name}=None is invalid here: expected an interval such as '1ep'.")
        resolved = resolve_interval(d, self.max_duration, self.steps_per_epoch, name=name)
        self.required.append(resolved)
        return resolved

    def limits(
        self, max_epochs: int | None, max_steps: int | None
    ) -> tuple[int | None, int | None]:
        """``max_epochs`` and ``max_steps`` tightened by an ``ep`` or ``ba`` budget."""
        d = self.max_duration
        if d is not None and d.unit == "ep":
            max_epochs = int(d.value) if max_epochs is None else min(max_epochs, int(d.value))
        if d is not None and d.unit == "ba":
            max_steps = int(d.value) if max_steps is None else min(max_steps, int(d.value))
        return max_epochs, max_steps

    def eval_intervals(
        self, every_n_steps: int | None, every_n_epochs: int | None
    ) -> tuple[int | None, int | None]:
        """``evaluate_every`` as integer intervals when it is ``ep`` or whole ``ba``; a
        counted one stays on the tracker (``tracker.evaluate_every``)."""
        every = self.evaluate_every
        if every is None:
            return every_n_steps, every_n_epochs
        if every.unit == "ep":
            return None, int(every.value)
        if every.unit == "ba" and float(every.value).is_integer():
            return int(every.value), None
        return None, None

    def attach(self, state: State, unit: Any) -> None:
        """Create ``state.duration_tracker`` (when a duration is in use) and load the counts a
        checkpoint restored; stop at once when the restored counts already meet the budget."""
        restored = pop_duration_state(unit)
        if self.max_duration is None and self.evaluate_every is None and not self.required:
            return
        tracker = DurationTracker(unit.train_progress)
        for d in self.required:
            tracker.require(d)
        tracker.max_duration = self.max_duration
        every = self.evaluate_every
        if every is not None and not (
            every.unit == "ep" or (every.unit == "ba" and float(every.value).is_integer())
        ):
            tracker.evaluate_every = every
        if restored is not None:
            tracker.load_state_dict(restored)
        state._duration_tracker = tracker
        limit = self.max_duration
        if limit is not None and limit.unit in COUNTED_UNITS and tracker.reached(limit):
            state.stop()


def check_fit_eval_arguments(
    evaluate_every: Any, every_n_steps: Any, every_n_epochs: Any
) -> tuple[Any, Any]:
    """With ``evaluate_every``, the integer intervals must be left alone; returns them with
    the *default* ``evaluate_every_n_epochs`` turned off.

    Args:
        evaluate_every: ``fit``'s ``evaluate_every``.
        every_n_steps: ``fit``'s ``evaluate_every_n_steps``.
        every_n_epochs: ``fit``'s ``evaluate_every_n_epochs`` (its default is
            ``DEFAULT_EVERY_N_EPOCHS``, told apart from a user's 1 by identity).

    Raises:
        ValueError: ``evaluate_every`` together with ``evaluate_every_n_steps`` or an explicit
            ``evaluate_every_n_epochs``.

    Example:
        >>> check_fit_eval_arguments("500ba", None, DEFAULT_EVERY_N_EPOCHS)
        (None, None)
        >>> check_fit_eval_arguments(None, 3, DEFAULT_EVERY_N_EPOCHS)
        (3, 1)
    """
    if evaluate_every is None:
        return every_n_steps, every_n_epochs
    if every_n_steps is not None:
        raise ValueError(
            f"evaluate_every_n_steps={every_n_steps!r} is invalid together with "
            f"evaluate_every={evaluate_every!r}: expected one eval schedule. Pass only "
            "evaluate_every (e.g. '500ba')."
        )
    if every_n_epochs is not DEFAULT_EVERY_N_EPOCHS and every_n_epochs is not None:
        raise ValueError(
            f"evaluate_every_n_epochs={every_n_epochs!r} is invalid together with "
            f"evaluate_every={evaluate_every!r}: expected one eval schedule. Pass only "
            "evaluate_every (e.g. '1ep')."
        )
    return None, None


def _checked_count(tracker: DurationTracker, n: Any, unit: Any, method: str, what: str) -> int:
    """The slow path of a count that is not a positive int: accept other ints and a later 0;
    raise for None, a tensor or a first-step 0 (a budget that would never be reached)."""
    name = f"{type(unit).__name__}.{method}(batch)"
    total = tracker.samples if what == "samples" else tracker.tokens
    if n is None or (n == 0 and total == 0 and not isinstance(n, bool)):
        raise ValueError(
            f"{name} returned {n!r}: cannot count {what} in this batch, so a duration in "
            f"{what} would never be reached. Override {method}(batch) to return the number "
            f"of {what} as a Python int (e.g. from a collate field computed on CPU), or use "
            "another unit."
        )
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(
            f"{name} returned {n!r}: expected a non-negative Python int (a tensor would force "
            f"a host-device sync every step). Override {method}(batch) to read shapes or a "
            "CPU-side field."
        )
    return int(n)


def tracked_step(  # noqa: C901 - the per-step counting is kept in one frame on purpose
    state: State, unit: Any, step: Callable[[State, Any], Any]
) -> Callable[[State, Any], Any]:
    """``step`` followed by counting samples, tokens and wall time into the tracker.

    Counts from the default (shape-only) counters are multiplied by the world size; a
    user's override is summed across ranks with one all-reduce per step, together with rank
    0's wall time, so every rank holds the same numbers and takes the same decisions.
    """
    t = state.duration_tracker
    if t is None:  # pragma: no cover - internal invariant
        raise RuntimeError("tracked_step needs state.duration_tracker")
    world = get_world_size()
    cls = type(unit)
    shape_sp = cls.count_samples is TrainUnit.count_samples
    shape_tok = cls.count_tokens is TrainUnit.count_tokens
    count_samples = unit.count_samples if t.counts_samples else None
    count_tokens = unit.count_tokens if t.counts_tokens else None
    measures_time = t.measures_time
    agree = world > 1 and (
        measures_time
        or (count_samples is not None and not shape_sp)
        or (count_tokens is not None and not shape_tok)
    )
    scale_sp = world if shape_sp and not agree else 1
    scale_tok = world if shape_tok and not agree else 1
    reads_clock = get_global_rank() == 0 or world == 1
    if agree:
        t.setup_agreement()
    limit = t.max_duration if t.max_duration and t.max_duration.unit in COUNTED_UNITS else None
    lim_unit, lim = (limit.unit, limit.value) if limit is not None else ("", 0)

    def step_and_count(state: State, batch: Any) -> Any:
        out = step(state, batch)
        ds = dt = 0
        sec = 0.0
        if count_samples is not None:
            ds = count_samples(batch)
            if not ds or ds.__class__ is not int:
                ds = _checked_count(t, ds, unit, "count_samples", "samples")
            ds *= scale_sp
        if count_tokens is not None:
            dt = count_tokens(batch)
            if not dt or dt.__class__ is not int:
                dt = _checked_count(t, dt, unit, "count_tokens", "tokens")
            dt *= scale_tok
        if measures_time and reads_clock:
            sec = t._seconds_at_start + t.clock() - t._clock_at_start
        if agree:
            ds, dt, sec = t.agree(ds, dt, sec)
        t.prev_samples, t.prev_tokens, t.prev_seconds = t.samples, t.tokens, t.seconds
        t.samples += ds
        t.tokens += dt
        if measures_time:
            t.seconds = sec
        if lim_unit == "tok":
            t.limit_reached = t.tokens >= lim
        elif lim_unit == "sp":
            t.limit_reached = t.samples >= lim
        elif lim_unit == "sec":
            t.limit_reached = t.seconds >= lim
        return out

    return step_and_count


def duration_after_step(
    state: State,
    unit: Any,
    int_trigger: Callable[[], bool] | None,
    run_eval: Callable[[], None],
) -> Callable[[], bool] | None:
    """The function run after each train step's hooks: the integer eval trigger, then a
    counted ``evaluate_every``, then the budget (``state.stop()`` semantics: the epoch still
    closes). ``int_trigger`` itself when no counted duration is in use."""
    t = state.duration_tracker
    if t is None:
        return int_trigger
    every = t.evaluate_every
    limit = t.max_duration if t.max_duration and t.max_duration.unit in COUNTED_UNITS else None
    if every is None and limit is None:
        return int_trigger

    def after_step() -> bool:
        ran = int_trigger() if int_trigger is not None else False
        if every is not None and t.fires(every):
            run_eval()
            ran = True
        if t.limit_reached:
            state.stop()
        return ran

    return after_step


__all__ = [
    "COUNTED_UNITS",
    "DEFAULT_EVERY_N_EPOCHS",
    "DurationPlan",
    "check_fit_eval_arguments",
    "duration_after_step",
    "tracked_step",
]
