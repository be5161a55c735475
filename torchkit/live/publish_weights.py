"""``PublishWeights``: a callback that publishes the training weights into a ``LiveModel``."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal

from torchkit.callbacks._logging_utils import check_choice, check_interval
from torchkit.callbacks.callback import Callback
from torchkit.live._tensors import gather_full_state, is_sharded, sources_from_full_state
from torchkit.live.live_model import LiveModel
from torchkit.loop.state import State
from torchkit.utils.distributed import get_global_rank, get_world_size

logger = logging.getLogger(__name__)

OnBusy = Literal["skip", "wait"]

_NEVER = sys.maxsize
GATHER_COST_WARN_FRACTION = 0.05
"""Warn when a sharded module's full-state gathers take more than this share of the time."""


class _NoOptimizerCounter:
    """Stands in for ``AutoUnit.counters`` on units without one (never due by itself)."""

    num_optimizer_steps = 0


def _next_multiple(count: int, every: int) -> int:
    return (count // every + 1) * every


class PublishWeights(Callback):
    """Publishes the training module's weights into ``live`` at a step, epoch or end interval.

    Optimizer steps are counted from ``AutoUnit.num_optimizer_steps``, so a non-update step
    under gradient accumulation never publishes; a unit without that counter (a plain
    ``TrainUnit``) counts each train step as one optimizer step. Every decision is made from
    step counts alone, identical on every rank. A publish finding every spare copy held by a
    reader counts a skip (``live.skipped_publishes``) and retries at the next step of the same
    kind (``on_busy="skip"``), or waits for a reader to let go (``"wait"``). After a resume
    the first publish comes at the next interval: ``LiveModel`` state is not checkpointed.

    DDP: only the ranks in ``ranks`` copy (the weights are the same everywhere; no
    collective). FSDP2: the module is sharded, so each publish gathers a full state dict on
    every rank (a collective at the same step everywhere) and the ranks in ``ranks`` copy it
    in; a skip then waits for the next interval instead of retrying, and a warning is logged
    once when the gathers take more than 5 % of the training time.

    Args:
        live: the ``LiveModel`` to publish into (built from the module the unit trains).
        every_n_optimizer_steps: publish after every n-th optimizer step. When no interval is
            given at all this is 1.
        every_n_train_steps: publish after every n-th train step (micro-batch).
        every_n_epochs: publish after every n-th train epoch.
        on_train_end: also publish when training ends (unless that step was just published).
        ranks: the global ranks that copy into their ``LiveModel``.
        on_busy: ``"skip"`` or ``"wait"`` when no copy is free.

    Raises:
        TypeError: ``live`` is not a ``LiveModel``.
        ValueError: an interval < 1, an unknown ``on_busy``, or ``ranks`` empty or naming a
            rank outside the world (checked again when training starts).

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> from torchkit.live import LiveModel
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> unit = DummyTrainUnit(2)
        >>> live = LiveModel.from_module(unit.module)
        >>> cb = PublishWeights(live, every_n_train_steps=2, on_train_end=False)
        >>> _ = train(unit, generate_random_dataloader(8, 2, 2), max_epochs=1, callbacks=[cb])
        >>> live.version
        2
        >>> with live.acquire() as snap:
        ...     snap.train_step, torch.equal(snap.module.weight, unit.module.weight)
        (4, True)
    """

    def __init__(
        self,
        live: LiveModel,
        every_n_optimizer_steps: int | None = None,
        every_n_train_steps: int | None = None,
        every_n_epochs: int | None = None,
        on_train_end: bool = True,
        ranks: Sequence[int] = (0,),
        on_busy: OnBusy = "skip",
    ) -> None:
        if not isinstance(live, LiveModel):
            raise TypeError(
                f"live={live!r} is invalid: expected a torchkit.live.LiveModel. Build one with "
                "LiveModel.from_module(module)."
            )
        for name, value in (
            ("every_n_optimizer_steps", every_n_optimizer_steps),
            ("every_n_train_steps", every_n_train_steps),
            ("every_n_epochs", every_n_epochs),
        ):
            if value is not None:
                check_interval(name, value, f"Pass {name}=None to not publish on that interval")
        self._wait = check_choice("on_busy", on_busy, ("skip", "wait")) == "wait"
        self.ranks = _check_ranks(ranks)
        if every_n_optimizer_steps is None and every_n_train_steps is None and not every_n_epochs:
            every_n_optimizer_steps = 1
        self.live = live
        self.every_n_optimizer_steps = every_n_optimizer_steps
        self.every_n_train_steps = every_n_train_steps
        self.every_n_epochs = every_n_epochs
        self.publish_on_train_end = on_train_end
        self.on_busy = on_busy
        self._progress: Any = None
        self._counters: Any = _NoOptimizerCounter()
        self._next_step = _NEVER
        self._next_opt = _NEVER
        self._is_publisher = False
        self._sharded = False
        self._last_step = -1  # the last step published (attempted, for a sharded module)
        self._last_gather_end: float | None = None
        self._warned_gather = False

    # ---- the per-step check: two integer comparisons on a step that does not publish ------

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if (
            self._progress.num_steps_completed >= self._next_step
            or self._counters.num_optimizer_steps >= self._next_opt
        ):
            self._due()

    def on_train_start(self, state: State, unit: Any) -> None:
        _check_ranks(self.ranks, world=get_world_size())
        self._is_publisher = get_global_rank() in self.ranks
        self._sharded = is_sharded(self.live._source)
        self._progress = unit.train_progress
        counters = getattr(unit, "counters", None)
        if hasattr(counters, "num_optimizer_steps"):
            self._counters = counters
        elif hasattr(type(unit), "num_optimizer_steps"):
            self._counters = unit
        else:
            self._counters = _NoOptimizerCounter()
        self._last_step = -1
        self._schedule()

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        every = self.every_n_epochs
        if every and self._progress.num_epochs_completed % every == 0:
            self._attempt(retry_on="step")

    def on_train_end(self, state: State, unit: Any) -> None:
        if not self.publish_on_train_end:
            return
        skipped = self.live.skipped_publishes
        self._attempt(retry_on=None)
        if self.live.skipped_publishes > skipped:
            logger.warning(
                "PublishWeights: every spare LiveModel copy was held by a reader when training "
                "ended, so the final weights were not published. Release snapshots sooner, "
                "use more buffers, or pass on_busy='wait'."
            )

    # ---- scheduling ------------------------------------------------------------------------

    def _schedule(self) -> None:
        """The next step / optimizer-step counts at which to publish, from the counts now."""
        self._next_step = self._next_opt = _NEVER
        if not (self._is_publisher or self._sharded):
            return  # nothing to copy and no collective to take part in
        steps = self._progress.num_steps_completed
        if self.every_n_train_steps:
            self._next_step = _next_multiple(steps, self.every_n_train_steps)
        every_opt = self.every_n_optimizer_steps
        if every_opt and isinstance(self._counters, _NoOptimizerCounter):
            self._next_step = min(self._next_step, _next_multiple(steps, every_opt))
        elif every_opt:
            self._next_opt = _next_multiple(self._counters.num_optimizer_steps, every_opt)

    def _due(self) -> None:
        by_opt = self._counters.num_optimizer_steps >= self._next_opt
        self._attempt(retry_on="opt" if by_opt else "step")

    def _attempt(self, retry_on: str | None) -> None:
        """Publish now unless this step was already published; on a skip, retry at the next
        step (``"step"``) or optimizer step (``"opt"``)."""
        step = self._progress.num_steps_completed
        if step == self._last_step or not (self._is_publisher or self._sharded):
            return
        published = self._publish_sharded(step) if self._sharded else self._publish(step)
        self._schedule()
        if published or self._sharded:  # sharded: every rank must decide alike, so no retry
            self._last_step = step
        elif retry_on == "opt":
            self._next_opt = self._counters.num_optimizer_steps + 1
        elif retry_on == "step":
            self._next_step = step + 1

    def _publish(self, step: int) -> bool:
        return self.live.publish(train_step=step, wait=self._wait)

    def _publish_sharded(self, step: int) -> bool:
        live = self.live
        rank0_only = self.ranks == (0,)
        start = time.perf_counter()
        full = gather_full_state(live._source, rank0_only=rank0_only)  # every rank: collective
        end = time.perf_counter()
        self._check_gather_cost(end - start, end)
        if not self._is_publisher:
            return False
        sources = sources_from_full_state(full, live._source, live._names)
        return live._publish_from(lambda: sources, step, self._wait)

    def _check_gather_cost(self, gather_s: float, now: float) -> None:
        """Warn once when the gathers take more than 5 % of the time between publishes."""
        last, self._last_gather_end = self._last_gather_end, now
        if last is None or self._warned_gather or now <= last:
            return
        fraction = gather_s / (now - last)
        if fraction > GATHER_COST_WARN_FRACTION:
            self._warned_gather = True
            logger.warning(
                "PublishWeights: gathering the full state dict of the sharded module took "
                "%.1f ms, %.0f%% of the time since the previous publish (more than 5%%). "
                "Publish less often (raise every_n_optimizer_steps or every_n_train_steps).",
                gather_s * 1e3,
                fraction * 100,
            )


def _check_ranks(ranks: Any, world: int | None = None) -> tuple[int, ...]:
    world = get_world_size() if world is None else world
    items = tuple(ranks) if isinstance(ranks, (list, tuple, set, frozenset, range)) else None
    valid = items is not None and len(items) > 0
    valid = valid and all(isinstance(r, int) and not isinstance(r, bool) for r in items or ())
    if not valid or not all(0 <= r < world for r in items or ()):
        raise ValueError(
            f"ranks={ranks!r} is invalid: expected a non-empty tuple of global ranks in "
            f"[0, {world}) (the world has {world} process(es)). Pass e.g. ranks=(0,)."
        )
    return tuple(sorted(set(items or ())))
