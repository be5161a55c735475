"""TNT-style uses of ``torchtnt.utils.data`` run unchanged against ``torchkit.utils.data``.

Written the way TNT's own ``test_multi_dataloader.py`` drives the API: same imports (only the
package name changes), same constructor arguments, a custom ``MultiIterator`` subclass.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from torchkit.utils.data import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    MultiDataLoader,
    MultiIterator,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)


class RandomDataset(Dataset[torch.Tensor]):
    def __init__(self, size: int, length: int) -> None:
        self.len = length
        self.data = torch.randn(length, size)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index]

    def __len__(self) -> int:
        return self.len


def _loaders(len_1: int = 8, len_2: int = 16) -> dict[str, DataLoader[torch.Tensor]]:
    return {
        "1": DataLoader(RandomDataset(32, len_1), batch_size=8),
        "2": DataLoader(RandomDataset(32, len_2), batch_size=8),
    }


class CustomRandomIterator(MultiIterator):
    """A user iterator: a random remaining loader per step, until all are exhausted."""

    def __init__(
        self, individual_dataloaders: dict[str, Any], iteration_strategy: DataIterationStrategy
    ) -> None:
        super().__init__(individual_dataloaders, iteration_strategy)
        self.individual_iterators = {n: iter(dl) for n, dl in individual_dataloaders.items()}
        self.remaining = list(self.individual_iterators)

    def __next__(self) -> dict[str, Any]:
        while self.remaining:
            name = random.choice(self.remaining)
            try:
                return {name: next(self.individual_iterators[name])}
            except StopIteration:
                self.remaining.remove(name)
        raise StopIteration


def test_round_robin_with_iteration_order() -> None:
    it = iter(MultiDataLoader(_loaders(), RoundRobin(iteration_order=["2", "1"])))
    assert [next(iter(next(it))) for _ in range(3)] == ["2", "1", "2"]
    with pytest.raises(StopIteration):
        next(it)


def test_round_robin_smallest() -> None:
    strategy = RoundRobin(stopping_mechanism=StoppingMechanism.SMALLEST_DATASET_EXHAUSTED)
    it = iter(MultiDataLoader(_loaders(), strategy))
    assert [next(iter(next(it))) for _ in range(2)] == ["1", "2"]
    with pytest.raises(StopIteration):
        next(it)


def test_all_dataset_batches_variants() -> None:
    it = iter(MultiDataLoader(_loaders(), AllDatasetBatches()))
    assert sorted(next(it)) == ["1", "2"] and list(next(it)) == ["2"]
    with pytest.raises(StopIteration):
        next(it)
    restart = AllDatasetBatches(StoppingMechanism.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED)
    assert [sorted(b) for b in MultiDataLoader(_loaders(), restart)] == [["1", "2"]] * 2


def test_custom_iterator_class() -> None:
    mdl = MultiDataLoader(_loaders(), DataIterationStrategy(), CustomRandomIterator)
    batches = list(mdl)
    assert len(batches) == 3 and all(len(b) == 1 for b in batches)


def test_custom_iterator_keeps_child_states_in_state_dict() -> None:
    mdl = MultiDataLoader(_loaders(), DataIterationStrategy(), CustomRandomIterator)
    state = mdl.state_dict()
    assert state["loaders"] == ["1", "2"] and state["iterator_state"] is None


def test_randomized_wrap_around_follows_weights() -> None:
    strategy = RandomizedBatchSampler(
        weights={"1": 1, "2": 100}, stopping_mechanism=StoppingMechanism.WRAP_AROUND_UNTIL_KILLED
    )
    it = iter(MultiDataLoader(_loaders(), strategy))
    counts = Counter(next(it).popitem()[0] for _ in range(25))
    assert counts["2"] > 0.8 * 25


def test_randomized_with_empty_data() -> None:
    loaders = _loaders(len_1=0, len_2=64)
    strategy = RandomizedBatchSampler(weights={"1": 1, "2": 100})
    it = iter(MultiDataLoader(loaders, strategy, ignore_empty_data=True))
    assert Counter(next(it).popitem()[0] for _ in range(8)) == {"2": 8}
    with pytest.raises(ValueError):
        MultiDataLoader(_loaders(len_1=0, len_2=64), strategy)


def test_randomized_all_datasets_exhausted() -> None:
    mdl = MultiDataLoader(_loaders(), RandomizedBatchSampler(weights={"1": 1, "2": 100}))
    trials = [list(iter(mdl)) for _ in range(25)]
    assert all(len(t) == 3 for t in trials)
    assert Counter(t[0].popitem()[0] for t in trials)["2"] > 0.8 * 25


def test_in_order_with_repetitions() -> None:
    it = iter(MultiDataLoader(_loaders(), InOrder(iteration_order=["2", "1", "2"])))
    assert [next(iter(next(it))) for _ in range(5)] == ["2", "2", "1", "2", "2"]
    with pytest.raises(StopIteration):
        next(it)


def test_current_iterator_attribute_and_string_mechanism() -> None:
    mdl = MultiDataLoader(_loaders(), AllDatasetBatches("SMALLEST_DATASET_EXHAUSTED"))
    assert mdl.current_iterator is None
    it = iter(mdl)
    assert mdl.current_iterator is it
    assert str(it).startswith("AllDatasetBatches(")
