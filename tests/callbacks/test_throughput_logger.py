"""ThroughputLogger counts items exactly and derives rates and MFU."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import Lambda, ThroughputLogger
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


class StepClock:
    """A wall clock that moves only when a step starts: ``dt(k)`` seconds for step ``k``."""

    def __init__(self, dt: Any) -> None:
        self.dt, self.steps, self.now = dt, 0, 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, state: object, unit: object) -> None:
        self.steps += 1
        self.now = self.dt(self.steps)


def _run_with_clock(clock: StepClock, steps: int, **kwargs: Any) -> InMemoryLogger:
    lg = InMemoryLogger()
    tl = ThroughputLogger(lg, every_n_steps=10, items_per_batch=1, clock=clock, **kwargs)
    train(ClassifierUnit(), loader(steps, 1), max_epochs=1,
          callbacks=[Lambda(on_train_step_start=clock.advance), tl])  # fmt: skip
    return lg


def test_mfu_is_exact_with_an_injected_clock() -> None:
    clock = StepClock(lambda k: k * 0.01)  # 0.01 s per step
    lg = _run_with_clock(clock, 10, flops_per_step=1e12, peak_flops=1e15)
    row = lg.log_buffer[10]
    assert row["train/mfu"] == 0.1
    assert row["train/peak_flops_used"] == 1e15
    assert row["train/tflops_per_s"] == 100.0


def test_mfu_is_averaged_over_the_last_window_steps() -> None:
    # 50 slow steps (0.02 s) then 50 fast ones (0.01 s): the window of 50 sees the fast ones
    clock = StepClock(lambda k: 0.02 * min(k, 50) + 0.01 * max(k - 50, 0))
    lg = _run_with_clock(clock, 100, flops_per_step=1e12, peak_flops=1e15, window=50)
    assert lg.log_buffer[50]["train/mfu"] == 0.05
    assert lg.log_buffer[100]["train/mfu"] == 0.1


def test_a_flops_function_is_summed_per_step() -> None:
    clock = StepClock(lambda k: k * 0.01)
    sizes = iter([1, 3] * 5)  # FLOPs vary per step: 1e12 and 3e12, 2e12 on average
    lg = _run_with_clock(clock, 10, flops_per_step=lambda out: next(sizes) * 10**12,
                         peak_flops=1e15)  # fmt: skip
    assert lg.log_buffer[10]["train/mfu"] == pytest.approx(0.2, rel=1e-12)


def test_a_flops_function_returning_a_non_int_raises() -> None:
    with pytest.raises(TypeError, match=r"flops_per_step=.* is invalid: expected a function "
                       r"returning an int, got 1.5 \(float\)"):  # fmt: skip
        _run_with_clock(StepClock(lambda k: k * 0.01), 10, flops_per_step=lambda out: 1.5,
                        peak_flops=1e15)  # fmt: skip


def test_an_unknown_device_gets_tflops_one_warning_and_no_mfu(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = StepClock(lambda k: k * 0.01)
    with caplog.at_level(logging.WARNING):
        lg = _run_with_clock(clock, 30, flops_per_step=1e12)  # a CPU unit: no peak known
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "no peak FLOP/s" in caplog.records[0].message and len(caplog.records) == 1
    assert all("train/mfu" not in row for row in lg.log_buffer.values())
    assert lg.log_buffer[30]["train/tflops_per_s"] == pytest.approx(100.0)


def test_the_peak_comes_from_the_cuda_device_name_and_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from torchkit.callbacks.throughput_logger import _device_peak

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    unit = SimpleNamespace(device=torch.device("cuda", 0), precision=SimpleNamespace(
        dtype=torch.bfloat16))  # fmt: skip
    assert _device_peak(unit) == 989.4e12


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"peak_flops": 0, "flops_per_step": 1},
            ValueError,
            r"peak_flops=0 is invalid: expected a number > 0",
        ),
        ({"peak_flops": -1.0, "flops_per_step": 1}, ValueError, r"peak_flops=-1.0 is invalid"),
        ({"flops_per_step": 0}, ValueError, r"flops_per_step=0 is invalid"),
        ({"flops_per_step": "1e12"}, TypeError, r"flops_per_step='1e12' is invalid"),
        ({"window": 0}, ValueError, r"window=0 is invalid"),
        ({"peak_flops": 5.0}, ValueError, r"peak_flops=5.0 is invalid without flops_per_step"),
        ({"flops_per_step": 1, "flops_per_batch": 1.0}, ValueError, r"expected one of them"),
        ({"peak_flops": 1.0, "peak_flops_per_second": 1.0}, ValueError, r"expected one of"),
    ],
)
def test_bad_flop_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ThroughputLogger(InMemoryLogger(), **kwargs)
