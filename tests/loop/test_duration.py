"""``Duration.parse``: the parse table, wall-clock forms, errors; the firing rule; ``dur``."""

from __future__ import annotations

from typing import Any

import pytest

import torchkit
from torchkit import Duration, Progress
from torchkit.loop.duration import (
    DurationTypeError,
    check_interval,
    check_max_duration,
    crossed,
    resolve_interval,
)
from torchkit.loop.duration_tracker import DurationTracker


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("10ep", 10, "ep"),
        ("500ba", 500, "ba"),
        ("2048sp", 2048, "sp"),
        ("1e6tok", 1_000_000, "tok"),
        ("0.5dur", 0.5, "dur"),
        ("2h", 7200, "sec"),
        ("1h30m", 5400, "sec"),
        ("90m", 5400, "sec"),
        ("36h", 129_600, "sec"),
        ("1d12h", 129_600, "sec"),
        ("10EP", 10, "ep"),
        ("3600s", 3600, "sec"),
        ("3600sec", 3600, "sec"),
        (" 1h 30m ", 5400, "sec"),
        ("10 ep", 10, "ep"),
        ("1.5h", 5400, "sec"),
        ("2.0ep", 2, "ep"),
        ("0ba", 0, "ba"),
    ],
)
def test_parse_table_row(text: str, value: float, unit: str) -> None:
    d = Duration.parse(text)
    assert (d.value, d.unit) == (value, unit)
    assert type(d.value) is (float if unit == "dur" else int)


def test_scientific_notation_gives_an_exact_int() -> None:
    d = Duration.parse("1e18tok")
    assert d.value == 10**18 and type(d.value) is int


def test_parse_accepts_a_duration_and_a_pair() -> None:
    d = Duration(3, "ep")
    assert Duration.parse(d) is d
    assert Duration.parse((500, "BA")) == Duration(500, "ba")
    assert Duration.parse((2.0, "ep")).value == 2


