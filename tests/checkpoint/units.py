"""Small units and helpers shared by the checkpoint tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from torchkit import EvalUnit, TrainUnit

Batch = tuple[torch.Tensor, torch.Tensor]
SCRIPT = str(Path(__file__).with_name("resume_script.py"))
REPO = str(Path(__file__).resolve().parents[2])


class FitUnit(TrainUnit[Batch], EvalUnit[Batch]):
    """Dropout MLP, AdamW, per-step LambdaLR; eval writes ``eval/loss`` into state.metrics."""

    def __init__(self, hidden: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.Dropout(0.2), torch.nn.Linear(hidden, 1)
        )
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-2)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 0.95**s)
        self.saved_ids: list[str] = []
        self.eval_losses: list[float] = []

    def train_step(self, state: Any, data: Batch) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self.net(data[0]), data[1])
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        self.sched.step()
        return loss.detach()

    def eval_step(self, state: Any, data: Batch) -> None:
        loss = float(torch.nn.functional.mse_loss(self.net(data[0]), data[1]))
        if self.eval_losses:
            state.metrics["eval/loss"] = self.eval_losses.pop(0)
        else:
            state.metrics["eval/loss"] = loss

    def on_checkpoint_save(self, state: Any, checkpoint_id: str) -> None:
        self.saved_ids.append(checkpoint_id)


def batches(n: int = 4, batch_size: int = 2, seed: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch_size, 4, generator=g), torch.randn(batch_size, 1, generator=g))
        for _ in range(n)
    ]


def names(urls: list[str]) -> list[str]:
    return [u.rstrip("/").rsplit("/", 1)[-1] for u in urls]


def run_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def popen_script(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip


def load_result(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = torch.load(path, weights_only=False)
    return out


def same_params(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
