"""Cost of ``torchkit.live``: one publish, and ``PublishWeights`` on steps that do not publish.

1. One ``LiveModel.publish()`` of a 10 M-parameter model against a bare ``torch._foreach_copy_``
   of the same tensors into the same kind of buffer, timed in interleaved rounds; bar: ratio
   of the medians <= 1.1.
2. ``PublishWeights.on_train_step_end`` on a step that does not publish: the hook call as the
   loop makes it (ns/call, and over an empty hook's call), the loop-level difference (AutoUnit,
   tiny MLP, with and without the callback, interleaved rounds), and the Python calls per step
   it adds under cProfile (load-independent). Bar: <= 2 µs/step.

Prints one JSON line::

    python benchmarks/live_publish.py [--quick] [--device cuda] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (
    MSEAutoUnit,
    Runner,
    calls_per_step,
    emit,
    interleaved_us_per_step,
    machine_info,
    tiny_mlp,
)
from torchkit import Callback, Progress, train
from torchkit.live import LiveModel, PublishWeights
from torchkit.live._tensors import state_tensors

NEVER = 10**9


def ten_million_params(device: str) -> nn.Module:
    """10 x Linear(1000, 1000) with LayerNorms: 10.03 M parameters."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(10):
        layers += [nn.Linear(1000, 1000), nn.LayerNorm(1000)]
    return nn.Sequential(*layers).to(device)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def publish_vs_bare_copy(device: str, rounds: int) -> dict[str, Any]:
    model = ten_million_params(device)
    live = LiveModel.from_module(model, buffers=3)
    src = state_tensors(model)
    dst = [t.clone() for t in src]  # a buffer of the same kind, written by the bare copy

    def bare() -> None:
        with torch.no_grad():
            torch._foreach_copy_(dst, src, non_blocking=device.startswith("cuda"))

    def publish() -> None:
        live.publish(train_step=1)

    for _ in range(3):
        bare()
        publish()
    samples: dict[str, list[float]] = {"bare": [], "publish": []}
    for i in range(rounds):  # interleaved, alternating order
        order = [("bare", bare), ("publish", publish)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            samples[name].append(_timed(fn, device))
    bare_ms = statistics.median(samples["bare"]) * 1e3
    publish_ms = statistics.median(samples["publish"]) * 1e3
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "bare_foreach_copy_ms": bare_ms,
        "publish_ms": publish_ms,
        "publish_over_bare": publish_ms / bare_ms,
        "bar_publish_over_bare": 1.1,
    }


class _EmptyHook(Callback):
    def on_train_step_end(self, state: Any, unit: Any) -> None:
        pass


def hook_call_ns(calls: int) -> dict[str, float]:
    """ns per ``on_train_step_end`` call on a non-publish step, called as the loop calls it."""
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu")
    cb = PublishWeights(
        LiveModel.from_module(unit.module), every_n_optimizer_steps=NEVER, on_train_end=False
    )
    cb.on_train_start(None, unit)  # type: ignore[arg-type]
    out: dict[str, list[float]] = {"publish_weights": [], "empty": []}
    hooks = {"publish_weights": cb.on_train_step_end, "empty": _EmptyHook().on_train_step_end}
    for _ in range(7):
        for name, hook in hooks.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                hook(None, unit)
            out[name].append((time.perf_counter() - t0) / calls * 1e9)
    hook_ns = statistics.median(out["publish_weights"])
    return {
        "hook_ns_per_call": hook_ns,
        "hook_over_empty_hook_ns": hook_ns - statistics.median(out["empty"]),
    }


def _auto_runner(with_callback: bool) -> Runner:
    unit = MSEAutoUnit(module=tiny_mlp(), device="cpu")
    callbacks: list[Callback] = []
    if with_callback:
        live = LiveModel.from_module(unit.module)
        callbacks = [PublishWeights(live, every_n_optimizer_steps=NEVER, on_train_end=False)]

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        unit.train_progress.load_state_dict(Progress().state_dict())  # run the epoch again
        train(unit, batches, max_epochs=1, callbacks=callbacks)

    return run


def step_overhead(steps: int, rounds: int, profile: bool) -> dict[str, float]:
    us = interleaved_us_per_step(
        {"auto": _auto_runner(False), "auto_publish_weights": _auto_runner(True)}, steps, rounds
    )
    out = {
        "auto_us_per_step": us["auto"],
        "auto_publish_weights_us_per_step": us["auto_publish_weights"],
        "publish_weights_overhead_us_per_step": us["auto_publish_weights"] - us["auto"],
        "bar_overhead_us_per_step": 2.0,
    }
    if profile:
        base = calls_per_step(lambda: _auto_runner(False))
        with_cb = calls_per_step(lambda: _auto_runner(True))
        out["python_calls_per_step_added"] = with_cb - base
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run that checks it works")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = 3 if args.quick else args.rounds
    result: dict[str, Any] = {
        "benchmark": "live_publish",
        "quick": args.quick,
        "device": args.device,
    }
    result.update(machine_info())
    result.update(publish_vs_bare_copy(args.device, rounds))
    result.update(hook_call_ns(2_000 if args.quick else 200_000))
    result.update(step_overhead(100 if args.quick else 1000, rounds, profile=True))
    emit(result)


if __name__ == "__main__":
    main()
