"""``EarlyStopChecker``: decides from a sequence of metric values when to stop (TNT's form)."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

logger = logging.getLogger(__name__)


class EarlyStopChecker:
    """Feed it one metric value per check; ``check`` returns True when training should stop.

    A value *improves* when it beats the best so far by more than ``min_delta``
    (``value < best - min_delta`` for ``"min"``, ``value > best + min_delta`` for ``"max"``).
    After ``patience`` checks in a row without improvement, ``check`` returns True. It also
    returns True at once for a non-finite value (``check_finite``), a value at or beyond
    ``stopping_threshold`` (good enough), or beyond ``divergence_threshold`` (hopeless).

    Args:
        mode: ``"min"`` when lower is better, ``"max"`` when higher is better.
        patience: checks without improvement before stopping (>= 1).
        min_delta: smallest change that counts as an improvement (>= 0).
        check_finite: stop when the value is NaN or infinite.
        stopping_threshold: stop once the value is this good.
        divergence_threshold: stop once the value is worse than this.

    Raises:
        ValueError: an unknown ``mode``, ``patience`` < 1 or ``min_delta`` < 0.

    Example:
        >>> c = EarlyStopChecker(mode="min", patience=2)
        >>> [c.check(v) for v in (1.0, 0.5, 0.6, 0.7)]
        [False, False, False, True]
    """

    def __init__(
        self,
        mode: Literal["min", "max"] = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(
                f"mode={mode!r} is invalid: expected 'min' or 'max'. Use 'min' for a loss "
                "and 'max' for an accuracy."
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(
                f"patience={patience!r} is invalid: expected an int >= 1. Pass the number of "
                "checks without improvement to tolerate, e.g. patience=3."
            )
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(
                f"min_delta={min_delta!r} is invalid: expected a number >= 0. The direction "
                "comes from mode; pass the absolute improvement, e.g. min_delta=0.001."
            )
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.best_value = math.inf if mode == "min" else -math.inf
        self.patience_count = 0
        self.improved = False
        """Whether the latest ``check`` improved on the best value."""

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def check(self, value: Any) -> bool:
        """Record ``value`` (a number or a scalar tensor); True means stop now."""
        val = float(value)
        self.improved = False
        if self.check_finite and not math.isfinite(val):
            logger.warning("Early stopping: the monitored value is %s, stopping.", val)
            return True
        threshold = self.stopping_threshold
        if threshold is not None and (val == threshold or self._better(val, threshold)):
            self._improve(val)
            logger.info("Early stopping: %s reached the stopping threshold %s.", val, threshold)
            return True
        diverge = self.divergence_threshold
        if diverge is not None and self._better(diverge, val):
            logger.warning(
                "Early stopping: %s is beyond the divergence threshold %s.", val, diverge
            )
            return True
        delta = -self.min_delta if self.mode == "min" else self.min_delta
        if self._better(val, self.best_value + delta):
            self._improve(val)
            return False
        self.patience_count += 1
        return self.patience_count >= self.patience

    def _improve(self, val: float) -> None:
        self.best_value = val
        self.patience_count = 0
        self.improved = True

    def reset(self) -> None:
        """Forget the best value and the patience count."""
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.patience_count = 0
        self.improved = False

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "patience_count": self.patience_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_value = float(state_dict["best_value"])
        self.patience_count = int(state_dict["patience_count"])
