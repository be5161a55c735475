"""``evaluate``: run an ``EvalUnit`` over a dataloader once, under ``torch.no_grad``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from torchkit.callbacks.callback import Callback
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.loop.common import check_dataloader, check_unit, handle_exception
from torchkit.loop.evaluators import EvalSchedule, Evaluators
from torchkit.loop.single_epoch import EpochHooks, run_single_epoch
from torchkit.loop.state import ActivePhase, EntryPoint, PhaseState, State, check_limit
from torchkit.loop.steps import StepFns
from torchkit.units.unit import EvalUnit, step_requires_iterator
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)


def evaluate(
    eval_unit: EvalUnit[Any],
    eval_dataloader: Iterable[Any] | Evaluators,
    *,
    max_steps_per_epoch: int | None = None,
    callbacks: list[Callback] | None = None,
    timer: Timer | None = None,
) -> None:
    """Run ``eval_unit.eval_step`` over ``eval_dataloader`` once.

    Pseudocode::

        set tracked modules to eval(); on_eval_start
        on_eval_epoch_start                       # unless resuming mid-epoch
        while not stopped and steps < max_steps_per_epoch:
            on_eval_get_next_batch_start; batch = get_next_eval_batch  # StopIteration ends
            on_eval_get_next_batch_end; on_eval_step_start; eval_step
            eval_progress.increment_step(); on_eval_step_end
        eval_progress.increment_epoch(); on_eval_epoch_end; on_eval_end
        restore module modes

    Args:
        eval_unit: an ``EvalUnit``.
        eval_dataloader: an iterable of batches, or ``Evaluators`` to evaluate each named set
            once, in order (their ``every`` does not apply here).
        max_steps_per_epoch: stop the epoch after this many steps.
        callbacks: callbacks, run in list order after the unit's hook.
        timer: optional ``Timer`` recording loop actions.

    Raises:
        TypeError: ``eval_unit`` is not an ``EvalUnit`` or the dataloader is not iterable.
        ValueError: a negative limit or an empty dataloader.
            A dataloader with ``len() == 0`` is rejected up front, before any hook runs; an
            unsized iterable that yields no batch in an epoch raises when that epoch finds it
            empty (through the exception path). Resuming an epoch whose data is already
            exhausted (``num_steps_completed_in_epoch > 0``) is not an error: the epoch closes.

    Example:
        >>> from torchkit.testing import DummyEvalUnit, generate_random_dataloader
        >>> unit = DummyEvalUnit(input_dim=2)
        >>> evaluate(unit, generate_random_dataloader(8, 2, 4))
        >>> unit.eval_progress.num_steps_completed
        2
    """
    check_unit("eval_unit", eval_unit, EvalUnit, "evaluate")
    evaluators = eval_dataloader if isinstance(eval_dataloader, Evaluators) else None
    if evaluators is None:
        check_dataloader("eval_dataloader", eval_dataloader)
    max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
    cbs = CallbackHandler(callbacks)
    state = State(
        entry_point=EntryPoint.EVALUATE,
        timer=timer,
        eval_state=PhaseState(dataloader=eval_dataloader, max_steps_per_epoch=max_steps_per_epoch),
    )
    logger.info("Started evaluate with max_steps_per_epoch=%s", max_steps_per_epoch)
    try:
        with torch.no_grad():
            if evaluators is None:
                evaluate_impl(state, eval_unit, cbs)
            else:
                _evaluate_sets(state, eval_unit, cbs, evaluators)
    except BaseException as exc:
        handle_exception(state, eval_unit, cbs, exc)
        raise
    logger.info("Finished evaluate")


def evaluate_impl(state: State, unit: EvalUnit[Any], cbs: CallbackHandler) -> None:
    """One eval epoch with its start/end hooks; used by ``evaluate`` and by ``fit``."""
    eval_state = state.eval_state
    if eval_state is None:  # pragma: no cover - internal invariant
        raise RuntimeError("evaluate_impl needs state.eval_state")
    fns = StepFns(unit.get_next_eval_batch, unit.eval_step, step_requires_iterator(unit.eval_step))
    hooks = EpochHooks.of(unit, cbs, "eval")
    run_single_epoch(
        state, unit, eval_state, unit.eval_progress, fns, hooks,
        phase=ActivePhase.EVALUATE, timer_prefix="evaluate", dataloader_name="eval_dataloader",
    )  # fmt: skip


def _evaluate_sets(
    state: State, unit: EvalUnit[Any], cbs: CallbackHandler, evaluators: Evaluators
) -> None:
    """``evaluate`` over ``Evaluators``: each set once, in insertion order."""
    if state.eval_state is None:  # pragma: no cover - internal invariant
        raise RuntimeError("_evaluate_sets needs state.eval_state")
    schedule = state._evaluators = EvalSchedule(evaluators, state.eval_state)
    schedule.run(state, unit, list(evaluators), lambda: evaluate_impl(state, unit, cbs))
