"""``fit``: train with periodic evaluation (every N global steps and/or every N epochs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from torchkit.callbacks.callback import Callback
from torchkit.loop.callback_handler import CallbackHandler
from torchkit.loop.common import check_dataloader, check_unit, missing_unit_attrs
from torchkit.loop.duration_loop import (
    DEFAULT_EVERY_N_EPOCHS,
    DurationPlan,
    check_fit_eval_arguments,
)
from torchkit.loop.evaluators import EvalSchedule, Evaluators
from torchkit.loop.state import EntryPoint, PhaseState, State, check_every_n, check_limit
from torchkit.loop.test import run_test_in_fit
from torchkit.loop.train import run_train
from torchkit.units.unit import EvalUnit, TestUnit, TrainUnit
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)


def fit(
    unit: Any,
    train_dataloader: Iterable[Any],
    eval_dataloader: Iterable[Any] | Evaluators,
    *,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    max_train_steps_per_epoch: int | None = None,
    max_eval_steps_per_epoch: int | None = None,
    evaluate_every_n_steps: int | None = None,
    evaluate_every_n_epochs: int | None = DEFAULT_EVERY_N_EPOCHS,
    callbacks: list[Callback] | None = None,
    timer: Timer | None = None,
    test_dataloader: Iterable[Any] | None = None,
    max_test_steps: int | None = None,
    max_duration: Any = None,
    evaluate_every: Any = None,
) -> State:
    """Train ``unit`` and evaluate it periodically.

    The train loop is ``train``'s. After a train step whose *global* step count is a multiple
    of ``evaluate_every_n_steps``, and after the epoch-end hooks of every
    ``evaluate_every_n_epochs``-th epoch, a full ``evaluate`` epoch runs under ``no_grad``
    (reusing ``unit.eval_progress``), then training resumes in train mode.

    Args:
        unit: a unit that is both a ``TrainUnit`` and an ``EvalUnit``.
        train_dataloader: train batches.
        eval_dataloader: eval batches, or ``Evaluators(val=..., test=EvalSet(...))`` for several
            named eval sets, run in insertion order at each due point (a set without its own
            ``every`` follows the two intervals below).
        max_epochs: stop after this many train epochs.
        max_steps: stop after this many train steps.
        max_train_steps_per_epoch: end each train epoch after this many steps.
        max_eval_steps_per_epoch: end each evaluation after this many steps.
        evaluate_every_n_steps: evaluate every N global train steps (None: off).
        evaluate_every_n_epochs: evaluate every N train epochs (None: off).
        callbacks: callbacks, run in list order after the unit's hook.
        timer: optional ``Timer`` recording loop actions.
        test_dataloader: held-out batches for one test epoch after training ends (TNT's test
            phase): ``unit`` must then also be a ``TestUnit``. It runs with the final weights,
            under ``no_grad``, with the ``on_test_*`` hooks; after ``state.stop()`` (early
            stopping) it still runs in full; a preempted run skips it.
        max_test_steps: end the test epoch after this many steps.
        max_duration: a budget as a ``Duration`` or a string (``"2ep"``, ``"1e9tok"``,
            ``"36h"``), as in ``train``; whichever limit comes first stops the run.
        evaluate_every: an eval interval as a ``Duration`` or a string (``"1ep"``,
            ``"500ba"``, ``"1e8tok"``, ``"30m"``, ``"0.25dur"``). It replaces the default
            ``evaluate_every_n_epochs=1``; an interval fires after the train step (or epoch,
            for ``ep``) where floor(count / interval) changes.

    Returns:
        The final ``State``.

    Raises:
        TypeError: ``unit`` is not both a ``TrainUnit`` and an ``EvalUnit`` (and a
            ``TestUnit`` when ``test_dataloader`` is given), or a dataloader is not iterable.
        ValueError: a negative limit, a zero interval, a bad duration, ``evaluate_every``
            together with ``evaluate_every_n_steps`` or an explicit ``evaluate_every_n_epochs``,
            or an empty dataloader.
            A dataloader with ``len() == 0`` is rejected up front, before any hook runs; an
            unsized iterable that yields no batch in an epoch raises when that epoch finds it
            empty (through the exception path). Resuming an epoch whose data is already
            exhausted (``num_steps_completed_in_epoch > 0``) is not an error: the epoch closes.

    Example:
        >>> from torchkit.testing import DummyFitUnit, generate_random_dataloader
        >>> unit = DummyFitUnit(input_dim=2)
        >>> dl = generate_random_dataloader(8, 2, 4)
        >>> _ = fit(unit, dl, dl, max_epochs=2)
        >>> unit.eval_progress.num_epochs_completed
        2
    """
    if isinstance(unit, type):  # a class instead of an instance: check_unit says so
        check_unit("unit", unit, TrainUnit, "fit")
    missing = missing_unit_attrs(unit, TrainUnit) + missing_unit_attrs(unit, EvalUnit)
    if missing:
        raise TypeError(
            f"unit={type(unit).__name__} instance is invalid for fit(): expected a unit that "
            "subclasses both torchkit.TrainUnit and torchkit.EvalUnit (or provides their "
            f"methods; missing: {', '.join(missing)}), e.g. "
            "class MyUnit(TrainUnit[Batch], EvalUnit[Batch]). Use train() for a train-only unit."
        )
    check_dataloader("train_dataloader", train_dataloader)
    if test_dataloader is not None:
        _check_test_unit(unit)
        check_dataloader("test_dataloader", test_dataloader)
    max_test_steps = check_limit("max_test_steps", max_test_steps)
    evaluators = eval_dataloader if isinstance(eval_dataloader, Evaluators) else None
    if evaluators is None:
        check_dataloader("eval_dataloader", eval_dataloader)
        _warn_dict_of_loaders(eval_dataloader)
    max_epochs = check_limit("max_epochs", max_epochs)
    max_steps = check_limit("max_steps", max_steps)
    max_train_steps_per_epoch = check_limit("max_train_steps_per_epoch", max_train_steps_per_epoch)
    max_eval_steps_per_epoch = check_limit("max_eval_steps_per_epoch", max_eval_steps_per_epoch)
    evaluate_every_n_steps, evaluate_every_n_epochs = check_fit_eval_arguments(
        evaluate_every, evaluate_every_n_steps, evaluate_every_n_epochs
    )
    cbs = CallbackHandler(callbacks)
    plan = DurationPlan.build(
        train_dataloader,
        max_duration=max_duration,
        max_steps_per_epoch=max_train_steps_per_epoch,
        evaluate_every=evaluate_every,
        callbacks=cbs.callbacks,
    )
    max_epochs, max_steps = plan.limits(max_epochs, max_steps)
    evaluate_every_n_steps, evaluate_every_n_epochs = plan.eval_intervals(
        evaluate_every_n_steps, evaluate_every_n_epochs
    )
    evaluate_every_n_steps = check_every_n("evaluate_every_n_steps", evaluate_every_n_steps)
    evaluate_every_n_epochs = check_every_n("evaluate_every_n_epochs", evaluate_every_n_epochs)
    rules = None
    if evaluators is not None:  # the sets' own intervals: dur resolved, counted ones measured
        rules = {
            name: None if es.every is None else plan.add_interval(es.every, name=f"{name}.every")
            for name, es in evaluators.items()
        }
    state = State(
        entry_point=EntryPoint.FIT,
        timer=timer,
        train_state=PhaseState(
            dataloader=train_dataloader,
            max_epochs=max_epochs,
            max_steps=max_steps,
            max_steps_per_epoch=max_train_steps_per_epoch,
        ),
        eval_state=PhaseState(
            dataloader=eval_dataloader,
            max_steps_per_epoch=max_eval_steps_per_epoch,
            evaluate_every_n_steps=evaluate_every_n_steps,
            evaluate_every_n_epochs=evaluate_every_n_epochs,
        ),
        test_state=None
        if test_dataloader is None
        else PhaseState(dataloader=test_dataloader, max_steps_per_epoch=max_test_steps),
    )
    plan.attach(state, unit)
    if evaluators is not None and state.eval_state is not None:
        state._evaluators = EvalSchedule(evaluators, state.eval_state, rules)
    run_train(state, unit, cbs)
    run_test_in_fit(state, unit, cbs)
    return state


def _check_test_unit(unit: Any) -> None:
    missing = missing_unit_attrs(unit, TestUnit)
    if missing:
        raise TypeError(
            f"test_dataloader was given but unit={type(unit).__name__} does not implement the "
            f"TestUnit interface (missing: {', '.join(missing)}). Expected unit to implement "
            "TestUnit interface when test_dataloader is provided: add TestUnit[Batch] to its "
            "bases and write test_step, or drop test_dataloader."
        )


def _warn_dict_of_loaders(eval_dataloader: Any) -> None:
    """A dict of loaders is iterated as one loader (its keys), as TNT does: say so."""
    if isinstance(eval_dataloader, dict) and eval_dataloader:
        values = list(eval_dataloader.values())
        if all(isinstance(v, Iterable) and not isinstance(v, (str, bytes)) for v in values):
            logger.warning(
                "eval_dataloader is a dict of loaders: it is iterated as one loader (over its "
                "keys). To evaluate several named sets, pass torchkit.Evaluators(**loaders)."
            )
