"""AutoUnit (fp32, no callbacks) vs a hand-written loop: per-step overhead and call counts.

Run: ``python benchmarks/autounit_overhead.py``. Prints one JSON line. Rounds of the two
contenders are interleaved in one process and medians are reported, as design.md §6 asks.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from typing import Any

import torch
from torch import nn

from torchkit import train

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import MSEAutoUnit, make_batches, tiny_mlp

Batch = tuple[torch.Tensor, torch.Tensor]


def big_model() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 1))  # fmt: skip


def raw_loop(model: nn.Module) -> Any:
    """The hand-written loop; setup (optimizer) happens before the returned run() is timed."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()

    def run(data: list[Batch]) -> None:
        with torch.enable_grad():
            for x, y in data:
                out = model(x)
                loss = nn.functional.mse_loss(out, y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

    return run


def auto_loop(model: nn.Module) -> Any:
    """AutoUnit through ``train``; the unit is built before the returned run() is timed."""
    unit = MSEAutoUnit(module=model, device="cpu")

    def run(data: list[Batch]) -> None:
        train(unit, data, max_epochs=1)

    return run


def timed(setup: Any, model_fn: Any, data: list[Batch]) -> float:
    run = setup(model_fn())
    t0 = time.perf_counter()
    run(data)
    return (time.perf_counter() - t0) / len(data)


def interleaved(model_fn: Any, data: list[Batch], rounds: int) -> tuple[float, float, float, float]:
    """Median seconds per step of each contender, and the medians of the per-round difference
    and per-round ratio (a round's two timings are taken back to back, so a drift of the
    machine's speed between rounds cancels)."""
    raw, auto, diff, ratio = [], [], [], []
    timed(raw_loop, model_fn, data[:20])  # warm up both paths
    timed(auto_loop, model_fn, data[:20])
    for i in range(rounds):
        order = (raw_loop, auto_loop) if i % 2 == 0 else (auto_loop, raw_loop)
        t = {fn: timed(fn, model_fn, data) for fn in order}
        raw.append(t[raw_loop])
        auto.append(t[auto_loop])
        diff.append(t[auto_loop] - t[raw_loop])
        ratio.append(t[auto_loop] / t[raw_loop])
    med = statistics.median
    return med(raw), med(auto), med(diff), med(ratio)


def calls(fn: Any, data: list[Batch]) -> int:
    prof = cProfile.Profile()
    run = fn(tiny_mlp())
    prof.enable()
    run(data)
    prof.disable()
    return int(pstats.Stats(prof).total_calls)  # type: ignore[attr-defined]


def calls_per_step(fn: Any, data: list[Batch]) -> float:
    # the difference between two run lengths cancels the one-off setup calls
    n = len(data) // 2
    return (calls(fn, data) - calls(fn, data[:n])) / (len(data) - n)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tiny = make_batches(300, 32, 16)
    raw_s, auto_s, diff_s, tiny_ratio = interleaved(tiny_mlp, tiny, rounds=15)
    raw_calls, auto_calls = calls_per_step(raw_loop, tiny), calls_per_step(auto_loop, tiny)
    big = make_batches(12, 1024, 256)
    big_raw, big_auto, _, big_ratio = interleaved(big_model, big, rounds=11)
    print(json.dumps({
        "torch": torch.__version__,
        "tiny_raw_us_per_step": round(raw_s * 1e6, 1),
        "tiny_autounit_us_per_step": round(auto_s * 1e6, 1),
        "tiny_overhead_us_per_step": round(diff_s * 1e6, 1),
        "tiny_ratio": round(tiny_ratio, 3),
        "raw_calls_per_step": round(raw_calls, 1),
        "autounit_calls_per_step": round(auto_calls, 1),
        "extra_calls_per_step": round(auto_calls - raw_calls, 1),
        "compute_bound_raw_ms_per_step": round(big_raw * 1e3, 2),
        "compute_bound_autounit_ms_per_step": round(big_auto * 1e3, 2),
        "compute_bound_ratio": round(big_ratio, 4),
        "bars": {"overhead_us": 20, "extra_calls": 60, "compute_bound_ratio": 1.01},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
