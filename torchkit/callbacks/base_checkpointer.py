"""``BaseCheckpointer``: when to save, what to keep, and the preemption path; storage-agnostic."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from torchkit.callbacks._checkpoint_policy import (
    Retained,
    apply_retention,
    eval_due_after_epoch,
    eval_due_after_step,
    loader_state,
    positive_or_none,
)
from torchkit.callbacks._metric_state import add_time, publish_eval
from torchkit.callbacks._reachability import warn_checkpointer
from torchkit.callbacks.callback import Callback
from torchkit.callbacks.preemption import DEFAULT_PREEMPTION_SIGNALS, PreemptionWatcher
from torchkit.checkpoint.app_state import get_rng_states, pop_eval_pending
from torchkit.checkpoint.naming import BestCheckpointConfig, CheckpointName, list_checkpoints
from torchkit.checkpoint.storage import is_committed, remove_checkpoint, remove_quietly
from torchkit.loop.duration import Duration, check_interval, resolve_interval
from torchkit.loop.evaluators import round_is_ending, round_is_starting
from torchkit.loop.progress import Progress
from torchkit.loop.state import ActivePhase, EntryPoint, State
from torchkit.utils.distributed import get_global_rank, get_world_size
from torchkit.utils.fs import join_url

logger = logging.getLogger(__name__)

T = TypeVar("T")

_LIVE: Any = object()
"""Sentinel: read the value from the live loop (not from a pre-eval snapshot)."""


class BaseCheckpointer(Callback, ABC):
    """Checkpoint policy: when to save, which checkpoints to keep, and preemption.

    Saves happen every ``save_every_n_train_steps`` *global* train steps, every
    ``save_every_n_epochs`` train epochs, every ``save_every_n_eval_epochs`` eval epochs, every
    ``save_every`` duration (after the step or epoch where floor(count / interval) changes),
    and always at the end of training unless a save already holds that state. Names are
    ``epoch_{e}_train_step_{s}`` (``_{metric}={value}`` appended with a
    ``best_checkpoint_config``), so latest and best are found from the directory alone. A
    name that is already committed is not saved again. The unit's ``on_checkpoint_save`` runs
    after each successful save.

    Retention runs only after a new checkpoint is committed: ``keep_last_n_checkpoints=K``
    keeps the K most recent (with a ``best_checkpoint_config``: the K best, plus the most
    recent one so a resume never goes back in time). Checkpoints already in ``dirpath`` when
    training starts count too.

    Preemption: while training, the ``preemption_signals`` (SIGTERM by default; ``()`` turns it
    off) only set a flag. After the next train or eval step all ranks agree on it, a
    checkpoint of the state as of that step is saved (an eval cut short is marked to re-run on
    resume), and the loop stops without closing the epoch; ``train``/``fit`` return normally
    with ``state.preempted`` set.

    Subclasses implement ``_checkpoint_impl`` (write and commit one checkpoint, then call
    ``_after_commit``), ``_wait_for_pending`` and ``restore``.

    Args:
        dirpath: directory (local path or fsspec URL) holding the checkpoint directories.
        save_every_n_train_steps: save every N global train steps.
        save_every_n_epochs: save every N train epochs.
        save_every_n_eval_epochs: save every N eval epochs.
        keep_last_n_checkpoints: how many checkpoints to keep (None: all).
        best_checkpoint_config: the metric that names and ranks checkpoints.
        preemption_signals: signals that trigger a checkpoint-and-stop.
        save_every: save every interval given as a ``Duration`` or a string (``"30m"``,
            ``"1e9tok"``, ``"500ba"``, ``"1ep"``, ``"0.1dur"`` of ``max_duration``).

    Raises:
        ValueError: an empty ``dirpath``, a non-positive interval or count, a bad
            ``save_every``, or a bad signal.
        TypeError: ``dirpath`` is not a string or ``best_checkpoint_config`` has a wrong type.
    """

    requires_no_grad = True
    """``predict`` runs under ``no_grad``, not ``inference_mode``, with a checkpointer."""

    def __init__(
        self,
        dirpath: str,
        *,
        save_every_n_train_steps: int | None = None,
        save_every_n_epochs: int | None = None,
        save_every_n_eval_epochs: int | None = None,
        keep_last_n_checkpoints: int | None = None,
        best_checkpoint_config: BestCheckpointConfig | None = None,
        preemption_signals: Sequence[int] | None = DEFAULT_PREEMPTION_SIGNALS,
        save_every: Any = None,
    ) -> None:
        if not isinstance(dirpath, str):
            raise TypeError(
                f"dirpath={dirpath!r} is invalid: expected a str (local path or fsspec URL). "
                "Pass e.g. 'checkpoints/' or 's3://bucket/run1'."
            )
        if not dirpath.strip():
            raise ValueError(
                f"dirpath={dirpath!r} is invalid: expected a non-empty path. Pass e.g. "
                "'checkpoints/'."
            )
        self._every_n_steps = positive_or_none("save_every_n_train_steps", save_every_n_train_steps)
        self._every_n_epochs = positive_or_none("save_every_n_epochs", save_every_n_epochs)
        self._every_n_eval_epochs = positive_or_none(
            "save_every_n_eval_epochs", save_every_n_eval_epochs
        )
        self._keep_last_n = positive_or_none("keep_last_n_checkpoints", keep_last_n_checkpoints)
        self._save_every_arg = check_interval(save_every, name="save_every")
        self._save_every = self._save_every_arg
        if best_checkpoint_config is not None and not isinstance(
            best_checkpoint_config, BestCheckpointConfig
        ):
            raise TypeError(
                f"best_checkpoint_config={best_checkpoint_config!r} is invalid: expected a "
                "torchkit.checkpoint.BestCheckpointConfig, e.g. BestCheckpointConfig('eval/loss')."
            )
        self._best = best_checkpoint_config
        # best-K on a published loss mean (``eval/loss``) needs the step losses kept
        self.records_step_losses = best_checkpoint_config is not None
        self._preemption = PreemptionWatcher(preemption_signals or ())
        self._dirpath = dirpath.rstrip("/") or dirpath
        self._retained: Retained = []
        self._last_saved: int | None = None
        self._eval_snapshot: dict[str, Any] | None = None
        self._control_group: Any = None

    @property
    def dirpath(self) -> str:
        """Where the checkpoint directories are written."""
        return self._dirpath

    @property
    def retained_checkpoints(self) -> list[str]:
        """Committed checkpoints this checkpointer keeps, oldest first."""
        return [url for url, _ in self._retained]

    # ---- subclass interface -------------------------------------------------------------
    @abstractmethod
    def _checkpoint_impl(
        self,
        state: State,
        unit: Any,
        *,
        checkpoint_id: str,
        name: CheckpointName,
        extra: dict[str, Any],
        overrides: dict[str, Any],
    ) -> None:
        """Write and commit one checkpoint, call ``_after_commit`` and the unit's
        ``on_checkpoint_save`` (an async implementation may finish later)."""

    @abstractmethod
    def _wait_for_pending(self, *, raise_errors: bool = True) -> None:
        """Block until any save in flight is committed (no-op for synchronous savers)."""

    def _setup_groups(self) -> None:
        """Create process groups the implementation needs (all ranks, at train start)."""
        if get_world_size() > 1 and self._control_group is None:
            import torch.distributed as dist

            # Decisions are agreed on a CPU group: no device sync, and NCCL stays free.
            if dist.get_backend() != "gloo":
                self._control_group = dist.new_group(backend="gloo")

    def resolve_durations(
        self, max_duration: Duration | None, steps_per_epoch: int | None
    ) -> list[Duration]:
        """Called by ``train``/``fit`` before any hook: convert a ``dur`` ``save_every`` and
        return the durations the run must measure."""
        every = self._save_every_arg
        if every is None:
            return []
        self._save_every = resolve_interval(every, max_duration, steps_per_epoch, name="save_every")
        return [self._save_every]

    def _duration_due(self, state: State, *, epoch_end: bool = False) -> bool:
        every, tracker = self._save_every, state.duration_tracker
        if every is None or tracker is None:
            return False
        return tracker.fires_at_epoch_end(every) if epoch_end else tracker.fires(every)

    # ---- loop hooks ----------------------------------------------------------------------
    def on_train_start(self, state: State, unit: Any) -> None:
        warn_checkpointer(
            state, every_n_steps=self._every_n_steps, every_n_epochs=self._every_n_epochs,
            every_n_eval_epochs=self._every_n_eval_epochs,
            best_metric=self._best.monitored_metric if self._best else None,
        )  # fmt: skip
        self._setup_groups()
        self._retained = self._rank_zero(lambda: list_checkpoints(self._dirpath))
        if pop_eval_pending(unit) and state.entry_point == EntryPoint.FIT:
            state._resume_pending_eval = True
        self._preemption.install(self._control_group)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        steps = unit.train_progress.num_steps_completed
        if (self._every_n_steps and steps % self._every_n_steps == 0) or self._duration_due(state):
            self._save(state, unit, eval_pending=eval_due_after_step(state, steps), in_step=True)
        if self._preemption.enabled and self._preemption.should_stop():
            self._save(state, unit, eval_pending=eval_due_after_step(state, steps), in_step=True)
            self._stop_for_preemption(state)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        epochs = unit.train_progress.num_epochs_completed
        due = self._every_n_epochs and epochs % self._every_n_epochs == 0
        if due or self._duration_due(state, epoch_end=True):
            self._save(state, unit, eval_pending=eval_due_after_epoch(state, epochs))

    def on_eval_start(self, state: State, unit: Any) -> None:
        # with Evaluators, the snapshot is of the whole round: a resumed run re-runs the round
        if (
            state.entry_point == EntryPoint.FIT
            and self._preemption.enabled
            and round_is_starting(state)
        ):
            # What a checkpoint taken in the middle of this eval must hold: the state from
            # before it, so the resumed run re-runs the whole eval with the same random draws.
            self._eval_snapshot = {
                "rng": get_rng_states(),
                "eval_progress": Progress(**unit.eval_progress.state_dict()),
                "eval_dataloader": loader_state(state, unit, "eval"),
                "metric": self._metric_value(state, unit),
            }

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        if state.entry_point != EntryPoint.FIT or not self._preemption.enabled:
            return
        snap = self._eval_snapshot
        if snap is not None and self._preemption.should_stop():
            self._save(
                state,
                unit,
                eval_pending=True,
                overrides={"eval_progress": snap["eval_progress"]},
                rng=snap["rng"],
                eval_loader=snap["eval_dataloader"],
                metric=snap["metric"],
            )
            self._stop_for_preemption(state)

    def on_eval_epoch_end(self, state: State, unit: Any) -> None:
        epochs = unit.eval_progress.num_epochs_completed
        if self._every_n_eval_epochs and epochs % self._every_n_eval_epochs == 0:
            self._save(state, unit, eval_pending=False)

    def on_eval_end(self, state: State, unit: Any) -> None:
        if round_is_ending(state):
            self._eval_snapshot = None

    def on_train_end(self, state: State, unit: Any) -> None:
        try:
            # skipped when the last save was at this global step: it holds the same state
            if not state.preempted and unit.train_progress.num_steps_completed != self._last_saved:
                self._save(state, unit, eval_pending=False)
            self._wait_for_pending()
        finally:
            self._preemption.uninstall()

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        self._preemption.uninstall()
        self._wait_for_pending(raise_errors=False)

    # ---- policy helpers ------------------------------------------------------------------
    def _stop_for_preemption(self, state: State) -> None:
        self._wait_for_pending()  # the checkpoint must be committed before the process exits
        logger.warning("Preemption signal received: checkpoint saved, stopping the loop.")
        state._stop_for_preemption()

    def _metric_value(self, state: State, unit: Any) -> float | None:
        if self._best is None:
            return None
        name = self._best.monitored_metric
        if state.active_phase == ActivePhase.EVALUATE and name.startswith("eval/"):
            # compute (once per eval epoch, cached) so the value is this epoch's whatever the
            # callback order
            publish_eval(state, unit)
        value = state.metrics.get(name, getattr(unit, name, None))
        if value is None:
            return None
        return float(value)  # note: CPU-GPU sync for a tensor metric, once per save

    def _checkpoint_name(self, unit: Any, metric: float | None) -> CheckpointName:
        progress = getattr(unit, "train_progress", None) or Progress()
        epoch, step = progress.num_epochs_completed, progress.num_steps_completed
        if self._best is None:
            return CheckpointName(epoch, step)
        if metric is None:
            logger.warning(
                "Metric %r is not in state.metrics nor a unit attribute yet; the checkpoint "
                "at step %d is named without it and ranks last for best-checkpoint retention.",
                self._best.monitored_metric,
                step,
            )
            return CheckpointName(epoch, step)
        return CheckpointName(epoch, step, self._best.monitored_metric, metric)

    def _save(
        self,
        state: State,
        unit: Any,
        *,
        eval_pending: bool,
        overrides: dict[str, Any] | None = None,
        rng: dict[str, Any] | None = None,
        eval_loader: Any = _LIVE,
        metric: float | None = _LIVE,
        in_step: bool = False,
    ) -> None:
        self._wait_for_pending()  # one save in flight at most; its errors surface here
        if metric is _LIVE:
            metric = self._metric_value(state, unit)
        name = self._checkpoint_name(unit, metric)
        url = join_url(self._dirpath, str(name))
        progress = getattr(unit, "train_progress", None) or Progress()
        self._last_saved = progress.num_steps_completed
        if url in self.retained_checkpoints or self._rank_zero(lambda: self._prepare_dir(url)):
            return  # already committed: it holds this very state
        extra = {
            "rng": rng if rng is not None else get_rng_states(),
            "dataloaders": {
                "train": loader_state(state, unit, "train"),
                "eval": loader_state(state, unit, "eval") if eval_loader is _LIVE else eval_loader,
            },
            "eval_pending": eval_pending,
        }
        if state.duration_tracker is not None:
            extra["durations"] = state.duration_tracker.state_dict()
        started = time.perf_counter()
        self._checkpoint_impl(
            state, unit, checkpoint_id=url, name=name, extra=extra, overrides=overrides or {}
        )
        # the training stall (for an async save, only the snapshot), for the run summary,
        # which takes it out of the phase timing it happened inside
        stall = time.perf_counter() - started
        add_time(state, "checkpoint", stall)
        if in_step:
            add_time(state, "checkpoint_in_train_step", stall)
        elif state.active_phase == ActivePhase.EVALUATE:
            add_time(state, "checkpoint_in_eval", stall)

    @staticmethod
    def _prepare_dir(url: str) -> bool:
        """True when ``url`` is already committed; else removes a stale partial save there."""
        if is_committed(url):
            return True
        remove_quietly(url)
        return False

    def _after_commit(self, url: str, name: CheckpointName) -> None:
        """Record a committed checkpoint and evict those the policy no longer keeps."""
        self._retained, evicted = apply_retention(
            self._retained, url, name, self._keep_last_n, self._best
        )
        if get_global_rank() == 0:
            for old_url, _ in evicted:
                try:
                    remove_checkpoint(old_url)
                except Exception as exc:  # eviction must not fail training
                    logger.warning("Could not delete old checkpoint %s: %s", old_url, exc)

    def _rank_zero(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and give its result to every rank (identical decisions)."""
        if get_world_size() == 1:
            return fn()
        import torch.distributed as dist

        box: list[Any] = [fn() if get_global_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0, group=self._control_group)
        return box[0]


__all__ = ["BaseCheckpointer"]
