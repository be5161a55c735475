"""The step loop shared by all phases: fetch, step, count, hooks, timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from torchkit.loop.common import timed
from torchkit.loop.progress import Progress
from torchkit.loop.state import PhaseState, State


class StepHooks(NamedTuple):
    """The callback lists a phase's step loop calls (from ``CallbackHandler``)."""

    get_next_batch_start: list[Callable[..., None]]
    get_next_batch_end: list[Callable[..., None]]
    step_start: list[Callable[..., None]]
    step_end: list[Callable[..., None]]


class StepFns(NamedTuple):
    """The unit's fetch and step functions for a phase, resolved once per epoch."""

    fetch: Callable[[State, Iterator[Any]], Any]
    step: Callable[[State, Any], Any]
    pass_iterator: bool


def run_steps(  # noqa: C901 - the hot loop is kept in one frame on purpose
    state: State,
    unit: Any,
    phase_state: PhaseState,
    progress: Progress,
    data_iter: Iterator[Any],
    fns: StepFns,
    hooks: StepHooks,
    *,
    timer_prefix: str,
    phase_name: str,
    max_steps: int | None = None,
    after_step: Callable[[], bool] | None = None,
) -> bool:
    """Run steps until a limit, ``state.stop()`` or the end of the data.

    Returns:
        True when the data ran out (``StopIteration``), False when a limit or a stop ended it.
    """
    # This is the hot path. Everything is bound to locals up front so a step costs the unit's
    # fetch and step, one ``increment_step`` and two ``perf_counter`` reads; hooks nobody
    # overrides are empty lists. Timings are host wall-clock only: no device synchronisation.
    perf = time.perf_counter
    durations = phase_state.iteration_timer.recorded_durations
    wait_times = durations["data_wait_time"]
    step_times = durations[f"{phase_name}_iteration_time"]
    user_timer = state.timer
    next_name = f"{timer_prefix}.next(data_iter)"
    step_name = f"{timer_prefix}.{phase_name}_step"
    fetch, step, pass_iterator = fns
    batch_start, batch_end, step_start, step_end = hooks
    max_per_epoch = phase_state.max_steps_per_epoch
    t0 = perf()
    while not state._should_stop:
        if max_steps is not None and progress.num_steps_completed >= max_steps:
            return False
        if max_per_epoch is not None and progress.num_steps_completed_in_epoch >= max_per_epoch:
            return False
        for fn in batch_start:
            fn(state, unit)
        if pass_iterator:
            batch: Any = data_iter
        else:
            try:
                if user_timer is None:
                    batch = fetch(state, data_iter)
                else:
                    batch = timed(user_timer, next_name, fetch, state, data_iter)
            except StopIteration:
                return True
        for fn in batch_end:
            fn(state, unit)
        t1 = perf()
        wait_times.append(t1 - t0)
        for fn in step_start:
            fn(state, unit)
        try:
            if user_timer is None:
                output = step(state, batch)
            else:
                output = timed(user_timer, step_name, step, state, batch)
        except StopIteration:
            if pass_iterator:  # TNT compatibility: the step consumed the iterator to its end
                return True
            raise
        phase_state._step_output = output
        progress.increment_step()
        for fn in step_end:
            fn(state, unit)
        phase_state._step_output = None  # don't keep the step's tensors alive
        t0 = perf()
        step_times.append(t0 - t1)
        if after_step is not None and after_step():
            t0 = perf()
    return False
