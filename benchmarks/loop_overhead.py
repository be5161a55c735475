"""Per-step overhead of torchkit's loop over a hand-written loop (design.md section 6).

Workload: the tiny MLP (32 -> 32 -> 1, batch 16), SGD, one thread. Contenders run in
interleaved rounds in one process; the figure is the median µs/step minus the raw loop's, plus
Python calls per step under cProfile and the import cost. Prints one JSON line.

    python benchmarks/loop_overhead.py [--steps 500 --rounds 15]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torchkit
from benchmarks.harness import (
    MSEAutoUnit,
    Runner,
    calls_per_step,
    emit,
    import_cost_ms,
    interleaved_us_per_step,
    machine_info,
    make_raw_loop,
    tiny_mlp,
)


class TinyTrainUnit(torchkit.TrainUnit[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self) -> None:
        super().__init__()
        self.module = tiny_mlp()
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=1e-3)

    def train_step(self, state: torchkit.State, data: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = data
        loss = torch.nn.functional.mse_loss(self.module(x), y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def make_train_unit_loop() -> Runner:
    unit = TinyTrainUnit()

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.train_progress = torchkit.Progress()
        torchkit.train(unit, batches, max_epochs=1)

    return run


def make_auto_unit_loop() -> Runner:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu")

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.train_progress = torchkit.Progress()
        torchkit.train(unit, batches, max_epochs=1)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)

    makers = {
        "raw": make_raw_loop,
        "train_unit": make_train_unit_loop,
        "auto_unit": make_auto_unit_loop,
    }
    us = interleaved_us_per_step({k: m() for k, m in makers.items()}, args.steps, args.rounds)
    calls = {k: calls_per_step(m) for k, m in makers.items()}
    result: dict[str, object] = {"benchmark": "loop_overhead", **machine_info()}
    result["raw_us_per_step"] = round(us["raw"], 2)
    for name in makers:
        if name == "raw":
            continue
        result[f"{name}_us_per_step"] = round(us[name], 2)
        result[f"{name}_overhead_us"] = round(us[name] - us["raw"], 2)
        result[f"{name}_ratio"] = round(us[name] / us["raw"], 4)
        result[f"{name}_extra_calls_per_step"] = round(calls[name] - calls["raw"], 2)
    result["raw_calls_per_step"] = round(calls["raw"], 2)
    result.update({k: round(v, 1) for k, v in import_cost_ms().items()})
    emit(result)


if __name__ == "__main__":
    main()
