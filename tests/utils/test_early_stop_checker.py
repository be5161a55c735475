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
    # strictly beyond the threshold, as TNT: reaching it exactly is not enough
    assert EarlyStopChecker("min", 5, stopping_threshold=0.1).check(0.1) is False
    assert EarlyStopChecker("min", 5, stopping_threshold=0.1).check(0.09) is True
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


# TNT's feature set and semantics -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "patience", "min_delta", "values", "expected"),
    [
        # min, rel: 0.39 does not beat 0.4 * 0.95, 0.31 does; 0.25 -> 0.27, 0.24, 0.25 do not
        ("min", 3, 0.05, [0.4, 0.39, 0.31, 0.25, 0.27, 0.24, 0.25], 7),
        # max, rel: 0.26 does not beat 0.25 * 1.1; 0.32, 0.38 do; then three misses
        ("max", 3, 0.1, [0.25, 0.26, 0.32, 0.38, 0.39, 0.41, 0.41], 7),
        ("max", 1, 0.1, [1.0, 1.05], 2),
        ("max", 1, 0.1, [1.0, 1.11], None),
    ],
)
def test_relative_threshold_mode(
    mode: str, patience: int, min_delta: float, values: list[float], expected: int | None
) -> None:
    c = EarlyStopChecker(mode, patience, min_delta=min_delta, threshold_mode="rel")  # type: ignore[arg-type]
    assert _first_stop(c, values) == expected


def test_stopping_and_divergence_thresholds_are_strict_and_do_not_count_patience() -> None:
    c = EarlyStopChecker("max", 6, stopping_threshold=0.41)
    for v in [0.2, 0.3, 0.38, 0.4, 0.39, 0.4]:
        assert c.check(torch.tensor(v)) is False
    assert c.check(torch.tensor(0.41)) is False  # equal: not beyond
    assert c.check(torch.tensor(0.42)) is True
    d = EarlyStopChecker("max", 6, divergence_threshold=-0.05)
    for v in [0.2, 0.3, 0.38, 0.4, 0.3, 0.1]:
        assert d.check(v) is False
    assert d.check(-0.05) is False and d.patience_count == 3  # equal: counts as a plain miss
    assert d.check(-0.06) is True and d.patience_count == 3  # diverged: patience untouched


def test_non_finite_value_stops_without_touching_the_best_value() -> None:
    c = EarlyStopChecker("min", 3)
    c.check(0.25)
    assert c.check(torch.tensor(float("-inf"))) is True
    assert c.best_value == 0.25 and c.patience_count == 0


@pytest.mark.parametrize("value", [0.25, torch.tensor(0.25), torch.tensor([0.25])])
def test_state_dict_round_trip_with_float_or_tensor_values(value: object) -> None:
    a, b = EarlyStopChecker("min", 3), EarlyStopChecker("min", 3)
    for v in (0.4, 0.3, value, 0.26, 0.25):
        a.check(v)
    sd = a.state_dict()
    assert sd["patience_count"] == 2 and sd["best_value"].item() == 0.25  # TNT's layout
    b.load_state_dict(sd)
    assert b.best_value == a.best_value and b.check(0.25) is True


@pytest.mark.parametrize(
    "best", [0.25, torch.tensor(0.25), torch.tensor([0.25], dtype=torch.float32)]
)
def test_load_state_dict_accepts_floats_and_tnt_tensors(best: object) -> None:
    c = EarlyStopChecker("min", 2)
    c.load_state_dict({"patience_count": 1, "best_value": best})
    assert c.best_value == 0.25 and c.check(0.3) is True


def test_multi_element_tensor_is_rejected_with_its_element_count() -> None:
    with pytest.raises(ValueError, match=r"number of elements = 3 \(shape \(3,\)\)"):
        EarlyStopChecker("min", 3).check(torch.ones(3))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("invalid", 3), {}, r"mode='invalid' is invalid.*Got `invalid`"),
        (
            ("min", 3),
            {"min_delta": -1},
            r"min_delta=-1 is invalid.*`min_delta` must be greater than or equal to 0. Got -1",
        ),
        (("min", 3), {"threshold_mode": "pct"}, r"threshold_mode='pct' is invalid.*Got `pct`"),
    ],
)
def test_messages_keep_tnt_key_phrases(
    args: tuple[object, ...], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        EarlyStopChecker(*args, **kwargs)  # type: ignore[arg-type]


def test_tnt_positional_arguments() -> None:
    c = EarlyStopChecker("min", 3, 0.3, False, "rel", 2.2, 8.5)
    assert (c.mode, c.patience, c.min_delta, c.check_finite) == ("min", 3, 0.3, False)
    assert (c.threshold_mode, c.stopping_threshold, c.divergence_threshold) == ("rel", 2.2, 8.5)
