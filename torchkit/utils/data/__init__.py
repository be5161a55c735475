"""Several dataloaders as one: ``MultiDataLoader`` and its strategies (TorchTNT's names)."""

from torchkit.utils.data.iterators import (
    AllDatasetBatchesIterator,
    InOrderIterator,
    MultiIterator,
    RandomizedBatchSamplerIterator,
    RoundRobinIterator,
)
from torchkit.utils.data.multi_dataloader import DataIterationStrategyRegistry, MultiDataLoader
from torchkit.utils.data.strategies import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)

__all__ = [
    "AllDatasetBatches",
    "AllDatasetBatchesIterator",
    "DataIterationStrategy",
    "DataIterationStrategyRegistry",
    "InOrder",
    "InOrderIterator",
    "MultiDataLoader",
    "MultiIterator",
    "RandomizedBatchSampler",
    "RandomizedBatchSamplerIterator",
    "RoundRobin",
    "RoundRobinIterator",
    "StoppingMechanism",
]
