"""``train``: run a ``TrainUnit`` for epochs/steps under ``torch.enable_grad``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch

from torchkit.callbacks.callback import Callback
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.loop.common import (
    call_hook,
    check_dataloader,
    check_unit,
    create_iterator,
    empty_epoch_error,
    handle_exception,
    restore_training_mode,
    set_sampler_epoch,
    set_training_mode,
)
from torchkit.loop.duration_loop import DurationPlan, duration_after_step, tracked_step
from torchkit.loop.evaluate import evaluate_impl
from torchkit.loop.progress import Progress
from torchkit.loop.state import ActivePhase, EntryPoint, PhaseState, State, check_limit
from torchkit.loop.steps import StepFns, StepHooks, run_steps
from torchkit.units.unit import TrainUnit, step_requires_iterator, train_fetch_fn
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)


def train(
    train_unit: TrainUnit[Any],
    train_dataloader: Iterable[Any],
    *,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    max_steps_per_epoch: int | None = None,
    callbacks: list[Callback] | None = None,
    timer: Timer | None = None,
    max_duration: Any = None,
) -> State:
    """Train ``train_unit`` on ``train_dataloader``.

    Pseudocode::

        set tracked modules to train(); on_train_start
        while not stopped and epochs < max_epochs and steps < max_steps:
            on_train_epoch_start                  # unless resuming mid-epoch
            sampler.set_epoch(num_epochs_completed)
            while not stopped and limits not reached:
                on_train_get_next_batch_start; batch = get_next_train_batch  # StopIteration ends
                on_train_get_next_batch_end; on_train_step_start; train_step
                train_progress.increment_step(); on_train_step_end
            train_progress.increment_epoch(); on_train_epoch_end
        on_train_end; restore module modes

    With neither ``max_epochs``, ``max_steps`` nor ``max_duration`` it warns and trains until
    stopped.

    Args:
        train_unit: a ``TrainUnit``.
        train_dataloader: an iterable of batches.
        max_epochs: stop after this many epochs in total.
        max_steps: stop after this many steps in total.
        max_steps_per_epoch: end each epoch after this many steps.
        callbacks: callbacks, run in list order after the unit's hook.
        timer: optional ``Timer`` recording loop actions.
        max_duration: a budget as a ``Duration`` or a string such as ``"2ep"``, ``"1e9tok"``
            or ``"36h"`` (see the durations docs); whichever limit comes first stops the run.
            ``ep``/``ba`` budgets act as ``max_epochs``/``max_steps``; an ``sp``/``tok``/``sec``
            budget stops after the first step that meets it, like ``state.stop()``.

    Returns:
        The final ``State`` (``state.preempted`` tells whether a signal stopped the run).

    Raises:
        TypeError: ``train_unit`` is not a ``TrainUnit`` or the dataloader is not iterable.
        ValueError: a negative or non-integral limit, a bad ``max_duration``, or an empty
            dataloader. A ``tok``/``sp`` budget whose counter (``count_tokens`` /
            ``count_samples``) gives 0 or None at the first step raises there.
            A dataloader with ``len() == 0`` is rejected up front, before any hook runs; an
            unsized iterable that yields no batch in an epoch raises when that epoch finds it
            empty (through the exception path). Resuming an epoch whose data is already
            exhausted (``num_steps_completed_in_epoch > 0``) is not an error: the epoch closes.

    Example:
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> unit = DummyTrainUnit(input_dim=2)
        >>> _ = train(unit, generate_random_dataloader(8, 2, 4), max_epochs=3)
        >>> unit.train_progress.num_steps_completed
        6
    """
    check_unit("train_unit", train_unit, TrainUnit, "train")
    check_dataloader("train_dataloader", train_dataloader)
    max_epochs = check_limit("max_epochs", max_epochs)
    max_steps = check_limit("max_steps", max_steps)
    max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
    cbs = CallbackHandler(callbacks)
    plan = DurationPlan.build(
        train_dataloader,
        max_duration=max_duration,
        max_steps_per_epoch=max_steps_per_epoch,
        callbacks=cbs.callbacks,
    )
    max_epochs, max_steps = plan.limits(max_epochs, max_steps)
    state = State(
        entry_point=EntryPoint.TRAIN,
        timer=timer,
        train_state=PhaseState(
            dataloader=train_dataloader,
            max_epochs=max_epochs,
            max_steps=max_steps,
            max_steps_per_epoch=max_steps_per_epoch,
        ),
    )
    plan.attach(state, train_unit)
    run_train(state, train_unit, cbs)
    return state


def run_train(state: State, unit: TrainUnit[Any], cbs: CallbackHandler) -> None:
    """The shared body of ``train`` and ``fit``: grad mode, the exception path, logging."""
    ts = state.train_state
    tracker = state.duration_tracker
    unbounded = tracker is None or tracker.max_duration is None
    if ts is not None and ts.max_epochs is None and ts.max_steps is None and unbounded:
        logger.warning(
            "Neither max_epochs nor max_steps is set: training runs until state.stop() is "
            "called. Pass max_epochs or max_steps to bound it."
        )
    logger.info("Started %s", state.entry_point.name.lower())
    try:
        with torch.enable_grad():
            _train_impl(state, unit, cbs)
    except BaseException as exc:
        handle_exception(state, unit, cbs, exc)
        raise
    logger.info("Finished %s%s", state.entry_point.name.lower(), " (preempted)" * state.preempted)


def is_done(progress: Progress, max_epochs: int | None, max_steps: int | None) -> bool:
    """True when the step or epoch limit is reached."""
    return (max_steps is not None and progress.num_steps_completed >= max_steps) or (
        max_epochs is not None and progress.num_epochs_completed >= max_epochs
    )


def _train_impl(state: State, unit: TrainUnit[Any], cbs: CallbackHandler) -> None:
    ts = state.train_state
    if ts is None:  # pragma: no cover - internal invariant
        raise RuntimeError("_train_impl needs state.train_state")
    state._active_phase = ActivePhase.TRAIN
    prior_modes = set_training_mode(unit.tracked_modules(), True)
    try:
        call_hook(state, "train.on_train_start", unit.on_train_start)
        for fn in cbs.on_train_start:
            fn(state, unit)
        if state.duration_tracker is not None:
            state.duration_tracker.start()  # after the hooks, which may replace its clock
        if state._resume_pending_eval:  # resumed from a checkpoint taken with an eval due
            state._resume_pending_eval = False
            if state._evaluators is None:
                run_eval_in_fit(state, unit, cbs)
            else:
                _run_eval_sets(
                    state, unit, cbs, state._evaluators.due_on_resume(unit.train_progress)
                )
        while not (state.should_stop or is_done(unit.train_progress, ts.max_epochs, ts.max_steps)):
            _train_epoch(state, unit, cbs)
        call_hook(state, "train.on_train_end", unit.on_train_end)
        for fn in cbs.on_train_end:
            fn(state, unit)
    finally:
        restore_training_mode(prior_modes)


def _train_epoch(state: State, unit: TrainUnit[Any], cbs: CallbackHandler) -> None:
    ts = state.train_state
    if ts is None:  # pragma: no cover - internal invariant
        raise RuntimeError("_train_epoch needs state.train_state")
    progress = unit.train_progress
    state._active_phase = ActivePhase.TRAIN
    set_training_mode(unit.tracked_modules(), True)
    if progress.num_steps_completed_in_epoch == 0:
        call_hook(state, "train.on_train_epoch_start", unit.on_train_epoch_start)
        for fn in cbs.on_train_epoch_start:
            fn(state, unit)
    set_sampler_epoch(ts.dataloader, progress.num_epochs_completed)
    # Resuming mid-epoch: the restored RNG state is as of the last completed step, but
    # creating an iterator (e.g. torchdata's StatefulDataLoader) draws from the global torch
    # RNG; keep that draw from shifting the resumed run's random numbers.
    resuming = progress.num_steps_completed_in_epoch > 0
    rng_state = torch.get_rng_state() if resuming else None
    data_iter = create_iterator(
        state, unit, ts.dataloader, "train.iter(dataloader)",
        cbs.on_train_dataloader_iter_creation_start, cbs.on_train_dataloader_iter_creation_end,
    )  # fmt: skip
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    fns = StepFns(train_fetch_fn(unit), unit.train_step, step_requires_iterator(unit.train_step))
    tracker = state.duration_tracker
    if tracker is not None and tracker.needs_step_updates:
        fns = fns._replace(step=tracked_step(state, unit, fns.step))
    hooks = StepHooks(
        cbs.on_train_get_next_batch_start,
        cbs.on_train_get_next_batch_end,
        cbs.on_train_step_start,
        cbs.on_train_step_end,
    )
    exhausted = run_steps(
        state, unit, ts, progress, data_iter, fns, hooks,
        timer_prefix="train", phase_name="train", max_steps=ts.max_steps,
        after_step=duration_after_step(
            state, unit, _step_eval_trigger(state, unit, cbs),
            # with Evaluators the sets' trigger also follows a counted evaluate_every
            (lambda: None) if state._evaluators else lambda: run_eval_in_fit(state, unit, cbs),
        ),
    )  # fmt: skip
    if exhausted and progress.num_steps_completed_in_epoch == 0:
        raise empty_epoch_error("train_dataloader", "train", progress.num_epochs_completed + 1)
    if state.preempted:
        return  # the epoch stays open: the checkpoint holds the state as of the last step
    progress.increment_epoch()
    call_hook(state, "train.on_train_epoch_end", unit.on_train_epoch_end)
    for fn in cbs.on_train_epoch_end:
        fn(state, unit)
    every_n_epochs = state.eval_state.evaluate_every_n_epochs if state.eval_state else None
    if state._evaluators is not None:
        _run_eval_sets(
            state, unit, cbs, state._evaluators.due_after_epoch(progress.num_epochs_completed)
        )
    elif every_n_epochs and progress.num_epochs_completed % every_n_epochs == 0:
        run_eval_in_fit(state, unit, cbs)


def _step_eval_trigger(
    state: State, unit: TrainUnit[Any], cbs: CallbackHandler
) -> Callable[[], bool] | None:
    """In ``fit`` with ``evaluate_every_n_steps``, a function run after each train step that
    evaluates on every N-th *global* step and reports whether it did."""
    eval_state = state.eval_state
    if state._evaluators is not None:
        return _step_eval_sets_trigger(state, unit, cbs)
    if eval_state is None or not eval_state.evaluate_every_n_steps:
        return None
    progress = unit.train_progress

    def after_step() -> bool:
        n = eval_state.evaluate_every_n_steps
        if n and progress.num_steps_completed % n == 0:
            run_eval_in_fit(state, unit, cbs)
            return True
        return False

    return after_step


def _step_eval_sets_trigger(
    state: State, unit: TrainUnit[Any], cbs: CallbackHandler
) -> Callable[[], bool] | None:
    """``_step_eval_trigger`` for ``Evaluators``: runs the sets due at each global step."""
    schedule = state._evaluators
    if not schedule.has_step_rules(state.duration_tracker):
        return None
    progress = unit.train_progress

    def after_step() -> bool:
        due = schedule.due_after_step(progress.num_steps_completed, state.duration_tracker)
        return _run_eval_sets(state, unit, cbs, due)

    return after_step


def _run_eval_sets(state: State, unit: Any, cbs: CallbackHandler, names: list[str]) -> bool:
    """Evaluate the named sets in order (each one as ``run_eval_in_fit``); True if any ran."""
    if names:
        state._evaluators.run(state, unit, names, lambda: run_eval_in_fit(state, unit, cbs))
    return bool(names)


def run_eval_in_fit(state: State, unit: Any, cbs: CallbackHandler) -> None:
    """Evaluate inside ``fit`` under ``no_grad``, then return to the train phase.

    After ``state.stop()`` it still runs, with 0 steps (its start and epoch hooks run and
    ``eval_progress`` counts the epoch), as TNT does; only a preemption skips it, since the
    checkpoint must hold the state as of the last step.
    """
    if state.preempted or not hasattr(unit, "eval_step"):
        return
    with torch.no_grad():
        evaluate_impl(state, unit, cbs)
    state._active_phase = ActivePhase.TRAIN
