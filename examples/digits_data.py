"""Data and model of the digits example as classes a config file can name by ``class_path``.

``examples/digits.yaml`` builds these (run from the repository root, where ``examples`` is
importable)::

    torchkit fit --config examples/digits.yaml
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.utils.data import DataLoader

from examples.digits import load_digits_split

Batch = tuple[torch.Tensor, torch.Tensor]


class DigitsLoader(DataLoader[Batch]):
    """A ``DataLoader`` over one split of scikit-learn's bundled digits (80/20, stratified).

    Args:
        split: ``"train"`` or ``"test"``.
        batch_size: the batch size.
        shuffle: reshuffle every epoch.
        seed: the seed of the train/test split (the same split as ``examples/digits.py``).
    """

    def __init__(
        self,
        split: Literal["train", "test"] = "train",
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        train_ds, test_ds = load_digits_split(seed)
        dataset = train_ds if split == "train" else test_ds
        super().__init__(dataset, batch_size=batch_size, shuffle=shuffle)


class DigitsMLP(torch.nn.Sequential):
    """The MLP of ``examples/digits.py``: 64 -> hidden -> 10 with ReLU and dropout.

    Args:
        hidden: the hidden width.
        dropout: the dropout probability.
    """

    def __init__(self, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__(
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, 10),
        )
