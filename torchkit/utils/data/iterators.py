"""The iterators behind each strategy: ``{name: batch}`` per step, resumable at any step."""

from __future__ import annotations

from typing import Any

from torchkit.utils.data._base import END as _END
from torchkit.utils.data._base import MultiIterator, StatefulMultiIterator
from torchkit.utils.data._children import BlockRandom
from torchkit.utils.data.strategies import (
    AllDatasetBatches,
    InOrder,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)

__all__ = [
    "AllDatasetBatchesIterator",
    "InOrderIterator",
    "MultiIterator",
    "RandomizedBatchSamplerIterator",
    "RoundRobinIterator",
    "StatefulMultiIterator",
]

_ALL = StoppingMechanism.ALL_DATASETS_EXHAUSTED
_SMALLEST = StoppingMechanism.SMALLEST_DATASET_EXHAUSTED
_RESTART = StoppingMechanism.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED


class RoundRobinIterator(StatefulMultiIterator):
    """``RoundRobin``: one loader's batch per step, in turn (TNT's ``RoundRobinIterator``).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loaders = {"a": DataLoader(range(4), batch_size=4),
        ...            "b": DataLoader(range(15), batch_size=5)}
        >>> [list(d) for d in RoundRobinIterator(loaders, RoundRobin())]
        [['a'], ['b'], ['b'], ['b']]
    """

    iteration_strategy: RoundRobin

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._order = self.iteration_strategy.iteration_order or list(self._names)
        self._smallest = self.iteration_strategy.stopping_mechanism == _SMALLEST
        self._position = 0

    def _position_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def _load_position(self, state_dict: dict[str, Any]) -> None:
        self._position = int(state_dict["position"])

    def __next__(self) -> dict[str, Any]:
        if not self._started:
            self.start()
        order, exhausted, iters = self._order, self._exhausted, self._iters
        while not self._done:
            if len(exhausted) == len(self._names):
                self._done = True
                break
            name = order[self._position]
            self._position = (self._position + 1) % len(order)
            if name in exhausted:
                continue
            try:  # _read, inlined: this is the per-batch path
                batch = next(iters[name])
            except StopIteration:
                if self._yielded[name] == 0:
                    self._found_empty(name)
                    continue
                if self._smallest:
                    self._done = True
                    break
                self._close(name)
                continue
            self._yielded[name] += 1
            return {name: batch}
        raise StopIteration


class AllDatasetBatchesIterator(StatefulMultiIterator):
    """``AllDatasetBatches``: a batch from every loader per step (TNT's iterator).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loaders = {"a": DataLoader(range(4), batch_size=4),
        ...            "b": DataLoader(range(15), batch_size=5)}
        >>> [sorted(d) for d in AllDatasetBatchesIterator(loaders, AllDatasetBatches())]
        [['a', 'b'], ['b'], ['b']]
    """

    iteration_strategy: AllDatasetBatches

    def __next__(self) -> dict[str, Any]:
        if not self._started:
            self.start()
        mech = self.iteration_strategy.stopping_mechanism
        out: dict[str, Any] = {}
        for name in self._names:
            if self._done:
                raise StopIteration
            if name in self._exhausted:
                continue
            batch = self._read(name)
            if batch is _END and name not in self._empty:
                batch = self._on_end(name, mech)
            if batch is not _END:
                out[name] = batch
        if not out:
            self._done = True
        if self._done:
            raise StopIteration
        return out

    def _on_end(self, name: str, mech: StoppingMechanism) -> Any:
        if mech == _SMALLEST:
            self._done = True
        elif mech == _RESTART:
            self._finished.add(name)
            if self._all_finished():
                self._done = True
            else:
                self._reopen(name)
                return self._read(name)
        else:
            self._close(name)
        return _END


class RandomizedBatchSamplerIterator(StatefulMultiIterator):
    """``RandomizedBatchSampler``: a batch from a randomly drawn loader per step.

    Draws are made from the ``MultiDataLoader``'s seeded generator (a fresh one seeded with
    the strategy's seed when used alone), among the loaders that can still be read, in
    sorted name order.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loaders = {"a": DataLoader(range(4), batch_size=4),
        ...            "b": DataLoader(range(15), batch_size=5)}
        >>> batches = list(RandomizedBatchSamplerIterator(loaders, RandomizedBatchSampler()))
        >>> sorted(name for d in batches for name in d)
        ['a', 'b', 'b', 'b']
    """

    iteration_strategy: RandomizedBatchSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._rng is None:
            self._rng = BlockRandom(self.iteration_strategy.seed)
        weights = self.iteration_strategy.weights
        self._weights = {n: 1.0 if weights is None else weights[n] for n in self._names}
        self._candidates: list[tuple[str, float]] | None = None

    def _close(self, name: str) -> None:
        super()._close(name)
        self._candidates = None

    def _pick(self) -> str | None:
        if self._candidates is None:
            skip = self._exhausted if self.iteration_strategy.stopping_mechanism == _ALL else ()
            self._candidates = [
                (n, self._weights[n])
                for n in sorted(self._names)
                if n not in skip and n not in self._empty and self._weights[n] > 0
            ]
        if not self._candidates:
            return None
        total = sum(w for _, w in self._candidates)
        u = self._rng.random() * total  # type: ignore[union-attr]
        for name, w in self._candidates:
            u -= w
            if u < 0:
                return name
        return self._candidates[-1][0]

    def __next__(self) -> dict[str, Any]:
        if not self._started:
            self.start()
        mech = self.iteration_strategy.stopping_mechanism
        while not self._done:
            name = self._pick()
            if name is None:
                self._done = True
                break
            batch = self._read(name)
            if batch is _END and name not in self._empty:
                if mech == _SMALLEST:
                    self._done = True
                    break
                if mech == _ALL:
                    self._close(name)
                    continue
                if mech == _RESTART:
                    self._finished.add(name)
                    if self._all_finished():
                        self._done = True
                        break
                self._reopen(name)
                batch = self._read(name)
            if batch is not _END:
                return {name: batch}
        raise StopIteration


class InOrderIterator(StatefulMultiIterator):
    """``InOrder``: each loader to its end, in order (TNT's ``InOrderIterator``).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loaders = {"a": DataLoader(range(4), batch_size=4),
        ...            "b": DataLoader(range(15), batch_size=5)}
        >>> [list(d) for d in InOrderIterator(loaders, InOrder())]
        [['a'], ['b'], ['b'], ['b']]
    """

    iteration_strategy: InOrder

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._order = self.iteration_strategy.iteration_order or list(self._names)
        self._position = 0

    def _position_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def _load_position(self, state_dict: dict[str, Any]) -> None:
        self._position = int(state_dict["position"])

    def _initial(self) -> list[str]:
        return [self._order[self._position]]

    def __next__(self) -> dict[str, Any]:
        if not self._started:
            self.start()
        while not self._done:
            name = self._order[self._position]
            batch = self._read(name)
            if batch is not _END:
                return {name: batch}
            self._iters.pop(name, None)
            self._position += 1
            if self._position >= len(self._order):
                self._done = True
                break
            self._reopen(self._order[self._position])
        raise StopIteration
