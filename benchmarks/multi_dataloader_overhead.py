"""Per-batch cost of ``MultiDataLoader(RoundRobin)`` over two loaders against taking the two
loaders' batches in turn by hand. Prints one JSON line: median µs per batch (interleaved
rounds), the extra µs per batch (bar: <= 3), and Python calls per batch under cProfile.

    python benchmarks/multi_dataloader_overhead.py           # full run
    python benchmarks/multi_dataloader_overhead.py --quick   # a few seconds, for CI smoke
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import emit, machine_info
from torchkit.utils.data import MultiDataLoader, RoundRobin

Runner = Callable[[], int]


def _loaders(n: int) -> dict[str, list[int]]:
    # plain lists: the loaders cost next to nothing, so the wrapper's overhead is what shows
    return {"a": list(range(n)), "b": list(range(n))}


def make_by_hand(n: int) -> Runner:
    loaders = _loaders(n)

    def run() -> int:
        count = 0
        ia, ib = iter(loaders["a"]), iter(loaders["b"])
        for pair in zip(ia, ib):  # a, b, a, b, ...: the round-robin order
            for _batch in pair:
                count += 1
        return count

    return run


def make_multi(n: int) -> Runner:
    mdl = MultiDataLoader(_loaders(n), RoundRobin())

    def run() -> int:
        count = 0
        for _batch in mdl:
            count += 1
        return count

    return run


def us_per_batch(runners: dict[str, Runner], batches: int, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        run()  # warm-up
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - t0) / batches * 1e6)
    return {name: statistics.median(v) for name, v in samples.items()}


def calls_per_batch(make: Callable[[int], Runner], small: int = 500, large: int = 3000) -> float:
    def count(n: int) -> int:
        run = make(n)
        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
        return int(pstats.Stats(prof).total_calls)  # type: ignore[attr-defined]

    return (count(large) - count(small)) / (2 * (large - small))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches-per-loader", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    n, rounds = (2000, 3) if args.quick else (args.batches_per_loader, args.rounds)
    runners = {"by_hand": make_by_hand(n), "multi_dataloader": make_multi(n)}
    assert runners["by_hand"]() == runners["multi_dataloader"]() == 2 * n
    times = us_per_batch(runners, 2 * n, rounds)
    result: dict[str, Any] = {
        "benchmark": "multi_dataloader_overhead",
        "batches_per_epoch": 2 * n,
        "us_per_batch": {k: round(v, 3) for k, v in times.items()},
        "extra_us_per_batch": round(times["multi_dataloader"] - times["by_hand"], 3),
        "bar_extra_us_per_batch": 3.0,
        "calls_per_batch": {
            "by_hand": round(calls_per_batch(make_by_hand), 2),
            "multi_dataloader": round(calls_per_batch(make_multi), 2),
        },
        "machine": machine_info(),
    }
    emit(result)
    return result


if __name__ == "__main__":
    main()
