"""GPT-2 small on one GPU: AutoUnit against a hand-written loop, eager and compiled.

Run on a GPU machine from the source tree (torch >= 2.4; written for torch 2.11)::

    PYTHONPATH=. python benchmarks/gpu_gpt2.py --out "$OUT" --budget-s 420

or on a CPU, as a smoke test of the script itself: ``--device cpu --tiny``.

Variants (a fresh GPT-2 with the same seed each): raw eager, raw compiled, AutoUnit eager,
AutoUnit compiled, AutoUnit compiled + TQDMProgressBar(10) + MetricsLogger(10) +
ThroughputLogger, AutoUnit with accumulation 4 x micro-batch 4 (same tokens), AutoUnit
``mode="reduce-overhead"``, AutoUnit fed by a pinned ``DataLoader(num_workers=4)`` with
prefetch on and off (D2; every other variant cycles 8 device-resident batches, D1), and a
2-layer small-model pair (B 4 x T 128) where per-step overhead in microseconds shows.

Each variant warms up (compile time recorded), runs a 10-step ``set_sync_debug_mode("warn")``
probe (logging steps excepted), then all variants run ``--rounds`` interleaved rounds of
``--steps`` optimizer steps, each window timed with CUDA events after an anchor step. Written
out: ``gpu_gpt2.json`` and ``gpu_gpt2.md`` (the table, also printed last) under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.gpt2_model import (
    GPT,
    TINY,
    GPTConfig,
    SyntheticTokens,
    make_optimizer,
    token_batches,
)
from torchkit import AutoUnit, State, train
from torchkit.callbacks import Callback, MetricsLogger, ThroughputLogger, TQDMProgressBar
from torchkit.loggers import InMemoryLogger
from torchkit.strategies import TorchCompileParams
from torchkit.strategies.compile import compiled_graph_count
from torchkit.utils import peak_flops_for, transformer_flops_per_token

H100_BF16_DENSE = 989.4e12
GPT2_SMALL = GPTConfig()
SMALL_PAIR = GPTConfig(n_layer=2, block_size=128)  # steps of 1-2 ms: overhead in µs shows


@dataclass(frozen=True)
class Settings:
    """What one benchmark run does (``--tiny`` shrinks everything for a CPU smoke test)."""

    device: str = "cuda"
    cfg: GPTConfig = GPT2_SMALL
    batch: int = 16
    small_cfg: GPTConfig = SMALL_PAIR
    small_batch: int = 4
    warmup: int = 30
    rounds: int = 5
    steps: int = 50
    probe_steps: int = 10
    backend: str = "inductor"
    workers: int = 4
    budget_s: float = 420.0
    out: str = "."
    only: tuple[str, ...] = ()


def tiny_settings(s: Settings) -> Settings:
    return replace(
        s,
        cfg=TINY,
        small_cfg=TINY,
        batch=4,
        small_batch=2,
        warmup=3,
        rounds=2,
        steps=3,
        probe_steps=4,
        backend="eager",
        workers=0,
    )


class Clock:
    """Marks on the GPU timeline (CUDA events) or the host clock on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start: Any, end: Any) -> float:
        if not self.cuda:
            return float(end - start)
        torch.cuda.synchronize()
        return float(start.elapsed_time(end)) / 1e3


class SyncDebugProbe(Callback):
    """Runs train steps under ``torch.cuda.set_sync_debug_mode(mode)`` except logging steps
    (multiples of ``every_n_steps``) and the step after one (a progress bar reads a step
    after its refresh), where callbacks may read values on the host. Put it first."""

    def __init__(self, mode: str = "warn", every_n_steps: int | None = 10) -> None:
        self.mode, self.every = mode, every_n_steps

    def on_train_step_start(self, state: State, unit: Any) -> None:
        n = unit.train_progress.num_steps_completed + 1
        logging_step = self.every is not None and n % self.every in (0, 1)
        torch.cuda.set_sync_debug_mode(0 if logging_step else self.mode)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        torch.cuda.set_sync_debug_mode(0)

    def on_train_end(self, state: State, unit: Any) -> None:
        torch.cuda.set_sync_debug_mode(0)


