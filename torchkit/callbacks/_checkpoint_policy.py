"""The decisions of ``BaseCheckpointer`` that need no I/O: intervals, whether an evaluation is
due when a save is taken, and which checkpoints the retention policy keeps."""

from __future__ import annotations

from typing import Any

from torchkit.checkpoint.app_state import dataloader_state
from torchkit.checkpoint.naming import BestCheckpointConfig, CheckpointName
from torchkit.loop.state import EntryPoint, State

Retained = list[tuple[str, CheckpointName]]
"""``(url, name)`` of the committed checkpoints a checkpointer keeps, oldest first."""


def positive_or_none(name: str, value: Any) -> int | None:
    """``value`` as a positive int interval, or None (off).

    Raises:
        ValueError: ``value`` is not None nor a positive int (a bool is refused).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{name}={value!r} is invalid: expected a positive int or None. Pass e.g. "
            f"{name}=100, or None to turn it off."
        )
    return value


def eval_due_after_step(state: State, steps: int) -> bool:
    """True when ``fit`` evaluates right after train step ``steps`` (a save taken then records
    the evaluation as pending, so a resumed run runs it first)."""
    if state._evaluators is not None:
        return bool(state._evaluators.due_after_step(steps, state.duration_tracker))
    es = state.eval_state
    n = es.evaluate_every_n_steps if es is not None else None
    tracker = state.duration_tracker
    every = tracker.evaluate_every if tracker is not None else None
    if every is not None and state.entry_point == EntryPoint.FIT and tracker is not None:
        return tracker.fires(every)
    return state.entry_point == EntryPoint.FIT and bool(n) and steps % n == 0  # type: ignore[operator]


def eval_due_after_epoch(state: State, epochs: int) -> bool:
    """True when ``fit`` evaluates right after train epoch ``epochs``."""
    if state._evaluators is not None:
        return bool(state._evaluators.due_after_epoch(epochs))
    es = state.eval_state
    n = es.evaluate_every_n_epochs if es is not None else None
    return state.entry_point == EntryPoint.FIT and bool(n) and epochs % n == 0  # type: ignore[operator]


def loader_state(state: State, unit: Any, phase: str) -> Any:
    """The state of the phase's dataloader(s) to save (each eval set's, by name, for
    ``Evaluators``); None when the phase has none."""
    ps = state.train_state if phase == "train" else state.eval_state
    if phase == "eval" and state._evaluators is not None:
        return dataloader_state(unit, phase, state._evaluators.evaluators)
    return None if ps is None else dataloader_state(unit, phase, ps.dataloader)


def apply_retention(
    retained: Retained,
    url: str,
    name: CheckpointName,
    keep_last_n: int | None,
    best: BestCheckpointConfig | None,
) -> tuple[Retained, Retained]:
    """Add the newly committed ``(url, name)`` and split the checkpoints into
    ``(kept, evicted)``, both oldest first.

    Without ``best`` the ``keep_last_n`` most recent are kept; with it, the ``keep_last_n``
    best by the monitored metric (ties broken by recency), plus the most recent one, so a
    resumed run always finds the latest state.
    """
    retained = [item for item in retained if item[0] != url] + [(url, name)]
    retained.sort(key=lambda item: item[1].recency_key())
    if keep_last_n is None or len(retained) <= keep_last_n:
        return retained, []
    if best is None:
        keep = retained[-keep_last_n:]
    else:
        mode = best.mode
        ranked = sorted(retained, key=lambda it: (it[1].metric_key(mode), it[1].recency_key()))
        keep = ranked[-keep_last_n:]
        if retained[-1] not in keep:
            keep.append(retained[-1])
    return [it for it in retained if it in keep], [it for it in retained if it not in keep]
