"""EarlyStopChecker: improvement rule, patience, min_delta, thresholds, finiteness."""

from __future__ import annotations

import math

import pytest
import torch

from torchkit.utils import EarlyStopChecker


def _first_stop(checker: EarlyStopChecker, values: list[float]) -> int | None:
    for i, v in enumerate(values, start=1):
        if checker.check(v):
            return i
    return None


@pytest.mark.parametrize(
    ("mode", "patience", "min_delta", "values", "expected"),
    [
        ("min", 1, 0.0, [3.0, 2.0, 2.0], 3),  # equal is not an improvement
        ("min", 2, 0.0, [3.0, 2.0, 2.5, 1.0, 1.5, 1.2], 6),
        ("min", 2, 0.5, [3.0, 2.6, 2.7, 1.0], 3),  # 2.6 does not beat 3.0 by > 0.5
        ("max", 2, 0.0, [0.1, 0.5, 0.4, 0.6, 0.6, 0.59], 6),
        ("max", 1, 0.1, [0.5, 0.55], 2),
        ("max", 3, 0.0, [0.1, 0.2, 0.3, 0.4], None),
    ],
)
def test_stops_after_patience_checks_without_improvement(
    mode: str, patience: int, min_delta: float, values: list[float], expected: int | None
) -> None:
    checker = EarlyStopChecker(mode=mode, patience=patience, min_delta=min_delta)  # type: ignore[arg-type]
    assert _first_stop(checker, values) == expected


def test_thresholds_and_finiteness() -> None:
    assert EarlyStopChecker("min", 5, stopping_threshold=0.1).check(0.1) is True
    assert EarlyStopChecker("max", 5, stopping_threshold=0.9).check(0.95) is True
    assert EarlyStopChecker("min", 5, divergence_threshold=10.0).check(11.0) is True
    assert EarlyStopChecker("min", 5, divergence_threshold=10.0).check(9.0) is False
    assert EarlyStopChecker("min", 5).check(math.nan) is True
    assert EarlyStopChecker("min", 5, check_finite=False).check(math.inf) is False


def test_tensor_values_state_dict_and_reset() -> None:
    c = EarlyStopChecker("min", 2)
    c.check(torch.tensor(1.0))
    c.check(torch.tensor(2.0))
    assert c.state_dict() == {"best_value": 1.0, "patience_count": 1}
    other = EarlyStopChecker("min", 2)
    other.load_state_dict(c.state_dict())
    assert other.check(3.0) is True
    c.reset()
    assert c.best_value == math.inf and c.patience_count == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "up"}, r"mode='up' is invalid: expected 'min' or 'max'"),
        ({"patience": 0}, r"patience=0 is invalid: expected an int >= 1"),
        ({"min_delta": -0.1}, r"min_delta=-0.1 is invalid: expected a number >= 0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EarlyStopChecker(**kwargs)  # type: ignore[arg-type]
