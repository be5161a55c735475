"""Per-step overhead of torchkit's loop over a hand-written loop (design.md section 6).

Workload: the tiny MLP (32 -> 32 -> 1, batch 16), SGD, one thread. Contenders run in
interleaved rounds in one process; the figure is the median µs/step minus the raw loop's, plus
Python calls per step under cProfile and the import cost. Prints one JSON line.

The ``fit_tok`` contender (``max_duration="…tok"`` with ``evaluate_every="…tok"``, counting
tokens every step) is compared with ``fit_steps`` (the same run with ``max_steps`` and
``evaluate_every_n_steps``) as ``fit_tok_vs_fit_steps_*``; neither interval fires, so both
rows are the per-step cost of the loop alone.

The ``auto_unit_eval`` / ``auto_unit_test`` contenders (``evaluate`` and ``test`` of the same
AutoUnit) are compared with ``raw_eval``, a hand-written ``no_grad`` loop computing the loss.

    python benchmarks/loop_overhead.py [--steps 500 --rounds 15] [--quick]
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


class TinyFitUnit(TinyTrainUnit, torchkit.EvalUnit[tuple[torch.Tensor, torch.Tensor]]):
    def eval_step(self, state: torchkit.State, data: tuple[torch.Tensor, torch.Tensor]) -> None:
        pass

    def count_tokens(self, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
        # what the default counter costs on a {"input_ids": ...} batch: one numel() call
        return batch[0].numel()


NEVER = 10**12  # an eval interval that never fires within a benchmark run


def make_fit_steps_loop() -> Runner:
    unit = TinyFitUnit()

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.train_progress = torchkit.Progress()
        torchkit.fit(
            unit, batches, batches[:1], max_steps=len(batches), evaluate_every_n_steps=NEVER,
            evaluate_every_n_epochs=None,
        )  # fmt: skip

    return run


def make_fit_tok_loop() -> Runner:
    unit = TinyFitUnit()

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.train_progress = torchkit.Progress()
        tokens = len(batches) * batches[0][0].numel()  # the budget ends at the last batch
        torchkit.fit(
            unit, batches, batches[:1], max_duration=f"{tokens}tok", evaluate_every=f"{NEVER}tok"
        )

    return run


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


def make_raw_eval_loop() -> Runner:
    """The hand-written evaluation loop: eval mode, no_grad, the loss of each batch."""
    model = tiny_mlp()
    mse = torch.nn.functional.mse_loss

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        model.eval()
        with torch.no_grad():
            for x, y in batches:
                mse(model(x), y)
        model.train()

    return run


def make_auto_unit_eval_loop() -> Runner:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu", training=False)

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.eval_progress = torchkit.Progress()
        torchkit.evaluate(unit, batches)

    return run


def make_auto_unit_test_loop() -> Runner:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu", training=False)

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.test_progress = torchkit.Progress()
        torchkit.test(unit, batches)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 50, 3
    torch.set_num_threads(1)

    makers = {
        "raw": make_raw_loop,
        "train_unit": make_train_unit_loop,
        "auto_unit": make_auto_unit_loop,
        "fit_steps": make_fit_steps_loop,
        "fit_tok": make_fit_tok_loop,
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
    result["fit_tok_vs_fit_steps_us"] = round(us["fit_tok"] - us["fit_steps"], 2)
    result["fit_tok_vs_fit_steps_calls_per_step"] = round(calls["fit_tok"] - calls["fit_steps"], 2)
    eval_makers = {
        "raw_eval": make_raw_eval_loop,
        "auto_unit_eval": make_auto_unit_eval_loop,
        "auto_unit_test": make_auto_unit_test_loop,
    }
    us = interleaved_us_per_step({k: m() for k, m in eval_makers.items()}, args.steps, args.rounds)
    calls = {k: calls_per_step(m) for k, m in eval_makers.items()}
    result["raw_eval_us_per_step"] = round(us["raw_eval"], 2)
    result["raw_eval_calls_per_step"] = round(calls["raw_eval"], 2)
    for name in ("auto_unit_eval", "auto_unit_test"):
        result[f"{name}_us_per_step"] = round(us[name], 2)
        result[f"{name}_overhead_us"] = round(us[name] - us["raw_eval"], 2)
        result[f"{name}_ratio"] = round(us[name] / us["raw_eval"], 4)
        result[f"{name}_extra_calls_per_step"] = round(calls[name] - calls["raw_eval"], 2)
    if not args.quick:
        result.update({k: round(v, 1) for k, v in import_cost_ms().items()})
    emit(result)


if __name__ == "__main__":
    main()
