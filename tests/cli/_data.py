"""Datasets and models the CLI tests build by class_path."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class RandomRegression(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``num_samples`` fixed random ``(x, y)`` pairs, drawn from their own generator.

    Args:
        num_samples: how many pairs.
        input_dim: the width of ``x``.
        seed: the generator's seed (the data never depends on the global RNG).
    """

    def __init__(self, num_samples: int = 64, input_dim: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, input_dim, generator=g)
        self.y = self.x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(num_samples, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class MLP(torch.nn.Sequential):
    """A two-layer MLP (the module of the equivalence tests).

    Args:
        input_dim: the input width.
        hidden: the hidden width.
    """

    def __init__(self, input_dim: int = 4, hidden: int = 8) -> None:
        super().__init__(
            torch.nn.Linear(input_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )


class RandomRegressionLoader(DataLoader[tuple[torch.Tensor, torch.Tensor]]):
    """A ``DataLoader`` over ``RandomRegression`` with plain arguments.

    (jsonargparse 4.53 drops the ``init_args`` of a dataset nested in ``DataLoader``, whose
    ``dataset`` parameter is the generic ``Dataset[T]``; a loader class avoids the nesting.)

    Args:
        num_samples: how many pairs.
        input_dim: the width of ``x``.
        seed: the data generator's seed.
        batch_size: the batch size.
        shuffle: reshuffle every epoch (draws from the global torch RNG).
    """

    def __init__(
        self,
        num_samples: int = 64,
        input_dim: int = 4,
        seed: int = 0,
        batch_size: int = 16,
        shuffle: bool = False,
    ) -> None:
        super().__init__(
            RandomRegression(num_samples, input_dim, seed), batch_size=batch_size, shuffle=shuffle
        )
