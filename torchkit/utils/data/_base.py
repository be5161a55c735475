"""The iterator base classes: TNT's ``MultiIterator`` and the resumable machinery the
built-in strategies share."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torchkit.utils.data._children import BlockRandom, Children
from torchkit.utils.data.strategies import DataIterationStrategy

logger = logging.getLogger(__name__)

END: Any = object()
"""Returned by ``_read`` when a child's pass ended."""


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
        self._resume_active: list[str] | None = None  # children to reopen from their states

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
        resumed = self._resume_active
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
            return END
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
