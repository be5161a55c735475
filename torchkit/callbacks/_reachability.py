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


def warn_every_n_steps(owner: str, arg: str, every: int | None, state: State) -> None:
    """Warn when a train-step interval exceeds the run's ``max_steps``."""
    ts = state.train_state
    if ts is not None:
        warn_if_never_reached(owner, arg, every, "max_steps", ts.max_steps)


def warn_checkpointer(
    state: State,
    *,
    every_n_steps: int | None,
    every_n_epochs: int | None,
    every_n_eval_epochs: int | None,
    best_metric: str | None,
) -> None:
    """The checkpointer's train-start warnings: intervals beyond the run's limits, eval-epoch
    saves or an ``eval/`` best metric in a run that never evaluates (the final save still
    happens, so these warn rather than raise)."""
    owner = "Checkpointer"
    ts = state.train_state
    if ts is not None:
        warn_if_never_reached(
            owner, "save_every_n_train_steps", every_n_steps, "max_steps", ts.max_steps
        )
        warn_if_never_reached(
            owner, "save_every_n_epochs", every_n_epochs, "max_epochs", ts.max_epochs
        )
    if evaluates(state):
        return
    if every_n_eval_epochs is not None:
        logger.warning(
            "%s: save_every_n_eval_epochs=%d never triggers: this %s() run never evaluates. "
            "Use save_every_n_epochs, or fit() with an eval interval.",
            owner, every_n_eval_epochs, _entry(state),
        )  # fmt: skip
    if best_metric is not None and best_metric.startswith("eval/"):
        logger.warning(
            "%s: best_checkpoint_config monitors %r, but this %s() run never evaluates, so no "
            "checkpoint can be ranked by it. Monitor a train/ metric or run fit().",
            owner, best_metric, _entry(state),
        )  # fmt: skip
