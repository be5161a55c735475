"""Data-parallel training with AutoUnit and DDP, launched by torchrun.

Run on one machine with two CPU processes (gloo)::

    torchrun --nproc_per_node=2 examples/ddp_torchrun.py

On several nodes, run on every node (``--node_rank`` 0..N-1)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 \
        --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 examples/ddp_torchrun.py

Each rank reads its own shard of the data (``DistributedSampler``); gradients are averaged
once per optimizer step (non-final micro-batches of an accumulation window skip the
all-reduce). Rank 0 prints the final loss and a weight checksum, identical on every rank.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from torchkit import AutoUnit, train
from torchkit.loop.state import State
from torchkit.utils import get_global_rank, init_from_env, seed

Batch = tuple[torch.Tensor, torch.Tensor]


class Regression(AutoUnit[Batch]):
    """A small MLP regressor trained with AdamW and a per-step cosine schedule."""

    def __init__(self, *, total_steps: int, **kwargs: Any) -> None:
        self.total_steps = total_steps
        super().__init__(**kwargs)
        self.last_loss = torch.zeros(())

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(self, module: nn.Module) -> Any:
        opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.total_steps)

    def on_train_step_end(self, state: State, data: Batch, step: int, results: Any) -> None:
        self.last_loss = results.loss  # stays on device: no sync per step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--accumulation", type=int, default=2)
    args = parser.parse_args()

    device = init_from_env()  # joins the process group torchrun describes (gloo on CPU)
    seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g)
    y = x @ torch.randn(16, 1, generator=g) + 0.1 * torch.randn(512, 1, generator=g)
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset) if dist.is_initialized() else None
    loader = DataLoader(dataset, batch_size=32, sampler=sampler, shuffle=sampler is None)
    steps = args.epochs * len(loader) // args.accumulation
    unit = Regression(
        total_steps=max(steps, 1),
        module=nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1)),
        device=device,
        strategy="ddp" if dist.is_initialized() else "noop",
        gradient_accumulation_steps=args.accumulation,
        step_lr_interval="step",
        clip_grad_norm=1.0,
    )
    train(unit, loader, max_epochs=args.epochs)
    checksum = sum(p.detach().double().sum() for p in unit.module.parameters())
    # note: host reads, once, after training
    print(
        f"rank={get_global_rank()} steps={unit.num_optimizer_steps} "
        f"loss={float(unit.last_loss):.4f} checksum={float(checksum):.6f}",
        flush=True,
    )
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
