"""ThroughputLogger counts items exactly and derives rates and MFU."""

from __future__ import annotations

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import ThroughputLogger
from torchkit.loggers import InMemoryLogger


def test_counts_items_exactly_with_a_partial_last_batch() -> None:
    lg = InMemoryLogger()
    tl = ThroughputLogger(lg, every_n_steps=2)
    train(ClassifierUnit(), loader(22, 4), max_epochs=2, callbacks=[tl])  # 6 steps per epoch
    assert tl.items_total == 44
    assert lg.log_buffer[2]["train/items_total"] == 8.0
    assert lg.log_buffer[6]["train/items_total"] == 22.0  # 4 + 4 + ... + 2
    assert lg.log_buffer[12]["train/items_total"] == 44.0
    assert lg.log_buffer[2]["train/items_per_second"] > 0


def test_tokens_and_mfu() -> None:
    lg = InMemoryLogger()
    tl = ThroughputLogger(
        lg, every_n_steps=4, items_per_batch=4,
        tokens_fn=lambda out: torch.tensor(10), flops_per_batch=1e6, peak_flops_per_second=1e9,
    )  # fmt: skip
    train(ClassifierUnit(), loader(16, 4), max_epochs=1, callbacks=[tl])
    row = lg.log_buffer[4]
    seconds = 16 / row["train/items_per_second"]
    assert row["train/tokens_per_second"] == pytest.approx(40 / seconds)
    assert row["train/mfu"] == pytest.approx(4 * 1e6 / seconds / 1e9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_steps": 0}, r"every_n_steps=0 is invalid"),
        ({"flops_per_batch": 1.0}, r"expected both or neither"),
        ({"flops_per_batch": -1.0, "peak_flops_per_second": 1.0}, r"flops_per_batch=-1.0"),
        ({"items_per_batch": 0}, r"items_per_batch=0 is invalid"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ThroughputLogger(InMemoryLogger(), **kwargs)  # type: ignore[arg-type]