def test_top_level_export() -> None:
    assert torchkit.Duration is Duration
    assert torchkit.loop.Duration is Duration


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1.5ep", r"max_duration='1\.5ep' is invalid: expected a whole number of ep"),
        ("-1ba", r"max_duration='-1ba' is invalid: expected a non-negative amount"),
        ("1.2dur", r"max_duration='1\.2dur' is invalid: expected a fraction of max_duration"),
        ("10xx", r"max_duration='10xx' is invalid: .*ep, ba, sp, tok, sec, dur.*got unit 'xx'"),
        ("", r"max_duration='' is invalid: .*one of ep, ba, sp, tok, sec, dur"),
        ("   ", r"max_duration='   ' is invalid: .*one of ep, ba, sp, tok, sec, dur"),
        ("ep", r"max_duration='ep' is invalid: .*one of ep, ba, sp, tok, sec, dur"),
        ("1h30", r"max_duration='1h30' is invalid"),
        ("0dur", r"expected a fraction of max_duration in \(0, 1\]"),
        ("0.5s", r"expected a whole number of sec"),
    ],
)
def test_bad_strings_raise_value_error_naming_the_argument(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Duration.parse(text, name="max_duration")


@pytest.mark.parametrize("bad", [10, 2.5, None, ["2", "ep"], True, (1, 2)])
def test_wrong_type_is_a_value_error_and_a_type_error(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"evaluate_every=.* is invalid: expected a torchkit"):
        Duration.parse(bad, name="evaluate_every")
    with pytest.raises(TypeError):
        Duration.parse(bad, name="evaluate_every")


def test_pair_with_bad_value_type() -> None:
    with pytest.raises(DurationTypeError, match=r"expected an int or float value, got a str"):
        Duration.parse(("10", "ep"), name="d")


@pytest.mark.parametrize("args", [(1, "xx"), (-2, "tok"), (1.5, "sp"), (2, "dur")])
def test_constructor_validates(args: tuple[Any, str]) -> None:
    with pytest.raises(ValueError, match="is invalid: expected"):
        Duration(*args)  # type: ignore[arg-type]


def test_check_interval_rejects_zero_and_passes_none() -> None:
    assert check_interval(None, name="every") is None
    with pytest.raises(ValueError, match=r"save_every='0ba' is invalid: expected a positive"):
        check_interval("0ba", name="save_every")


def test_max_duration_cannot_be_dur() -> None:
    with pytest.raises(ValueError, match=r"max_duration='0.5dur' is invalid: expected a unit"):
        check_max_duration("0.5dur")


# 64-token steps: cumulative 64, 128, ..., 512; an interval of 100 fires after 2, 4, 5, 7, 8.
def test_floor_rule_with_counters_that_jump() -> None:
    fired = [s for s in range(1, 9) if crossed(64 * (s - 1), 64 * s, 100)]
    assert fired == [2, 4, 5, 7, 8]


@pytest.mark.parametrize(
    ("every", "max_duration", "steps_per_epoch", "expected"),
    [
        (Duration(0.25, "dur"), Duration(20, "ba"), None, (5, "ba")),
        (Duration(0.5, "dur"), Duration(2, "ep"), None, (1, "ep")),  # whole epochs: no len()
        (Duration(0.25, "dur"), Duration(2, "ep"), 8, (4, "ba")),
        (Duration(0.1, "dur"), Duration(1000, "tok"), None, (100, "tok")),
        (Duration(0.5, "dur"), Duration(3600, "sec"), None, (1800, "sec")),
        (Duration(100, "tok"), None, None, (100, "tok")),  # other units pass through
    ],
)
def test_resolve_interval(
    every: Duration, max_duration: Duration | None, steps_per_epoch: int | None, expected: Any
) -> None:
    d = resolve_interval(every, max_duration, steps_per_epoch, name="every")
    assert (d.value, d.unit) == expected


def test_resolve_fraction_of_epochs_needs_a_sized_loader() -> None:
    with pytest.raises(ValueError, match=r"every='0.25dur' is invalid .*len\(dataloader\)"):
        resolve_interval(Duration(0.25, "dur"), Duration(2, "ep"), None, name="every")


def test_resolve_dur_needs_max_duration() -> None:
    with pytest.raises(ValueError, match=r"every='0.25dur' is invalid: expected max_duration"):
        resolve_interval(Duration(0.25, "dur"), None, None, name="every")


def test_fractional_resolved_interval_fires_by_the_floor_rule() -> None:
    every = resolve_interval(Duration(0.33, "dur"), Duration(20, "ba"), None, name="every")
    progress = Progress()
    tracker = DurationTracker(progress)
    fired = []
    for _ in range(20):
        progress.increment_step()
        if tracker.fires(every):
            fired.append(progress.num_steps_completed)
    assert fired == [7, 14, 20]  # boundaries 6.6, 13.2 and 19.8


def test_tracker_fires_per_unit() -> None:
    progress = Progress(num_steps_completed=4, num_epochs_completed=2)
    t = DurationTracker(progress)
    t.prev_samples, t.samples = 96, 112
    t.prev_seconds, t.seconds = 1000.0, 2000.0
    assert t.fires(Duration(100, "sp")) and not t.fires(Duration(200, "sp"))
    assert t.fires(Duration(1800, "sec"))
    assert t.fires(Duration(2, "ba")) and not t.fires(Duration(3, "ba"))
    assert not t.fires(Duration(1, "ep"))
    assert t.fires_at_epoch_end(Duration(2, "ep")) and not t.fires_at_epoch_end(Duration(2, "ba"))
    with pytest.raises(ValueError, match="expected a resolved interval"):
        t.fires(Duration(0.5, "dur"))


def test_tracker_state_dict_round_trip_and_clock() -> None:
    ticks = iter([10.0, 15.0])
    t = DurationTracker(Progress(), clock=lambda: next(ticks))
    t.load_state_dict({"samples": 5, "tokens": 7, "seconds": 100.0})
    assert t.state_dict() == {"samples": 5, "tokens": 7, "seconds": 100.0}
    t.start()
    assert t.elapsed() == 105.0  # time before the restore counts
