"""``EarlyStopping``: stops training when a monitored metric stops improving."""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

import torch

from torchkit.callbacks._logging_utils import check_choice, check_interval
from torchkit.callbacks._metric_state import publish_eval, publish_train
from torchkit.callbacks._reachability import check_reachable
from torchkit.callbacks.callback import Callback
from torchkit.loop.evaluators import eval_epochs_of_set, publishes_metric
from torchkit.loop.state import State
from torchkit.utils.distributed import sync_bool
from torchkit.utils.early_stop_checker import EarlyStopChecker

logger = logging.getLogger(__name__)


def parse_metric_spec(metric: str, mode: str | None) -> tuple[str, str]:
    """``"-eval/loss"`` -> ``("eval/loss", "min")``, ``"+eval/acc"`` -> ``("eval/acc", "max")``;
    without a sign the ``mode`` argument decides (default ``"min"``)."""
    sign = {"-": "min", "+": "max"}.get(metric[:1])
    name = metric[1:] if sign else metric
    if sign and mode is not None and mode != sign:
        raise ValueError(
            f"mode={mode!r} is invalid: expected {sign!r} because metric={metric!r} starts with "
            f"{metric[0]!r}. Drop the sign or the mode argument."
        )
    return name, sign or mode or "min"


class _PhaseDefault(str):
    """The type of ``phase``'s default: equal to ``"train"`` (TNT's default), but
    distinguishable from an explicit ``phase="train"`` so the metric form can take the phase
    from the metric's prefix when none was given."""

    __slots__ = ()


_PHASE_DEFAULT = _PhaseDefault("train")


def _resolve_phase(phase: str, metric: str | None) -> str:
    """The phase to check in: the explicit one, or for the metric form the metric's prefix."""
    prefix = metric.split("/", 1)[0] if metric is not None and "/" in metric else None
    if phase is _PHASE_DEFAULT:
        if metric is None:
            return "train"
        return "train" if prefix == "train" else "eval"
    check_choice("phase", phase, ("train", "eval"))
    if prefix in ("train", "eval") and prefix != phase:
        raise ValueError(
            f"phase={phase!r} is invalid: expected {prefix!r} because metric={metric!r} is a "
            f"{prefix} metric. Drop phase (it follows the metric's prefix) or monitor a "
            f"{phase}/ metric."
        )
    return str(phase)


