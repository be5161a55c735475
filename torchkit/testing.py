"""Public test helpers: process launching, dummy units and random dataloaders."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from torchkit.loop.state import State
from torchkit.units.unit import EvalUnit, PredictUnit, TestUnit, TrainUnit
from torchkit.utils.distributed import launch_processes, spawn_multi_process

__all__ = [
    "DummyEvalUnit",
    "DummyFitUnit",
    "DummyPredictUnit",
    "DummyTestUnit",
    "DummyTrainUnit",
    "RandomDataset",
    "generate_random_dataloader",
    "generate_random_dataset",
    "launch_processes",
    "spawn_multi_process",
]

Batch = tuple[torch.Tensor, torch.Tensor]


class RandomDataset(Dataset[Batch]):
    """``num_samples`` random ``(x, y)`` pairs: ``x`` of shape ``(input_dim,)``, ``y`` in {0, 1}.

    Args:
        num_samples: dataset length.
        input_dim: feature size.
        seed: generator seed, so the data is the same on every rank and run.

    Example:
        >>> len(RandomDataset(5, 3))
        5
    """

    def __init__(self, num_samples: int, input_dim: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, input_dim, generator=g)
        self.y = torch.randint(0, 2, (num_samples,), generator=g)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> Batch:
        return self.x[i], self.y[i]


def generate_random_dataset(num_samples: int, input_dim: int, seed: int = 0) -> TensorDataset:
    """A ``TensorDataset`` of random features and binary labels."""
    ds = RandomDataset(num_samples, input_dim, seed)
    return TensorDataset(ds.x, ds.y)


def generate_random_dataloader(
    num_samples: int, input_dim: int, batch_size: int, seed: int = 0, **kwargs: Any
) -> DataLoader[Any]:
    """A ``DataLoader`` over ``generate_random_dataset`` (extra kwargs go to ``DataLoader``).

    Example:
        >>> len(generate_random_dataloader(10, 2, 5))
        2
    """
    return DataLoader(generate_random_dataset(num_samples, input_dim, seed), batch_size, **kwargs)


def _loss(module: torch.nn.Module, data: Batch) -> torch.Tensor:
    x, y = data
    return torch.nn.functional.cross_entropy(module(x), y)


class DummyTrainUnit(TrainUnit[Batch]):
    """A linear classifier trained with SGD; ``train_step`` returns ``(loss, outputs)``.

    Example:
        >>> DummyTrainUnit(input_dim=3).module.in_features
        3
    """

    def __init__(self, input_dim: int, lr: float = 0.01) -> None:
        super().__init__()
        self.module = torch.nn.Linear(input_dim, 2)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=lr)

    def train_step(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        outputs = self.module(x)
        loss = torch.nn.functional.cross_entropy(outputs, y)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), outputs.detach()


class DummyEvalUnit(EvalUnit[Batch]):
    """A linear classifier evaluated with cross-entropy; ``eval_step`` returns the loss."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.module = torch.nn.Linear(input_dim, 2)

    def eval_step(self, state: State, data: Batch) -> torch.Tensor:
        return _loss(self.module, data)


class DummyPredictUnit(PredictUnit[Batch]):
    """A linear classifier; ``predict_step`` returns the logits."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.module = torch.nn.Linear(input_dim, 2)

    def predict_step(self, state: State, data: Batch) -> torch.Tensor:
        return self.module(data[0])


class DummyTestUnit(TestUnit[Batch]):
    """A linear classifier tested with cross-entropy; ``test_step`` returns the loss."""

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.module = torch.nn.Linear(input_dim, 2)

    def test_step(self, state: State, data: Batch) -> torch.Tensor:
        return _loss(self.module, data)


class DummyFitUnit(TrainUnit[Batch], EvalUnit[Batch]):
    """``DummyTrainUnit`` and ``DummyEvalUnit`` in one, for ``fit``."""

    def __init__(self, input_dim: int, lr: float = 0.01) -> None:
        super().__init__()
        self.module = torch.nn.Linear(input_dim, 2)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=lr)

    def train_step(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        loss = _loss(self.module, data)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), torch.empty(0)

    def eval_step(self, state: State, data: Batch) -> torch.Tensor:
        return _loss(self.module, data)
