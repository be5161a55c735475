"""Train-start checks for callback options that could never take effect in this run."""

from __future__ import annotations

import logging
from typing import Any

from torchkit.loop.state import EntryPoint, State

logger = logging.getLogger(__name__)


def evaluates(state: State) -> bool:
    """Whether this run can run an evaluation: ``evaluate()``, or ``fit`` with an interval."""
    if state.entry_point is EntryPoint.EVALUATE:
        return True
    es = state.eval_state
    if state.entry_point is not EntryPoint.FIT or es is None:
        return False
    return bool(es.evaluate_every_n_steps or es.evaluate_every_n_epochs)


def _entry(state: State) -> str:
    return {EntryPoint.FIT: "fit", EntryPoint.TRAIN: "train"}.get(state.entry_point, "this")


def require_eval(state: State, owner: str, arg: str, fix: str) -> None:
    """Raise ``ValueError`` when ``owner``'s ``arg`` needs evaluations this run never runs.

    Raises:
        ValueError: the run never evaluates.
    """
    if not evaluates(state):
        raise ValueError(
            f"{owner}: {arg} is invalid for this {_entry(state)}() run: it never evaluates, so "
            f"the option would never take effect. {fix}."
        )


def warn_if_never_reached(
    owner: str, arg: str, every: int | None, limit_name: str, limit: int | None
) -> None:
    """Warn once when an every-N interval is larger than the run's own limit."""
    if every is not None and limit is not None and every > limit:
        logger.warning(
            "%s: %s=%d is larger than %s=%d, so it never triggers in this run. Lower it or "
            "raise %s.",
            owner, arg, every, limit_name, limit, limit_name,
        )  # fmt: skip


def check_reachable(es: Any, state: State) -> None:
    """``EarlyStopping``'s train-start check: an eval-phase check needs evaluations, and an
    ``interval_freq`` beyond the run's limits never checks (warned).

    Raises:
        ValueError: ``phase="eval"`` in a run that never evaluates.
    """
    owner = "EarlyStopping"
    if es.phase == "eval":
        require_eval(
            state, owner, "phase='eval'",
            "Pass phase='train' and set the monitored value in on_train_epoch_end (or monitor "
            "a train/ metric), or run fit() with an eval dataloader and "
            "evaluate_every_n_epochs/evaluate_every_n_steps",
        )  # fmt: skip
        return
    ts = state.train_state
    if ts is None:
        return
    if es.interval == "epoch":
        warn_if_never_reached(owner, "interval_freq", es.interval_freq, "max_epochs", ts.max_epochs)
    else:
        warn_if_never_reached(owner, "interval_freq", es.interval_freq, "max_steps", ts.max_steps)
