"""Small units that follow AutoUnit's contract without depending on it: steps return
``(loss, outputs)`` and update ``train_metrics`` / ``eval_metrics``, never compute them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics.classification import MulticlassAccuracy

from torchkit import EvalUnit, State, TrainUnit
from torchkit.testing import generate_random_dataloader

Batch = tuple[torch.Tensor, torch.Tensor]


def loader(n: int = 16, batch_size: int = 4, dim: int = 4) -> Any:
    return generate_random_dataloader(n, dim, batch_size)


class ClassifierUnit(TrainUnit[Batch], EvalUnit[Batch]):
    """Linear classifier with accuracy metrics on both phases."""

    def __init__(self, dim: int = 4, lr: float = 0.1, with_metrics: bool = True) -> None:
        super().__init__()
        self.module = torch.nn.Linear(dim, 2)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=lr)
        self.train_metrics = MulticlassAccuracy(num_classes=2) if with_metrics else None
        self.eval_metrics = MulticlassAccuracy(num_classes=2) if with_metrics else None
        self.train_losses: list[torch.Tensor] = []

    def update_metrics(self, metrics: Any, outputs: torch.Tensor, y: torch.Tensor) -> None:
        if metrics is not None:
            metrics.update(outputs, y)

    def train_step(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        outputs = self.module(x)
        loss = torch.nn.functional.cross_entropy(outputs, y)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.update_metrics(self.train_metrics, outputs.detach(), y)
        self.train_losses.append(loss.detach())
        return loss.detach(), outputs.detach()

    def eval_step(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        outputs = self.module(x)
        self.update_metrics(self.eval_metrics, outputs, y)
        return torch.nn.functional.cross_entropy(outputs, y), outputs


class ScriptedEvalUnit(ClassifierUnit):
    """Its eval loss in epoch ``e`` (1-based) is ``values[e - 1]`` for every batch, so
    ``eval/loss`` follows a scripted sequence; ``eval/score`` mirrors it via an attribute."""

    def __init__(self, values: Sequence[float], dim: int = 4) -> None:
        super().__init__(dim=dim, with_metrics=False)
        self.values = list(values)
        self.score = 0.0
        self.params_after_epoch: list[dict[str, torch.Tensor]] = []

    def eval_step(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        value = self.values[self.eval_progress.num_epochs_completed]
        self.score = value
        return torch.tensor(value), torch.zeros(data[0].shape[0], 2)

    def on_train_epoch_end(self, state: State) -> None:
        self.params_after_epoch.append(
            {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        )
