"""Observability cost: AutoUnit + TQDMProgressBar(10) + MetricsLogger(10) + TensorBoardLogger
vs a hand-written loop (and vs AutoUnit without callbacks) on the tiny MLP.

Run: ``python benchmarks/observability_overhead.py [rounds] [steps_per_round]`` (default 41
rounds of 1000 steps). Prints one JSON line. Contenders run in interleaved rounds in one
process (order alternating), each on a freshly built unit whose set-up is not timed; medians
of the per-round differences are reported, as design.md §6 asks. Shorter rounds keep the
three timings of a round close in time, which matters on a shared machine whose speed drifts.
Python calls per step under cProfile are reported as the noise-free proxy. Bar: <= 40
µs/step over the raw loop with the three observability pieces on.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from torchkit import train
from torchkit.callbacks import MetricsLogger, TQDMProgressBar
from torchkit.loggers import TensorBoardLogger

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import MSEAutoUnit, calls_per_step, make_batches, tiny_mlp

Batch = tuple[torch.Tensor, torch.Tensor]
Setup = Callable[[], tuple[Callable[[list[Batch]], None], Callable[[], None]]]


def raw_setup() -> tuple[Callable[[list[Batch]], None], Callable[[], None]]:
    model = tiny_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()

    def run(data: list[Batch]) -> None:
        with torch.enable_grad():
            for x, y in data:
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

    return run, lambda: None


def auto_setup() -> tuple[Callable[[list[Batch]], None], Callable[[], None]]:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu")
    return (lambda data: train(unit, data, max_epochs=1)), lambda: None  # type: ignore[func-returns-value]


def observed_setup() -> tuple[Callable[[list[Batch]], None], Callable[[], None]]:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu")
    tmp = tempfile.TemporaryDirectory()
    tb = TensorBoardLogger(tmp.name)
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed by the teardown below
    callbacks = [TQDMProgressBar(refresh_rate=10, file=sink), MetricsLogger(tb, every_n_steps=10)]

    def teardown() -> None:
        tb.close()
        sink.close()
        tmp.cleanup()

    return (lambda data: train(unit, data, max_epochs=1, callbacks=callbacks)), teardown  # type: ignore[func-returns-value]


def timed(setup: Setup, data: list[Batch]) -> float:
    run, teardown = setup()
    t0 = time.perf_counter()
    run(data)
    elapsed = (time.perf_counter() - t0) / len(data)
    teardown()
    return elapsed


def fresh_runs(setup: Setup) -> Callable[[list[Batch]], None]:
    """A runner that builds, runs and tears down a fresh contender on every call."""

    def run(data: list[Batch]) -> None:
        go, teardown = setup()
        go(data)
        teardown()

    return run


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    data = make_batches(steps)
    contenders: dict[str, Setup] = {
        "raw": raw_setup,
        "auto": auto_setup,
        "observed": observed_setup,
    }
    for setup in contenders.values():  # warm-up
        timed(setup, data[:40])
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    diffs: dict[str, list[float]] = {"observed_vs_raw": [], "observed_vs_auto": []}
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 41
    for i in range(rounds):
        names = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        t = {name: timed(contenders[name], data) for name in names}
        for name, v in t.items():
            samples[name].append(v)
        diffs["observed_vs_raw"].append(t["observed"] - t["raw"])
        diffs["observed_vs_auto"].append(t["observed"] - t["auto"])
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    calls = {
        name: calls_per_step(lambda s=setup: fresh_runs(s)) for name, setup in contenders.items()
    }
    print(json.dumps({
        "torch": torch.__version__,
        "steps_per_round": len(data),
        "rounds": rounds,
        "raw_us_per_step": round(med["raw"], 1),
        "autounit_us_per_step": round(med["auto"], 1),
        "observed_us_per_step": round(med["observed"], 1),
        "observed_overhead_vs_raw_us": round(statistics.median(diffs["observed_vs_raw"]) * 1e6, 1),
        "observability_only_us": round(statistics.median(diffs["observed_vs_auto"]) * 1e6, 1),
        "autounit_extra_calls_per_step": round(calls["auto"] - calls["raw"], 1),
        "observed_extra_calls_per_step": round(calls["observed"] - calls["raw"], 1),
        "bar_us": 40,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
