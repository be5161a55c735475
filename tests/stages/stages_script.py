"""A two-stage run (2 x 4 steps, then 3 x 4) that a test can SIGKILL and re-run.

Stage 2 builds a new unit (handoff="modules"). The script appends the name of each stage
whose ``on_train_start`` ran to ``--log`` and saves the final weights to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from torchkit import State, TrainUnit
from torchkit.callbacks import Lambda
from torchkit.stages import Stage, run_stages

Batch = tuple[torch.Tensor, torch.Tensor]


class Unit(TrainUnit[Batch]):
    """Dropout MLP with AdamW: the weights depend on every batch and every random draw."""

    def __init__(self, stage: str, log: str | None = None) -> None:
        super().__init__()
        self.stage, self.log = stage, log
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1)
        )
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-2)
        self.initial: dict[str, torch.Tensor] = {}
        self.optimizer_state_at_start = -1

    def on_train_start(self, state: State) -> None:
        self.initial = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.optimizer_state_at_start = len(self.opt.state)
        if self.log:
            with open(self.log, "a") as f:
                f.write(self.stage + "\n")

    def train_step(self, state: State, data: Batch) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self.net(data[0]), data[1])
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        return loss.detach()


def loader(seed: int) -> StatefulDataLoader:
    g = torch.Generator().manual_seed(seed)
    ds = torch.utils.data.TensorDataset(
        torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)
    )
    return StatefulDataLoader(ds, batch_size=4, shuffle=True)  # 4 steps per epoch


def make_stages(log: str | None, kill_at: int | None) -> list[Stage]:
    def kill(state: State, unit: Any) -> None:
        if kill_at is not None and unit.train_progress.num_steps_completed == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    torch.manual_seed(0)
    return [
        Stage("pretrain", lambda prev: Unit("pretrain", log), loader(1), max_epochs=2),
        Stage("finetune", lambda prev: Unit("finetune", log), loader(2), max_epochs=3,
              handoff="modules", callbacks=[Lambda(on_train_step_end=kill)]),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--log")
    parser.add_argument("--kill-at", type=int)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = run_stages(make_stages(args.log, args.kill_at), dirpath=args.dir)
    final = results[-1].unit
    steps = final.train_progress.num_steps_completed
    torch.save({"params": final.net.state_dict(), "steps": steps}, args.out)


if __name__ == "__main__":
    main()
