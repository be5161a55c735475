"""``predict``: run a ``PredictUnit`` over a dataloader once, under ``torch.inference_mode``."""

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
from torchkit.units.unit import PredictUnit, step_requires_iterator
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)


def predict(
    predict_unit: PredictUnit[Any],
    predict_dataloader: Iterable[Any],
    *,
    max_steps_per_epoch: int | None = None,
    callbacks: list[Callback] | None = None,
    timer: Timer | None = None,
) -> None:
    """Run ``predict_unit.predict_step`` over ``predict_dataloader`` once.

    Runs under ``torch.inference_mode()``, or ``torch.no_grad()`` when a callback sets
    ``requires_no_grad = True`` (checkpointers do, since inference tensors cannot be saved and
    later updated in place). The hook order mirrors ``evaluate`` with ``predict`` names.

    Args:
        predict_unit: a ``PredictUnit``.
        predict_dataloader: an iterable of batches.
        max_steps_per_epoch: stop after this many steps.
        callbacks: callbacks, run in list order after the unit's hook.
        timer: optional ``Timer`` recording loop actions.

    Raises:
        TypeError: ``predict_unit`` is not a ``PredictUnit`` or the dataloader is not iterable.
        ValueError: a negative limit or an empty dataloader.
            A dataloader with ``len() == 0`` is rejected up front, before any hook runs; an
            unsized iterable that yields no batch in an epoch raises when that epoch finds it
            empty (through the exception path). Resuming an epoch whose data is already
            exhausted (``num_steps_completed_in_epoch > 0``) is not an error: the epoch closes.

    Example:
        >>> from torchkit.testing import DummyPredictUnit, generate_random_dataloader
        >>> unit = DummyPredictUnit(input_dim=2)
        >>> predict(unit, generate_random_dataloader(8, 2, 4))
        >>> unit.predict_progress.num_steps_completed
        2
    """
    check_unit("predict_unit", predict_unit, PredictUnit, "predict")
    check_dataloader("predict_dataloader", predict_dataloader)
    max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
    cbs = CallbackHandler(callbacks)
    state = State(
        entry_point=EntryPoint.PREDICT,
        timer=timer,
        predict_state=PhaseState(
            dataloader=predict_dataloader, max_steps_per_epoch=max_steps_per_epoch
        ),
    )
    needs_no_grad = any(getattr(cb, "requires_no_grad", False) is True for cb in cbs.callbacks)
    grad_ctx = torch.no_grad() if needs_no_grad else torch.inference_mode()
    logger.info("Started predict with max_steps_per_epoch=%s", max_steps_per_epoch)
    try:
        with grad_ctx:
            _predict_impl(state, predict_unit, cbs)
    except BaseException as exc:
        handle_exception(state, predict_unit, cbs, exc)
        raise
    logger.info("Finished predict")


def _predict_impl(state: State, unit: PredictUnit[Any], cbs: CallbackHandler) -> None:
    predict_state = state.predict_state
    if predict_state is None:  # pragma: no cover - internal invariant
        raise RuntimeError("_predict_impl needs state.predict_state")
    fns = StepFns(
        unit.get_next_predict_batch, unit.predict_step, step_requires_iterator(unit.predict_step)
    )
    hooks = EpochHooks.of(unit, cbs, "predict")
    run_single_epoch(
        state, unit, predict_state, unit.predict_progress, fns, hooks,
        phase=ActivePhase.PREDICT, timer_prefix="predict", dataloader_name="predict_dataloader",
    )  # fmt: skip
