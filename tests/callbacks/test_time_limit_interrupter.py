"""TimeLimitInterrupter stops once the budget is spent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import TimeLimitInterrupter


def test_expired_budget_stops_after_the_first_epoch() -> None:
    unit = ClassifierUnit()
    tl = TimeLimitInterrupter(timedelta(microseconds=1), interval="epoch")
    train(unit, loader(8, 4), max_epochs=5, callbacks=[tl])
    assert unit.train_progress.num_epochs_completed == 1


def test_long_budget_does_not_stop_and_timestamp_does() -> None:
    unit = ClassifierUnit()
    train(unit, loader(8, 4), max_epochs=3, callbacks=[TimeLimitInterrupter("01:00:00")])
    assert unit.train_progress.num_epochs_completed == 3
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    unit2 = ClassifierUnit()
    tl = TimeLimitInterrupter("01:00:00", interval="step", interval_freq=2, timestamp=past)
    train(unit2, loader(16, 4), max_epochs=3, callbacks=[tl])
    assert unit2.train_progress.num_steps_completed == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"duration": "4 hours"}, r"duration='4 hours' is invalid: expected 'DD:HH:MM'"),
        ({"duration": timedelta(0)}, r"is invalid: expected a positive time"),
        ({"duration": "00:01:00", "interval_freq": -1}, r"interval_freq=-1 is invalid"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TimeLimitInterrupter(**kwargs)  # type: ignore[arg-type]
