"""Small units and models shared by the live tests."""

from __future__ import annotations

import torch
from torch import nn

from torchkit import AutoUnit, Callback, State, TrainUnit

Batch = tuple[torch.Tensor, torch.Tensor]


def batches(n: int, seed: int = 0, dim: int = 3, size: int = 8) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, dim, generator=g), torch.randn(size, 1, generator=g)) for _ in range(n)
    ]


class StatefulNet(nn.Module):
    """Parameters, BatchNorm running stats, a frozen (eval-mode) BatchNorm and a
    non-persistent buffer that changes every forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.frozen = nn.BatchNorm1d(4)
        with torch.no_grad():
            self.frozen.running_mean.uniform_(-1, 1)
        self.head = nn.Linear(4, 1)
        self.register_buffer("seen", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += x.shape[0]
        return self.head(self.frozen(self.bn(self.lin(x))))


class SGDUnit(TrainUnit[Batch]):
    """Plain TrainUnit: MSE, SGD with momentum, gradients zeroed in place (kept alive)."""

    def __init__(self, module: nn.Module | None = None) -> None:
        super().__init__()
        self.module = module if module is not None else StatefulNet()
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=0.05, momentum=0.9)

    def on_train_epoch_start(self, state: State) -> None:
        if isinstance(self.module, StatefulNet):
            self.module.frozen.eval()  # the user's frozen submodule

    def train_step(self, state: State, data: Batch) -> torch.Tensor:
        x, y = data
        loss = nn.functional.mse_loss(self.module(x), y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=False)
        return loss.detach()


class MSEAutoUnit(AutoUnit[Batch]):
    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(
        self, module: nn.Module
    ) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9), None


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))


class OnStep(Callback):
    """Runs ``fn(state, unit)`` at every train step end."""

    def __init__(self, fn: object) -> None:
        self.fn = fn

    def on_train_step_end(self, state: State, unit: object) -> None:
        self.fn(state, unit)  # type: ignore[operator]