class EarlyStopping(Callback):
    """Stops ``train``/``fit`` when the monitored value stops improving.

    TNT form: ``EarlyStopping(monitored_attr, early_stop_checker, interval, phase,
    interval_freq)`` reads an attribute of the unit (set it in the unit's hooks before the
    check). torchkit form: ``metric=`` names a value in ``state.metrics`` (``"-eval/loss"``,
    ``"+eval/accuracy"``, ``"-train/loss"``: published by this callback itself, so no other
    callback is needed). Checks run at the end of every ``interval_freq``-th epoch or step of
    ``phase``. With ``Evaluators``, a metric of one set (``"-eval/val/loss"``) is checked
    only after that set's evaluations, and ``interval_freq`` counts that set's epochs. The stop
    decision is taken on rank 0 and broadcast (one collective per check),
    so every rank stops at the same step.

    ``phase`` defaults to ``"train"`` as in TNT; in the metric form an omitted ``phase``
    follows the metric's prefix (``eval/...`` checks after each evaluation). A check that can
    never run (``phase="eval"`` under ``train()``, or in a ``fit`` that never evaluates) is
    an error at train start rather than a run that silently never stops.

    Args:
        monitored_attr: TNT form: name of a unit attribute holding the value.
        early_stop_checker: TNT form: the ``EarlyStopChecker`` to feed.
        interval: check at the end of an ``"epoch"`` or a ``"step"``.
        phase: ``"train"`` (checked after train epochs/steps) or ``"eval"`` (after each
            evaluation inside ``fit``).
        interval_freq: check every this many epochs/steps.
        metric: a ``state.metrics`` name; ``"-name"`` minimises, ``"+name"`` maximises.
        mode: ``"min"`` or ``"max"`` when neither ``early_stop_checker`` nor a sign says.
        patience: checks without improvement before stopping (with ``metric``).
        min_delta: smallest improvement that counts (with ``metric``).
        restore_best_weights: keep a copy of the tracked modules' weights at the best check and
            load it back when training ends.

    Raises:
        ValueError: no value to monitor, a bad ``interval``/``phase``/``interval_freq``, a
            ``phase`` contradicting the metric's prefix, a check that can never run (at train
            start), or (at the first check) a metric name that does not exist; the message
            lists the names that do.

    Example:
        >>> from torchkit import fit
        >>> from torchkit.testing import DummyFitUnit, generate_random_dataloader
        >>> dl = generate_random_dataloader(8, 2, 4)
        >>> es = EarlyStopping(metric="-eval/loss", patience=1, min_delta=10.0)
        >>> _ = fit(DummyFitUnit(2), dl, dl, max_epochs=5, callbacks=[es])
        >>> es.stopped_at_epoch, es.phase
        (2, 'eval')
    """

    records_step_losses = True

    def __init__(
        self,
        monitored_attr: str | None = None,
        early_stop_checker: EarlyStopChecker | None = None,
        interval: Literal["epoch", "step"] = "epoch",
        phase: Literal["train", "eval"] = _PHASE_DEFAULT,  # type: ignore[assignment]
        interval_freq: int = 1,
        *,
        metric: str | None = None,
        mode: Literal["min", "max"] | None = None,
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
    ) -> None:
        if (monitored_attr is None) == (metric is None):
            raise ValueError(
                f"monitored_attr={monitored_attr!r}, metric={metric!r} is invalid: expected "
                "exactly one of them. Pass e.g. metric='-eval/loss'."
            )
        self.interval = check_choice("interval", interval, ("epoch", "step"))
        self.interval_freq = check_interval("interval_freq", interval_freq)
        self.monitored_attr = monitored_attr
        self.metric: str | None = None
        resolved_mode: str = mode or "min"
        if metric is not None:
            self.metric, resolved_mode = parse_metric_spec(metric, mode)
        self.phase = _resolve_phase(phase, self.metric)
        if early_stop_checker is None:
            early_stop_checker = EarlyStopChecker(
                mode="max" if resolved_mode == "max" else "min",
                patience=patience,
                min_delta=min_delta,
            )
        self.checker = early_stop_checker
        self.restore_best_weights = restore_best_weights
        self.best_state: dict[str, dict[str, torch.Tensor]] | None = None
        self.stopped_at_epoch: int | None = None
        self.stopped_at_step: int | None = None

    # -- hooks ------------------------------------------------------------------------------
    def on_train_start(self, state: State, unit: Any) -> None:
        check_reachable(self, state)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if self.phase != "train":
            return
        steps = unit.train_progress.num_steps_completed
        if self.interval == "step" and steps % self.interval_freq == 0:
            publish_train(state, unit)
            self._check(state, unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        epochs = unit.train_progress.num_epochs_completed
        if self.phase == "train" and self.interval == "epoch" and epochs % self.interval_freq == 0:
            publish_train(state, unit)
            self._check(state, unit)

    def on_eval_epoch_end(self, state: State, unit: Any) -> None:
        # An eval epoch with no step (``fit`` runs one after ``state.stop()``, as TNT does)
        # produced nothing to judge.
        if self.phase != "eval" or unit.eval_progress.num_steps_completed_in_prev_epoch == 0:
            return
        publish_eval(state, unit)
        if self.metric is not None and not publishes_metric(state, self.metric):
            return  # another eval set of Evaluators: the monitored one did not change
        progress = unit.train_progress if hasattr(unit, "train_progress") else unit.eval_progress
        count = progress.num_steps_completed if self.interval == "step" else None
        if count is None:
            count = eval_epochs_of_set(state, unit)
        if count % self.interval_freq == 0:
            self._check(state, unit)

    def on_train_end(self, state: State, unit: Any) -> None:
        if self.restore_best_weights and self.best_state is not None:
            modules = unit.tracked_modules()
            for name, sd in self.best_state.items():
                modules[name].load_state_dict(sd)
            logger.info("Early stopping: restored the weights of the best check.")

    # -- internals --------------------------------------------------------------------------
    def _value(self, state: State, unit: Any) -> Any:
        if self.monitored_attr is not None:
            if not hasattr(unit, self.monitored_attr):
                raise ValueError(
                    f"monitored_attr={self.monitored_attr!r} is invalid: "
                    f"{type(unit).__name__} has no such attribute (Unit does not have "
                    f"attribute '{self.monitored_attr}'). Set self.{self.monitored_attr} in "
                    "the unit before the check runs."
                )
            return getattr(unit, self.monitored_attr)
        name = self.metric
        if name not in state.metrics:
            available = ", ".join(sorted(state.metrics)) or "none yet"
            raise ValueError(
                f"metric={name!r} is invalid: expected a name in state.metrics; available: "
                f"{available}. Pass one of these (prefix '-' to minimise) or make the unit "
                "report it (train_metrics / eval_metrics, or a (loss, outputs) step output)."
            )
        return state.metrics[name]

    def _check(self, state: State, unit: Any) -> None:
        value = self._value(state, unit)
        should_stop = self.checker.check(value)
        if self.restore_best_weights and getattr(self.checker, "improved", False):
            self.best_state = {
                name: {k: v.detach().clone() for k, v in m.state_dict().items()}
                for name, m in unit.tracked_modules().items()
            }
        # Decision point: rank 0 decides for everyone so all ranks stop at the same step.
        if sync_bool(should_stop, coherence_mode="rank_zero"):
            progress = unit.train_progress if hasattr(unit, "train_progress") else None
            if progress is not None:
                self.stopped_at_epoch = progress.num_epochs_completed
                self.stopped_at_step = progress.num_steps_completed
            logger.info("Early stopping: stopping (best value %s).", self.checker.best_value)
            state.stop()

    def state_dict(self) -> dict[str, Any]:
        return {"checker": copy.deepcopy(self.checker.state_dict())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.checker.load_state_dict(state_dict["checker"])
