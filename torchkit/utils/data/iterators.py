"""The iterators behind each strategy: ``{name: batch}`` per step, resumable at any step."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torchkit.utils.data._children import BlockRandom, Children
from torchkit.utils.data.strategies import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)

logger = logging.getLogger(__name__)

_END: Any = object()
"""Returned by ``_read`` when a child's pass ended."""

_ALL = StoppingMechanism.ALL_DATASETS_EXHAUSTED
_SMALLEST = StoppingMechanism.SMALLEST_DATASET_EXHAUSTED
_RESTART = StoppingMechanism.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED
_WRAP = StoppingMechanism.WRAP_AROUND_UNTIL_KILLED


class MultiIterator(Iterator[dict[str, Any]]):
    """Base class of the iterators a ``MultiDataLoader`` creates each epoch (TNT's API).

    A custom subclass takes ``(individual_dataloaders, iteration_strategy)``, implements
    ``__next__`` returning ``{name: batch}``, and may implement ``state_dict`` /
    ``load_state_dict`` (the loader calls ``load_state_dict`` before the first ``__next__``).

    Args:
        individual_dataloaders: name -> loader.
        iteration_strategy: the strategy this iterator follows.
    """

    def __init__(
        self,
        individual_dataloaders: Mapping[str, Iterable[Any]],
        iteration_strategy: DataIterationStrategy,
    ) -> None:
        self.individual_dataloaders = individual_dataloaders
        self.iteration_strategy = iteration_strategy

    def __str__(self) -> str:
        return str(self.iteration_strategy)

    @abstractmethod
    def __next__(self) -> dict[str, Any]: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return None


class StatefulMultiIterator(MultiIterator):
    """Shared machinery of the built-in iterators: per-child passes, empty-loader detection,
    and a state that holds every flag needed to resume at the exact step.

    Child iterators are created by ``start()`` (``MultiDataLoader.__iter__`` calls it, after
    ``load_state_dict`` when resuming), never at construction.
    """

    def __init__(
        self,
        individual_dataloaders: Mapping[str, Iterable[Any]],
        iteration_strategy: DataIterationStrategy,
        *,
        children: Children | None = None,
        rng: BlockRandom | None = None,
    ) -> None:
        super().__init__(individual_dataloaders, iteration_strategy)
        self._children = children or Children(individual_dataloaders, False, track=True)
        self._names = list(individual_dataloaders)
        self._iters: dict[str, Iterator[Any]] = {}
        self._yielded = dict.fromkeys(self._names, 0)
        self._passes = dict.fromkeys(self._names, 0)
        self._exhausted: set[str] = set()
        self._empty: set[str] = set()
        self._finished: set[str] = set()  # RESTART: ran out at least once
        self._done = False
        self._started = False
        self._rng = rng

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "strategy": type(self.iteration_strategy).__name__,
            "yielded": dict(self._yielded),
            "passes": dict(self._passes),
            "exhausted": sorted(self._exhausted),
            "empty": sorted(self._empty),
            "finished": sorted(self._finished),
            "done": self._done,
            "active": [n for n in self._names if n in self._iters],
            **self._position_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._started:
            raise RuntimeError(
                "load_state_dict was called on an iterator that already started; load the "
                "state into the MultiDataLoader before iterating it."
            )
        self._yielded.update(state_dict["yielded"])
        self._passes.update(state_dict["passes"])
        self._exhausted = set(state_dict["exhausted"])
        self._empty = set(state_dict["empty"])
        self._finished = set(state_dict["finished"])
        self._done = bool(state_dict["done"])
        self._resume_active = list(state_dict["active"])
        self._load_position(state_dict)

    def _position_state(self) -> dict[str, Any]:
        return {}

    def _load_position(self, state_dict: dict[str, Any]) -> None:
        return None

    # ---- children ------------------------------------------------------------------------
    def start(self) -> None:
        """Open the child iterators this epoch reads first (restored ones when resuming)."""
        if self._started:
            return
        self._started = True
        resumed = getattr(self, "_resume_active", None)
        for name in resumed if resumed is not None else self._initial():
            self._iters[name] = self._children.open(name)
            if resumed is None:
                self._passes[name] += 1

    def _initial(self) -> list[str]:
        return [n for n in self._names if n not in self._exhausted]

    def _read(self, name: str) -> Any:
        try:
            batch = next(self._iters[name])
        except StopIteration:
            if self._yielded[name] == 0:
                self._found_empty(name)
            return _END
        self._yielded[name] += 1
        return batch

    def _found_empty(self, name: str) -> None:
        if self._passes[name] > 1:
            logger.warning(
                "Dataloader %r yielded nothing when restarted (a one-shot iterable?); it is "
                "not read again this epoch.",
                name,
            )
        elif not self._children.ignore_empty_data:
            raise ValueError(
                f"Dataloader {name!r} contains no data: its first pass of the epoch yielded no "
                "batch. Fix its dataset, or pass ignore_empty_data=True to skip it."
            )
        else:
            logger.warning("Dataloader %r contains no data; it is skipped.", name)
        self._empty.add(name)
        self._close(name)

    def _close(self, name: str) -> None:
        self._exhausted.add(name)
        self._iters.pop(name, None)

    def _reopen(self, name: str) -> None:
        self._iters[name] = self._children.open(name)
        self._passes[name] += 1
        self._yielded[name] = 0

    def _all_finished(self) -> bool:
        return all(n in self._finished or n in self._empty for n in self._names)


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
