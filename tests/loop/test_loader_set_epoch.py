"""The loop calls ``set_epoch`` on any loader object that has one, before each epoch."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from torchkit import train
from torchkit.testing import DummyTrainUnit


class EpochAwareLoader:
    """Not a DataLoader: an iterable with its own ``set_epoch`` (like a MultiDataLoader)."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.sampler = None

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(2):
            yield torch.randn(2, 2), torch.tensor([0, 1])


def test_train_calls_the_loaders_own_set_epoch_every_epoch() -> None:
    loader = EpochAwareLoader()
    train(DummyTrainUnit(2), loader, max_epochs=3)
    assert loader.epochs == [0, 1, 2]
