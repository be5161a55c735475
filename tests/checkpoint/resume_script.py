"""Subprocess driver for the exact-resume, crash and preemption tests (run as a script).

Trains a dropout MLP with AdamW, a per-step LR schedule and a shuffling StatefulDataLoader,
with ``train`` or ``fit`` (eval every 4 global steps), checkpointing with
``DistributedCheckpointSaver``; writes the final parameters and probes to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from typing import Any

import numpy as np
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from torchkit import EvalUnit, TrainUnit, fit, train
from torchkit.callbacks import Callback, DistributedCheckpointSaver

Batch = tuple[torch.Tensor, torch.Tensor]


class Unit(TrainUnit[Batch], EvalUnit[Batch]):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1234)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1)
        )
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-2, weight_decay=0.1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 0.9**s)

    def train_step(self, state: Any, data: Batch) -> torch.Tensor:
        x, y = data
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        self.sched.step()
        return loss.detach()

    def eval_step(self, state: Any, data: Batch) -> torch.Tensor:
        x, y = data
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        state.metrics["eval/loss"] = float(loss)
        return loss


class TokenUnit(Unit):
    """``Unit`` whose samples count ``tokens_per_sample`` tokens each (for ``tok`` budgets)."""

    tokens_per_sample = 16

    def count_tokens(self, batch: Batch) -> int:
        return batch[0].shape[0] * self.tokens_per_sample


def probe() -> list[float]:
    """The next python, numpy and torch random draws, without consuming them."""
    with torch.random.fork_rng():
        t = torch.rand(2).tolist()
    py_state, np_state = random.getstate(), np.random.get_state()
    out = [*t, random.random(), float(np.random.rand())]
    random.setstate(py_state)
    np.random.set_state(np_state)
    return out


class Driver(Callback):
    """Test-only actions at step boundaries: kill, signal, probe, slow down."""

    def __init__(self, args: argparse.Namespace, probes: dict[str, Any]) -> None:
        self.args = args
        self.probes = probes

    def on_train_step_start(self, state: Any, unit: Any) -> None:
        n = unit.train_progress.num_steps_completed
        if self.args.sigterm_at_step is not None and n + 1 == self.args.sigterm_at_step:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_step_end(self, state: Any, unit: Any) -> None:
        n = unit.train_progress.num_steps_completed
        if n == self.args.probe_at:
            self.probes["probe"] = probe()
        if self.args.ready_file and n == 3:
            open(self.args.ready_file, "w").close()
        if self.args.sleep:
            time.sleep(self.args.sleep)
        if n == self.args.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_eval_step_start(self, state: Any, unit: Any) -> None:
        at = self.args.sigterm_in_eval_at
        if at is not None and unit.train_progress.num_steps_completed == at:
            os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["train", "fit"], default="train")
    p.add_argument("--dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-steps", type=int, default=15)
    p.add_argument("--save-every", type=int, default=4)
    p.add_argument("--keep", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-after", type=int, default=None)
    p.add_argument("--kill-in-commit", type=int, default=None)
    p.add_argument("--sigterm-at-step", type=int, default=None)
    p.add_argument("--sigterm-in-eval-at", type=int, default=None)
    p.add_argument("--probe-at", type=int, default=None)
    p.add_argument("--ready-file", default=None)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--async-save", action="store_true")
    p.add_argument("--max-duration", default=None, help="e.g. 1e3tok (replaces --max-steps)")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    g = torch.Generator().manual_seed(7)
    ds = torch.utils.data.TensorDataset(
        torch.randn(24, 4, generator=g), torch.randn(24, 1, generator=g)
    )
    train_dl = StatefulDataLoader(ds, batch_size=4, shuffle=True)
    eval_dl = StatefulDataLoader(ds, batch_size=8, shuffle=False)
    unit = TokenUnit() if args.max_duration else Unit()
    max_steps = None if args.max_duration else args.max_steps
    probes: dict[str, Any] = {}
    if args.kill_in_commit is not None:
        import torchkit.checkpoint.dcp_io as dcp_io

        real = dcp_io.write_commit_marker
        calls = {"n": 0}

        def crash(url: str, info: dict[str, Any]) -> None:
            calls["n"] += 1
            if calls["n"] == args.kill_in_commit:
                os.kill(os.getpid(), signal.SIGKILL)  # data written, marker not yet
            real(url, info)

        dcp_io.write_commit_marker = crash  # type: ignore[assignment]
    if args.resume:
        restored = DistributedCheckpointSaver.restore_from_latest(
            args.dir, unit, train_dataloader=train_dl, eval_dataloader=eval_dl
        )
        probes["restored"] = restored
        probes["probe"] = probe()
        probes["resumed_at"] = unit.train_progress.num_steps_completed
    saver = DistributedCheckpointSaver(
        args.dir,
        save_every_n_train_steps=args.save_every,
        keep_last_n_checkpoints=args.keep,
        async_checkpoint=args.async_save,
    )
    cbs = [saver, Driver(args, probes)]
    if args.mode == "train":
        state = train(
            unit, train_dl, max_steps=max_steps, max_duration=args.max_duration, callbacks=cbs
        )
    else:
        state = fit(
            unit, train_dl, eval_dl, max_steps=max_steps, evaluate_every_n_steps=4,
            evaluate_every_n_epochs=None, callbacks=cbs, max_duration=args.max_duration,
        )  # fmt: skip
    torch.save(
        {
            "params": {k: v.clone() for k, v in unit.net.state_dict().items()},
            "steps": unit.train_progress.num_steps_completed,
            "eval_epochs": unit.eval_progress.num_epochs_completed,
            "preempted": state.preempted,
            "tokens": state.duration_tracker.tokens if state.duration_tracker else None,
            "checkpoints": saver.retained_checkpoints,
            **probes,
        },
        args.out,
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
