"""``test``: run a ``TestUnit`` over a held-out dataloader once, under ``torch.no_grad``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from torchkit.callbacks.callback import Callback
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.loop.common import check_dataloader, check_unit, handle_exception
from torchkit.loop.single_epoch import EpochHooks, run_single_epoch
from torchkit.loop.state import ActivePhase, EntryPoint, PhaseState, State, check_limit
from torchkit.loop.steps import StepFns
from torchkit.units.unit import TestUnit, step_requires_iterator
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)


def test(
    test_unit: TestUnit[Any],
    test_dataloader: Iterable[Any],
    *,
    max_steps_per_epoch: int | None = None,
    callbacks: list[Callback] | None = None,
    timer: Timer | None = None,
) -> None:
    """Run ``test_unit.test_step`` over ``test_dataloader`` once (TNT's ``test``).

    Pseudocode::

        set tracked modules to eval(); on_test_start
        on_test_epoch_start                       # unless resuming mid-epoch
        on_test_dataloader_iter_creation_start; iter(dataloader)
        on_test_dataloader_iter_creation_end
        while not stopped and steps < max_steps_per_epoch:
            on_test_get_next_batch_start; batch = get_next_test_batch  # StopIteration ends
            on_test_get_next_batch_end; on_test_step_start; test_step
            test_progress.increment_step(); on_test_step_end
        test_progress.increment_epoch(); on_test_epoch_end; on_test_end
        restore module modes

    Args:
        test_unit: a ``TestUnit``.
        test_dataloader: an iterable of batches.
        max_steps_per_epoch: stop after this many steps.
        callbacks: callbacks, run in list order after the unit's hook.
        timer: optional ``Timer`` recording loop actions.

    Raises:
        TypeError: ``test_unit`` is not a ``TestUnit`` or the dataloader is not iterable.
        ValueError: a negative limit or an empty dataloader (a sized one before any hook runs;
            an unsized one when the epoch finds it empty, through the exception path).

    Example:
        >>> import torch
        >>> from torchkit import TestUnit
        >>> class Accuracy(TestUnit[tuple[torch.Tensor, torch.Tensor]]):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.correct = 0
        ...     def test_step(self, state, data):
        ...         x, y = data
        ...         self.correct += int((x.argmax(1) == y).sum())
        >>> unit = Accuracy()
        >>> test(unit, [(torch.eye(3), torch.arange(3))] * 2)
        >>> unit.correct, unit.test_progress.num_steps_completed
        (6, 2)
    """
    check_unit("test_unit", test_unit, TestUnit, "test")
    check_dataloader("test_dataloader", test_dataloader)
    max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
    cbs = CallbackHandler(callbacks)
    state = State(
        entry_point=EntryPoint.TEST,
        timer=timer,
        test_state=PhaseState(dataloader=test_dataloader, max_steps_per_epoch=max_steps_per_epoch),
    )
    logger.info("Started test with max_steps_per_epoch=%s", max_steps_per_epoch)
    _run_test(state, test_unit, cbs)
    logger.info("Finished test")


# ``test`` is an entry point, not a pytest test: a test module that imports it by name must
# not have pytest collect and call it.
test.__test__ = False  # type: ignore[attr-defined]


def test_impl(state: State, unit: TestUnit[Any], cbs: CallbackHandler) -> None:
    """One test epoch with its start/end hooks; used by ``test`` and by ``fit``."""
    test_state = state.test_state
    if test_state is None:  # pragma: no cover - internal invariant
        raise RuntimeError("test_impl needs state.test_state")
    fns = StepFns(unit.get_next_test_batch, unit.test_step, step_requires_iterator(unit.test_step))
    hooks = EpochHooks.of(unit, cbs, "test")
    run_single_epoch(
        state, unit, test_state, unit.test_progress, fns, hooks,
        phase=ActivePhase.TEST, timer_prefix="test", dataloader_name="test_dataloader",
    )  # fmt: skip


test_impl.__test__ = False  # type: ignore[attr-defined]


def _run_test(state: State, unit: Any, cbs: CallbackHandler) -> None:
    """``test_impl`` under ``no_grad``, through the exception path."""
    try:
        with torch.no_grad():
            test_impl(state, unit, cbs)
    except BaseException as exc:
        handle_exception(state, unit, cbs, exc)
        raise


def run_test_in_fit(state: State, unit: Any, cbs: CallbackHandler) -> None:
    """``fit``'s test phase: once, after training ended, under ``no_grad``.

    A preempted run skips it (the resumed run tests at its end). A ``state.stop()`` during
    training (early stopping, a time limit) ended *training*; the test phase still runs in
    full, and ``state.should_stop`` reads True again afterwards. TNT runs it with 0 steps then,
    which leaves an early-stopped run without test numbers.
    """
    if state.test_state is None or state.preempted:
        return
    stopped = state._should_stop
    state._should_stop = False
    logger.info("Started the test phase of fit")
    try:
        _run_test(state, unit, cbs)
    finally:
        state._should_stop = state._should_stop or stopped
    logger.info("Finished the test phase of fit")
