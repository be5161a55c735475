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
    """A ``DataLoader`` over one split of scikit-learn's bundled digits (train / validation /
    test, 72 / 8 / 20 %, stratified: the splits of ``examples/digits.py``).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        batch_size: the batch size.
        shuffle: reshuffle every epoch.
        seed: the seed of the splits.
    """

    def __init__(
        self,
        split: Literal["train", "val", "test"] = "train",
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        splits = dict(zip(("train", "val", "test"), load_digits_split(seed)))
        super().__init__(splits[split], batch_size=batch_size, shuffle=shuffle)


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
