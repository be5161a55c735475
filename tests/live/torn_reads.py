"""The torn-read check shared by the CPU, mutation-control and GPU tests.

A ``Linear(4096, 1, bias=False)`` starts at zero and its train step adds exactly 1.0 to every
weight, so after step ``s`` every weight equals ``s``. ``PublishWeights`` publishes every step
while reader threads loop on ``acquire()``. A clean read has all weights equal (one version),
equal to the snapshot's ``train_step``, and versions that never go backwards.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchkit import Callback, State, TrainUnit, train
from torchkit.live import LiveModel, PublishWeights


class AddOneUnit(TrainUnit[int]):
    """Every step adds exactly 1.0 to every weight (no optimizer, no gradients)."""

    def __init__(self, device: str = "cpu", sleep_cycles: int = 0) -> None:
        super().__init__()
        self.module = nn.Linear(4096, 1, bias=False, device=device)
        with torch.no_grad():
            self.module.weight.zero_()
        self.sleep_cycles = sleep_cycles

    def train_step(self, state: State, data: int) -> None:
        with torch.no_grad():
            self.module.weight.add_(1.0)


@dataclass
class TornReadReport:
    reads: int = 0
    torn: int = 0  # min != max: weights from two versions
    wrong_step: int = 0  # the weights are not the ones of the step the snapshot claims
    backwards: int = 0  # a reader saw a version older than one it saw before
    versions: set[int] = field(default_factory=set)


class _Seen:
    """The newest version any reader has read, so the trainer can let readers catch up."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = -1

    def saw(self, version: int) -> None:
        with self.cond:
            self.version = max(self.version, version)
            self.cond.notify_all()


class _CatchUp(Callback):
    """Every ``every`` steps, wait (bounded) until a reader has read the newest version: on a
    loaded machine the OS may otherwise starve the readers for the whole run."""

    def __init__(self, live: LiveModel, seen: _Seen, every: int = 20) -> None:
        self.live, self.seen, self.every = live, seen, every

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed % self.every == 0:
            with self.seen.cond:
                self.seen.cond.wait_for(lambda: self.seen.version >= self.live.version, 10)


def _reader(
    live: LiveModel,
    started: threading.Barrier,
    done: threading.Event,
    out: list[tuple[int, int, torch.Tensor]],
    sleep_cycles: int,
    seen: _Seen,
    hold_across_publish: bool,
) -> None:
    """Loop on ``acquire()``. With ``hold_across_publish`` the reader also keeps the snapshot
    until a newer version is out (bounded) and reads it again: a publisher that writes a held
    copy is then caught on every such read, however the threads happen to be scheduled."""
    stream = torch.cuda.Stream() if live.device.type == "cuda" else None
    ctx: Any = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
    started.wait()
    with ctx:
        while not done.is_set():
            with live.acquire() as snap:
                w = snap.module.weight
                if sleep_cycles:
                    torch.cuda._sleep(sleep_cycles)  # the reads land late on this stream
                # read on the device and let go before looking at the values on the host: on
                # CUDA the next write into this copy must wait for these kernels
                reads = [torch.stack([w.min(), w.max(), w[0, 0]])]
                if hold_across_publish:
                    live.wait_for_version(snap.version + 1, timeout=1.0)
                    reads.append(torch.stack([w.min(), w.max(), w[0, 0]]))
            out.extend((snap.version, snap.train_step, vals) for vals in reads)
            seen.saw(snap.version)
            # Wait for a newer version before the next read: on a loaded machine the OS would
            # otherwise run readers and trainer in long alternating slices, and the reads
            # would bunch on a few versions.
            live.wait_for_version(snap.version + 1, timeout=0.05)


def run_torn_read_check(
    live_cls: type[LiveModel] = LiveModel,
    *,
    steps: int = 2000,
    device: str = "cpu",
    sleep_cycles: int = 0,
    num_readers: int = 2,
) -> TornReadReport:
    unit = AddOneUnit(device)
    live = live_cls.from_module(unit.module, buffers=3)
    if sleep_cycles:
        _sleep_after_copy(live, sleep_cycles)
    started = threading.Barrier(num_readers + 1)
    done = threading.Event()
    seen = _Seen()
    outs: list[list[tuple[int, int, torch.Tensor]]] = [[] for _ in range(num_readers)]
    readers = [
        threading.Thread(
            target=_reader, args=(live, started, done, out, sleep_cycles, seen, i % 2 == 1)
        )
        for i, out in enumerate(outs)
    ]
    for r in readers:
        r.start()
    started.wait()
    try:
        cb = PublishWeights(live, every_n_train_steps=1, on_train_end=False)
        train(unit, range(steps), max_epochs=1, callbacks=[cb, _CatchUp(live, seen)])
    finally:
        done.set()
        for r in readers:
            r.join()
    assert unit.module.weight[0, 0].item() == steps
    return _report(outs)


def _sleep_after_copy(live: LiveModel, cycles: int) -> None:
    """Delay the training stream after every copy, so the host runs ahead of the device."""
    copy_into = live._copy_into

    def delayed(slot: Any, sources: Any) -> None:
        copy_into(slot, sources)
        torch.cuda._sleep(cycles)

    live._copy_into = delayed  # type: ignore[method-assign]


def _report(outs: list[list[tuple[int, int, torch.Tensor]]]) -> TornReadReport:
    report = TornReadReport()
    for out in outs:
        last = -1
        for version, step, vals in out:
            lo, hi, first = vals.tolist()
            report.reads += 1
            report.torn += lo != hi
            report.wrong_step += first != step
            report.backwards += version < last
            last = max(last, version)
            report.versions.add(version)
    return report


def assert_no_torn_reads(report: TornReadReport) -> None:
    assert report.torn == 0, f"{report.torn} of {report.reads} reads mixed two versions"
    assert report.wrong_step == 0, (
        f"{report.wrong_step} of {report.reads} reads had weights of another step"
    )
    assert report.backwards == 0, f"versions went backwards {report.backwards} times"
    assert len(report.versions) >= 50, f"only {len(report.versions)} distinct versions seen"
