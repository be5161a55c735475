"""Shared benchmark machinery: interleaved timing against a raw loop, cProfile call counts."""

from __future__ import annotations

import cProfile
import datetime
import json
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from torchkit import AutoUnit, State

Runner = Callable[[list[tuple[torch.Tensor, torch.Tensor]]], None]


def make_batches(
    n: int, dim: int = 32, batch: int = 16, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` regression batches: x (batch, dim), y (batch, 1)."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, dim, generator=g), torch.randn(batch, 1, generator=g)) for _ in range(n)
    ]


def tiny_batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches for the design's tiny-MLP workload: x (16, 32), y (16, 1)."""
    return make_batches(n, seed=seed)


def tiny_mlp() -> torch.nn.Module:
    """The 32 -> 32 -> 1 MLP of design.md section 6."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))


class MSEAutoUnit(AutoUnit[tuple[torch.Tensor, torch.Tensor]]):
    """The AutoUnit every benchmark uses: MSE loss, SGD, no scheduler."""

    def compute_loss(
        self, state: State, data: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return torch.nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(module.parameters(), lr=1e-3), None


def make_raw_loop() -> Runner:
    """The hand-written loop every contender is compared with."""
    model = tiny_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    mse = torch.nn.functional.mse_loss

    def run(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        model.train()
        for x, y in batches:
            loss = mse(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    return run


def interleaved_us_per_step(
    runners: dict[str, Runner], steps: int, rounds: int, warmup: int = 2
) -> dict[str, float]:
    """Median µs/step of each runner, measured in interleaved rounds in this process."""
    batches = tiny_batches(steps)
    for _ in range(warmup):
        for run in runners.values():
            run(batches)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run(batches)
            samples[name].append((time.perf_counter() - t0) / steps * 1e6)
    return {name: statistics.median(v) for name, v in samples.items()}


def calls_per_step(make_runner: Callable[[], Runner], small: int = 200, large: int = 1200) -> float:
    """Python function calls per step under cProfile (difference of two run lengths, so fixed
    set-up costs cancel)."""

    def count(n: int) -> int:
        run = make_runner()
        batches = tiny_batches(n)
        run(tiny_batches(4))  # warm caches outside the profile
        prof = cProfile.Profile()
        prof.enable()
        run(batches)
        prof.disable()
        return int(pstats.Stats(prof).total_calls)  # type: ignore[attr-defined]

    return (count(large) - count(small)) / (large - small)


def import_cost_ms(repeats: int = 7) -> dict[str, float]:
    """Median extra milliseconds of ``import torchkit`` after ``import torch`` (fresh
    interpreters)."""
    code = (
        "import time, torch; t0 = time.perf_counter(); import torchkit; "
        "print(time.perf_counter() - t0)"
    )
    base = "import time; t0 = time.perf_counter(); import torch; print(time.perf_counter() - t0)"
    tk = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(repeats)]
    th = [float(subprocess.check_output([sys.executable, "-c", base])) for _ in range(repeats)]
    return {
        "import_torch_ms": statistics.median(th) * 1e3,
        "import_torchkit_over_torch_ms": statistics.median(tk) * 1e3,
    }


def machine_info() -> dict[str, Any]:
    """Machine, versions and date for the results table."""
    import os

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }


def emit(result: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(result, sort_keys=True))
