"""``EarlyStopChecker``: decides from a sequence of metric values when to stop (TNT's form)."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import torch

logger = logging.getLogger(__name__)

_MODES = ("min", "max")
_THRESHOLD_MODES = ("abs", "rel")


def _as_float(value: Any, name: str = "val") -> float:
    """A number or a one-element tensor as a Python float (a host read for a device tensor)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} is invalid: expected a number or a tensor with only 1 element, but "
                f"input has number of elements = {value.numel()} (shape "
                f"{tuple(value.shape)}). Reduce it first, e.g. value.mean()."
            )
        # note: CPU-GPU sync point - once per check, never per step.
        return float(value.detach().reshape(()).item())
    return float(value)


class EarlyStopChecker:
    """Feed it one metric value per check; ``check`` returns True when training should stop.

    A value *improves* when it beats the best so far by more than the improvement threshold:
    with ``threshold_mode="abs"`` that is ``min_delta`` (``value < best - min_delta`` for
    ``"min"``); with ``"rel"`` it is ``min_delta * best`` (``value < best * (1 - min_delta)``).
    After ``patience`` checks in a row without improvement, ``check`` returns True. It also
    returns True at once, without counting patience, for a non-finite value (``check_finite``),
    a value strictly beyond ``stopping_threshold`` (good enough) or strictly worse than
    ``divergence_threshold`` (hopeless), checked in that order, as TNT does.

    Args:
        mode: ``"min"`` when lower is better, ``"max"`` when higher is better.
        patience: checks without improvement before stopping (>= 1).
        min_delta: smallest change that counts as an improvement (>= 0).
        check_finite: stop when the value is NaN or infinite.
        threshold_mode: ``"abs"`` (``min_delta`` is absolute) or ``"rel"`` (a fraction of the
            best value).
        stopping_threshold: stop once the value is strictly better than this.
        divergence_threshold: stop once the value is strictly worse than this.

    Raises:
        ValueError: an unknown ``mode`` or ``threshold_mode``, ``patience`` < 1 or
            ``min_delta`` < 0; ``check`` raises for a tensor with more than one element.

    Example:
        >>> c = EarlyStopChecker(mode="min", patience=2)
        >>> [c.check(v) for v in (1.0, 0.5, 0.6, 0.7)]
        [False, False, False, True]
        >>> r = EarlyStopChecker("max", 1, min_delta=0.1, threshold_mode="rel")
        >>> r.check(1.0), r.check(1.05)  # 1.05 does not beat 1.0 * 1.1
        (False, True)
    """

    def __init__(
        self,
        mode: Literal["min", "max"] = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        check_finite: bool = True,
        threshold_mode: Literal["abs", "rel"] = "abs",
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(
                f"mode={mode!r} is invalid: expected 'min' or 'max'. Use 'min' for a loss "
                f"and 'max' for an accuracy. (`mode` can be {_MODES}. Got `{mode}`)"
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(
                f"patience={patience!r} is invalid: expected an int >= 1. Pass the number of "
                "checks without improvement to tolerate, e.g. patience=3."
            )
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(
                f"min_delta={min_delta!r} is invalid: expected a number >= 0. The direction "
                "comes from mode; pass the absolute improvement, e.g. min_delta=0.001. "
                f"(`min_delta` must be greater than or equal to 0. Got {min_delta})"
            )
        if threshold_mode not in _THRESHOLD_MODES:
            raise ValueError(
                f"threshold_mode={threshold_mode!r} is invalid: expected 'abs' or 'rel'. Use "
                "'rel' to read min_delta as a fraction of the best value. "
                f"(`threshold_mode` can be {_THRESHOLD_MODES}, Got `{threshold_mode}`)"
            )
        self.mode: Literal["min", "max"] = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        """The improvement margin as passed (>= 0); TNT's property returns it signed."""
        self.check_finite = check_finite
        self.threshold_mode: Literal["abs", "rel"] = threshold_mode
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.best_value = math.inf if mode == "min" else -math.inf
        self.patience_count = 0
        self.improved = False
        """Whether the latest ``check`` improved on the best value."""

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def _improvement_threshold(self) -> float:
        if self.threshold_mode == "abs":
            return self.min_delta
        # TNT's rule: a fraction of the best value itself (sign included), 0 before any value.
        return self.min_delta * self.best_value if math.isfinite(self.best_value) else 0.0

    def check(self, val: Any) -> bool:
        """Record ``val`` (a number or a one-element tensor); True means stop now.

        Raises:
            ValueError: ``val`` is a tensor with more than one element.
        """
        value = _as_float(val)
        self.improved = False
        if self.check_finite and not math.isfinite(value):
            logger.warning(
                "Early stopping: the monitored value is %s (best was %s), stopping.",
                value, self.best_value,
            )  # fmt: skip
            return True
        stop_at = self.stopping_threshold
        if stop_at is not None and self._better(value, stop_at):
            logger.warning("Early stopping: %s reached the stopping threshold %s.", value, stop_at)
            return True
        diverge = self.divergence_threshold
        if diverge is not None and self._better(diverge, value):
            logger.warning(
                "Early stopping: %s is beyond the divergence threshold %s.", value, diverge
            )
            return True
        margin = self._improvement_threshold()
        target = self.best_value - margin if self.mode == "min" else self.best_value + margin
        if self._better(value, target):
            self.best_value = value
            self.patience_count = 0
            self.improved = True
            return False
        self.patience_count += 1
        logger.info(
            "Early stopping: no improvement in the last %d checks (best %s, patience %d).",
            self.patience_count, self.best_value, self.patience,
        )  # fmt: skip
        return self.patience_count >= self.patience

    def reset(self) -> None:
        """Forget the best value and the patience count."""
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.patience_count = 0
        self.improved = False

    def state_dict(self) -> dict[str, Any]:
        """``{"patience_count": int, "best_value": tensor([best])}``, TNT's layout (a float64
        one-element tensor, so the value round-trips exactly)."""
        best = torch.tensor([self.best_value], dtype=torch.float64)
        return {"patience_count": self.patience_count, "best_value": best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from ``state_dict()``; ``best_value`` may be a float or a one-element tensor
        (TNT's checkpoints hold a float32 tensor)."""
        self.best_value = _as_float(state_dict["best_value"], "state_dict['best_value']")
        self.patience_count = int(state_dict["patience_count"])