class _Window(Callback):
    """Marks the GPU timeline after optimizer step ``first`` and after step ``last``."""

    def __init__(self, clock: Clock, first: int, last: int) -> None:
        self.clock, self.first, self.last = clock, first, last
        self.marks: list[Any] = []

    def on_train_step_end(self, state: State, unit: Any) -> None:
        n = unit.train_progress.num_steps_completed
        if n == self.first or n == self.last:
            self.marks.append(self.clock.mark())


class _Losses(Callback):
    def __init__(self, out: list[torch.Tensor]) -> None:
        self.out = out

    def on_train_step_end(self, state: State, unit: Any) -> None:
        out = state.train_state.step_output if state.train_state is not None else None
        self.out.append(out[0])


class _Cycle:
    """An endless iterable over device-resident batches, restarting at the first one."""

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[torch.Tensor]:
        return itertools.cycle(self.batches)


class GPTUnit(AutoUnit[torch.Tensor]):
    def compute_loss(self, state: State, data: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.module(data), None

    def configure_optimizers_and_lr_scheduler(self, module: torch.nn.Module) -> Any:
        return make_optimizer(module, self.device), None


@dataclass
class Spec:
    """One variant: which loop, compile mode, data path, model and batch shape."""

    name: str
    loop: str  # "raw" | "auto"
    compiled: bool = False
    small: bool = False
    accum: int = 1
    mode: str | None = None
    data: str = "D1"  # "D1" device-resident | "D2" DataLoader
    prefetch: bool = True
    logging: bool = False
    baseline: str = "raw_eager"


SPECS = [
    Spec("raw_eager", "raw"),
    Spec("auto_eager", "auto"),
    Spec("small_raw", "raw", small=True, baseline="small_raw"),
    Spec("small_auto", "auto", small=True, baseline="small_raw"),
    Spec("raw_compiled", "raw", compiled=True, baseline="raw_compiled"),
    Spec("auto_compiled", "auto", compiled=True, baseline="raw_compiled"),
    Spec("auto_compiled_logging", "auto", compiled=True, logging=True, baseline="raw_compiled"),
    Spec("d2_prefetch_on", "auto", compiled=True, data="D2", baseline="auto_compiled"),
    Spec(
        "d2_prefetch_off",
        "auto",
        compiled=True,
        data="D2",
        prefetch=False,
        baseline="auto_compiled",
    ),
    Spec("auto_accum4x4", "auto", compiled=True, accum=4, baseline="raw_compiled"),
    Spec(
        "auto_reduce_overhead",
        "auto",
        compiled=True,
        mode="reduce-overhead",
        baseline="raw_compiled",
    ),
]


class Runner:
    """Builds one variant and runs windows of optimizer steps on it."""

    def __init__(self, spec: Spec, s: Settings) -> None:
        self.spec, self.s = spec, s
        self.device = torch.device(s.device)
        self.cfg = s.small_cfg if spec.small else s.cfg
        batch = s.small_batch if spec.small else s.batch
        self.tokens_per_step = batch * self.cfg.block_size
        self.micro_batch = batch // spec.accum
        self.clock = Clock(self.device)
        self.result: dict[str, Any] = {"status": "not run", "rounds_s": []}

    # ---- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        torch.manual_seed(0)
        spec, cfg, s = self.spec, self.cfg, self.s
        model = GPT(cfg).to(self.device)
        self.n_params = model.num_params()
        batches = token_batches(
            8, self.micro_batch * self.spec.accum, cfg.block_size, cfg.vocab_size, self.device
        )
        micro = [m for b in batches for m in b.split(self.micro_batch)]
        compile_params = (
            TorchCompileParams(backend=s.backend, mode=spec.mode) if spec.compiled else None
        )
        if spec.loop == "raw":
            if compile_params is not None:
                model.compile(backend=s.backend, mode=spec.mode)
            self.model, self.opt, self.data = model, make_optimizer(model, self.device), micro
        else:
            self.unit = GPTUnit(
                module=model,
                device=self.device,
                precision="bf16",
                clip_grad_norm=1.0,
                gradient_accumulation_steps=spec.accum,
                torch_compile_params=compile_params,
                enable_prefetch=spec.prefetch,
            )
            self.loader: Any = _Cycle(micro) if spec.data == "D1" else self._d2_loader()
        self.callbacks = self._logging_callbacks() if spec.logging else []

    def _d2_loader(self) -> Any:
        cfg, s = self.cfg, self.s
        ds = SyntheticTokens(self.micro_batch * 100_000, cfg.block_size, cfg.vocab_size)
        cuda = self.device.type == "cuda"
        return torch.utils.data.DataLoader(
            ds,
            batch_size=self.micro_batch,
            num_workers=s.workers,
            pin_memory=cuda,
            persistent_workers=s.workers > 0,
        )

    def _logging_callbacks(self) -> list[Callback]:
        flops = transformer_flops_per_token(
            self.n_params,
            self.cfg.n_layer,
            self.cfg.n_head,
            self.cfg.n_embd // self.cfg.n_head,
            self.cfg.block_size,
        )
        return [
            TQDMProgressBar(refresh_rate=10, file=io.StringIO()),
            MetricsLogger(InMemoryLogger(), every_n_steps=10),
            ThroughputLogger(
                InMemoryLogger(),
                every_n_steps=10,
                items_per_batch=self.micro_batch,
                flops_per_step=flops * self.tokens_per_step // self.spec.accum,
            ),
        ]

    # ---- running --------------------------------------------------------------------------

    def _raw_steps(
        self, n_micro: int, losses: list[torch.Tensor] | None, window: _Window | None
    ) -> None:
        model, opt = self.model, self.opt
        use_cuda = self.device.type == "cuda"
        it = itertools.cycle(self.data)
        for i in range(1, n_micro + 1):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=True):
                loss = model(next(it))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=use_cuda or None)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if losses is not None:
                losses.append(loss.detach())
            if window is not None and (i == window.first or i == window.last):
                window.marks.append(self.clock.mark())

    def run(
        self,
        n: int,
        *,
        losses: list[torch.Tensor] | None = None,
        probe: bool = False,
        timed: bool = True,
    ) -> float:
        """Run ``n + 1`` optimizer steps; the seconds of the last ``n`` (0.0 untimed)."""
        k = self.spec.accum
        if self.spec.loop == "raw":
            window = _Window(self.clock, 1, n + 1) if timed else None
            if probe:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                self._raw_steps(n + 1, losses, window)
            finally:
                if probe:
                    torch.cuda.set_sync_debug_mode(0)
        else:
            done = self.unit.train_progress.num_steps_completed
            window = _Window(self.clock, done + k, done + k * (n + 1)) if timed else None
            every = 10 if self.spec.logging else None
            cbs: list[Callback] = [SyncDebugProbe("warn", every)] if probe else []
            cbs += [window] if window is not None else []
            cbs += self.callbacks + ([_Losses(losses)] if losses is not None else [])
            train(self.unit, self.loader, max_steps=done + k * (n + 1), callbacks=cbs)
        if window is None:
            return 0.0
        return self.clock.seconds(window.marks[0], window.marks[1])

    def warm_up(self) -> None:
        t0 = time.perf_counter()
        losses: list[torch.Tensor] = []
        self.graphs_before = compiled_graph_count()
        self.run(self.s.warmup - 1, losses=losses, timed=False)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.result["warmup_s"] = round(time.perf_counter() - t0, 1)
        self.result["graphs_at_warmup"] = compiled_graph_count() - self.graphs_before
        k = self.spec.accum
        n = min(10, len(losses) // k)
        steps = [torch.stack(losses[i * k : (i + 1) * k]).mean() for i in range(n)]
        self.result["first_losses"] = [float(x) for x in torch.stack(steps).float().cpu()]
        if self.device.type == "cuda":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.run(self.s.probe_steps - 1, probe=True, timed=False)
                torch.cuda.synchronize()
            sync = [w for w in caught if "synchroniz" in str(w.message)]
            self.result["sync_violations"] = len(sync)
            self.result["sync_examples"] = sorted({str(w.message)[:160] for w in sync})[:3]
        self.result["status"] = "ok"

    def timed_round(self) -> None:
        cuda = self.device.type == "cuda"
        before = torch.cuda.memory_allocated() if cuda else 0
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        graphs = compiled_graph_count()
        seconds = self.run(self.s.steps)
        self.result["rounds_s"].append(seconds / self.s.steps)
        self.result["graphs_in_rounds"] = self.result.get("graphs_in_rounds", 0) + (
            compiled_graph_count() - graphs
        )
        if cuda:
            peak = (torch.cuda.max_memory_allocated() - before) / 2**30
            self.result["peak_step_mem_gib"] = round(
                max(peak, self.result.get("peak_step_mem_gib", 0.0)), 2
            )


def matmul_ceiling(device: torch.device) -> float | None:
    """Measured bf16 FLOP/s of an 8192^3 matmul (None on a CPU)."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    clock = Clock(device)
    start = clock.mark()
    for _ in range(10):
        a @ b
    return 2 * 8192**3 * 10 / clock.seconds(start, clock.mark())


def summarise(runners: dict[str, Runner], s: Settings, ceiling: float | None) -> dict[str, Any]:
    """Per-variant medians, ratios to the baseline in the same rounds, MFU, parity; bars."""
    device = torch.device(s.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = (
        peak_flops_for(name, torch.bfloat16) if device.type == "cuda" else None
    ) or H100_BF16_DENSE
    out: dict[str, Any] = {}
    for key, r in runners.items():
        res = dict(r.result)
        rounds = res.pop("rounds_s")
        if rounds:
            base = runners.get(r.spec.baseline)
            step = statistics.median(rounds)
            res["ms_per_step"] = round(step * 1e3, 3)
            res["tokens_per_s"] = round(r.tokens_per_step / step)
            flops = transformer_flops_per_token(
                r.n_params,
                r.cfg.n_layer,
                r.cfg.n_head,
                r.cfg.n_embd // r.cfg.n_head,
                r.cfg.block_size,
            )
            res["mfu_vs_989T"] = round(flops * r.tokens_per_step / step / peak, 4)
            if ceiling:
                res["mfu_vs_matmul"] = round(flops * r.tokens_per_step / step / ceiling, 4)
            base_rounds = base.result["rounds_s"] if base is not None else []
            pairs = list(zip(base_rounds, rounds))
            if pairs and base is not r:
                res["ratio_to_baseline"] = round(statistics.median(b / a for b, a in pairs), 4)
                res["overhead_us_per_step"] = round(
                    statistics.median(a - b for b, a in pairs) * 1e6, 1
                )
            res.update(_parity(r, runners))
        out[key] = res
    return out


def _parity(r: Runner, runners: dict[str, Runner]) -> dict[str, float]:
    """Largest relative difference of the first losses from the raw loop's in the same mode."""
    ref_name = "small_raw" if r.spec.small else "raw_compiled" if r.spec.compiled else "raw_eager"
    ref = runners.get(ref_name)
    if ref is None or "first_losses" not in ref.result or "first_losses" not in r.result:
        return {}
    pairs = zip(r.result["first_losses"], ref.result["first_losses"])
    return {"loss_parity_max_rel": round(max(abs(x - y) / abs(y) for x, y in pairs), 6)}


def bars(v: dict[str, Any]) -> dict[str, Any]:
    def get(name: str, field: str) -> Any:
        return v.get(name, {}).get(field)

    checks = {
        "auto_eager_ratio>=0.99": (get("auto_eager", "ratio_to_baseline"), lambda x: x >= 0.99),
        "auto_compiled_ratio>=0.99": (
            get("auto_compiled", "ratio_to_baseline"),
            lambda x: x >= 0.99,
        ),
        "logging_ratio>=0.98": (
            get("auto_compiled_logging", "ratio_to_baseline"),
            lambda x: x >= 0.98,
        ),
        "small_overhead_us<=20": (get("small_auto", "overhead_us_per_step"), lambda x: x <= 20),
        "d2_prefetch_within_5%": (
            get("d2_prefetch_on", "ratio_to_baseline"),
            lambda x: x >= 1 / 1.05,
        ),
    }
    return {
        k: {"value": val, "pass": None if val is None else bool(ok(val))}
        for k, (val, ok) in checks.items()
    }


COLUMNS = [
    "ms_per_step",
    "tokens_per_s",
    "ratio_to_baseline",
    "overhead_us_per_step",
    "mfu_vs_989T",
    "mfu_vs_matmul",
    "peak_step_mem_gib",
    "graphs_at_warmup",
    "graphs_in_rounds",
    "sync_violations",
    "loss_parity_max_rel",
    "warmup_s",
    "status",
]


def render_table(report: dict[str, Any]) -> str:
    """The markdown table of a report (variants, then the bars)."""
    lines = ["| variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, res in report["variants"].items():
        cells = [str(res.get(c, "")) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| bar | value | pass |", "|---|---|---|"]
    for name, bar in report["bars"].items():
        lines.append(f"| {name} | {bar['value']} | {bar['pass']} |")
    return "\n".join(lines)


def _meta(s: Settings) -> dict[str, Any]:
    cuda = s.device.startswith("cuda")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "settings": asdict(s),
    }


def run_benchmark(s: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Set up every variant (stopping set-up at 60 % of the budget), then interleaved rounds
    until the budget; writes JSON and markdown under ``s.out`` after every phase."""
    t0 = time.perf_counter()
    device = torch.device(s.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    report: dict[str, Any] = {"meta": _meta(s), "matmul_flops": matmul_ceiling(device)}
    specs = [sp for sp in SPECS if not s.only or sp.name in s.only]
    runners: dict[str, Runner] = {}
    for spec in specs:
        if time.perf_counter() - t0 > 0.6 * s.budget_s:
            log(f"budget: {spec.name} not set up")
            continue
        runner = Runner(spec, s)
        try:
            runner.setup()
            runner.warm_up()
        except Exception as exc:  # e.g. reduce-overhead failing: recorded, not fatal
            runner.result["status"] = f"fails with {type(exc).__name__}: {str(exc)[:300]}"
        runners[spec.name] = runner
        log(f"{spec.name}: {runner.result['status']} ({time.perf_counter() - t0:.0f} s)")
    live = [r for r in runners.values() if r.result["status"] == "ok"]
    for i in range(s.rounds):
        if time.perf_counter() - t0 > s.budget_s:
            log(f"budget: stopped after {i} rounds")
            break
        for r in live if i % 2 == 0 else live[::-1]:  # interleaved, alternating order
            try:
                r.timed_round()
            except Exception as exc:
                r.result["status"] = f"fails in a round with {type(exc).__name__}: {str(exc)[:300]}"
                live = [x for x in live if x is not r]
        report["variants"] = summarise(runners, s, report["matmul_flops"])
        report["bars"] = bars(report["variants"])
        _write(report, s.out)
    report["variants"] = summarise(runners, s, report["matmul_flops"])
    report["bars"] = bars(report["variants"])
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    _write(report, s.out)
    return report


def _write(report: dict[str, Any], out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu_gpt2.json"), "w") as f:
        json.dump(report, f, indent=1)
    if "variants" in report:
        with open(os.path.join(out, "gpu_gpt2.md"), "w") as f:
            f.write(render_table(report) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny model and counts (CPU smoke test)")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--budget-s", type=float, default=420.0)
    p.add_argument("--rounds", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--backend", help="compile backend (default inductor; eager with --tiny)")
    p.add_argument("--only", nargs="*", default=(), help="variant names to run")
    a = p.parse_args(argv)
    s = Settings(device=a.device, out=a.out, budget_s=a.budget_s, only=tuple(a.only))
    s = tiny_settings(s) if a.tiny else s
    changes = {
        k: v for k, v in (("rounds", a.rounds), ("steps", a.steps), ("backend", a.backend)) if v
    }
    return replace(s, **changes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    s = parse_args(argv)
    report = run_benchmark(s)
    print(render_table(report))
    return report


if __name__ == "__main__":
    main()
