"""``MultiDataLoader``: several named loaders iterated as one, by a strategy, resumable."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torchkit.utils.data._children import BlockRandom, Children, is_stateful
from torchkit.utils.data.iterators import (
    AllDatasetBatchesIterator,
    InOrderIterator,
    MultiIterator,
    RandomizedBatchSamplerIterator,
    RoundRobinIterator,
    StatefulMultiIterator,
)
from torchkit.utils.data.strategies import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    RandomizedBatchSampler,
    RoundRobin,
    num_batches,
)
from torchkit.utils.dataloader_utils import set_dataloader_epoch

logger = logging.getLogger(__name__)


class DataIterationStrategyRegistry:
    """Maps each strategy class to the iterator class that implements it (TNT's registry).

    Example:
        >>> DataIterationStrategyRegistry.get(RoundRobin()).__name__
        'RoundRobinIterator'
    """

    REGISTRY: dict[type[DataIterationStrategy], type[MultiIterator]] = {
        RoundRobin: RoundRobinIterator,
        AllDatasetBatches: AllDatasetBatchesIterator,
        RandomizedBatchSampler: RandomizedBatchSamplerIterator,
        InOrder: InOrderIterator,
    }

    @classmethod
    def get(cls, iteration_strategy: DataIterationStrategy) -> type[MultiIterator]:
        """The iterator class for ``iteration_strategy``.

        Raises:
            ValueError: no iterator is registered for its class.
        """
        found = cls.REGISTRY.get(type(iteration_strategy))
        if found is None:
            known = ", ".join(k.__name__ for k in cls.REGISTRY)
            raise ValueError(
                f"iteration_strategy={iteration_strategy!r} is invalid: expected one of {known}, "
                "or pass iterator_cls=<your MultiIterator subclass> for a custom strategy."
            )
        return found


class MultiDataLoader:
    """Iterates several named loaders as one, yielding ``{name: batch}`` (TNT's API).

    Unlike TNT's, it never iterates a loader when it is constructed (a loader of length 0 is
    rejected from its ``len()``; an unsized empty one is found at its first read), it forwards
    ``set_epoch`` to the loaders' samplers (the loop calls it each epoch), every built-in
    strategy saves and restores its exact position, and it has a ``len()`` when the
    strategy's count is fixed and every loader is sized.

    ``state_dict()`` holds each stateful child's ``state_dict()`` (e.g. torchdata's
    ``StatefulDataLoader``) and the iterator's position, flags and random-draw state; after
    ``load_state_dict`` the next ``iter()`` continues from there, so a mid-epoch checkpoint
    resumes at the exact batch. A state saved at the end of an epoch makes the next
    ``iter()`` start a new epoch.

    Args:
        individual_dataloaders: name -> loader (any iterable of batches).
        iteration_strategy: ``RoundRobin``, ``AllDatasetBatches``, ``RandomizedBatchSampler``,
            ``InOrder``, or any strategy with ``iterator_cls``.
        iterator_cls: a custom ``MultiIterator`` subclass (default: the registry's).
        ignore_empty_data: skip loaders that contain no data instead of raising.

    Raises:
        TypeError: ``individual_dataloaders`` is not a non-empty dict of iterables,
            ``iteration_strategy`` is not a ``DataIterationStrategy``, or ``iterator_cls`` is
            not a ``MultiIterator`` subclass.
        ValueError: an unknown strategy, a strategy naming unknown loaders, or (without
            ``ignore_empty_data``) a loader whose ``len()`` is 0.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> from torchkit.utils.data import RoundRobin, StoppingMechanism
        >>> mdl = MultiDataLoader({"a": DataLoader(range(4), batch_size=4),
        ...                        "b": DataLoader(range(15), batch_size=5)}, RoundRobin())
        >>> len(mdl), [list(batch) for batch in mdl]
        (4, [['a'], ['b'], ['b'], ['b']])
    """

    def __init__(
        self,
        individual_dataloaders: Mapping[str, Iterable[Any]],
        iteration_strategy: DataIterationStrategy,
        iterator_cls: type[MultiIterator] | None = None,
        ignore_empty_data: bool = False,
    ) -> None:
        _check_loaders(individual_dataloaders)
        if not isinstance(iteration_strategy, DataIterationStrategy):
            raise TypeError(
                f"iteration_strategy={iteration_strategy!r} is invalid: expected a "
                "DataIterationStrategy such as RoundRobin() or AllDatasetBatches()."
            )
        if iterator_cls is not None and not (
            isinstance(iterator_cls, type) and issubclass(iterator_cls, MultiIterator)
        ):
            raise TypeError(
                f"iterator_cls={iterator_cls!r} is invalid: expected a MultiIterator subclass "
                "(the class, not an instance), or None."
            )
        cls = iterator_cls or DataIterationStrategyRegistry.get(iteration_strategy)
        iteration_strategy.check_loaders(list(individual_dataloaders))
        for name, dl in individual_dataloaders.items():
            if _safe_len(dl) == 0:
                if not ignore_empty_data:
                    raise ValueError(
                        f"Dataloader {name!r} contains no data (its len() is 0). Fix its "
                        "dataset, or pass ignore_empty_data=True to skip it."
                    )
                logger.warning("Dataloader %r contains no data; it is skipped.", name)
        self.individual_dataloaders = individual_dataloaders
        self.iteration_strategy = iteration_strategy
        self.iterator_cls = iterator_cls
        self.ignore_empty_data = ignore_empty_data
        self._cls = cls
        self._builtin = issubclass(cls, StatefulMultiIterator)
        self._children = Children(individual_dataloaders, ignore_empty_data, self._builtin)
        seed = getattr(iteration_strategy, "seed", None)
        self._rng = BlockRandom(seed) if isinstance(seed, int) and self._builtin else None
        self.current_iterator: MultiIterator | None = None
        self.iterator_state: dict[str, Any] | None = None
        """The iterator state ``load_state_dict`` received, applied at the next ``iter()``."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """A new iterator over the loaders (continuing a loaded state, if any)."""
        if self._builtin:
            it: MultiIterator = self._cls(  # type: ignore[call-arg]
                individual_dataloaders=self.individual_dataloaders,
                iteration_strategy=self.iteration_strategy,
                children=self._children,
                rng=self._rng,
            )
        else:
            it = self._cls(
                individual_dataloaders=self.individual_dataloaders,
                iteration_strategy=self.iteration_strategy,
            )
        if self.iterator_state is not None:
            it.load_state_dict(self.iterator_state)
            self.iterator_state = None
        if isinstance(it, StatefulMultiIterator):
            it.start()  # child iterators exist now, inside the loop's iter() (RNG handling)
        self.current_iterator = it
        return it

    def __len__(self) -> int:
        """Batches per epoch: the sum of the lengths (``RoundRobin``/``InOrder``/
        ``RandomizedBatchSampler`` with ``ALL_DATASETS_EXHAUSTED``), the largest
        (``AllDatasetBatches``, ``ALL``/``RESTART``), the smallest (``AllDatasetBatches``,
        ``SMALLEST``), or the round-robin count up to the first loader that runs out.

        Raises:
            TypeError: a loader has no length, the count is random or unbounded, or the
                iterator is custom.
        """
        if not self._builtin:
            raise TypeError("A MultiDataLoader with a custom iterator_cls has no length.")
        lens: dict[str, int] = {}
        for name, dl in self.individual_dataloaders.items():
            n = _safe_len(dl)
            if n is None:
                raise TypeError(f"A MultiDataLoader has no length: loader {name!r} has none.")
            if n > 0 or not self.ignore_empty_data:
                lens[name] = n
        if not lens:
            return 0
        return num_batches(self.iteration_strategy, lens)

    def set_epoch(self, epoch: int) -> None:
        """Forward ``epoch`` to every loader (its ``set_epoch`` or its sampler's)."""
        for dl in self.individual_dataloaders.values():
            set_dataloader_epoch(dl, epoch)

    # ---- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The children's states and the iterator's position, as of the last batch read."""
        it = self.current_iterator
        it_state = it.state_dict() if it is not None else self.iterator_state
        return {
            "strategy": type(self.iteration_strategy).__name__,
            "loaders": list(self.individual_dataloaders),
            "dataloaders": {
                name: self._children.state(name)
                for name, dl in self.individual_dataloaders.items()
                if is_stateful(dl)
            },
            "iterator_state": it_state,
            "rng": self._rng.state_dict() if self._rng is not None else None,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()``; the next ``iter()`` continues from it.

        Raises:
            ValueError: the state is of other loaders (renamed, missing or extra names are
                listed) or of another strategy; nothing is loaded then.
        """
        self._check_state(state_dict)
        it_state = state_dict.get("iterator_state")
        if not it_state or it_state.get("done", False):
            it_state = None  # an epoch that ended: the next iter() starts a new one
        active = set(it_state.get("active", ())) if it_state else set()
        saved = state_dict.get("dataloaders", {})
        for name, dl in self.individual_dataloaders.items():
            if is_stateful(dl):
                self._children.load(name, saved.get(name))
        for name in self._children.loaded:
            if name not in active:
                self._children.prime(name)
        if self._rng is not None and state_dict.get("rng") is not None:
            self._rng.load_state_dict(state_dict["rng"])
        self.iterator_state = it_state
        self.current_iterator = None

    def _check_state(self, state_dict: Any) -> None:
        if not isinstance(state_dict, Mapping) or "loaders" not in state_dict:
            raise ValueError(
                f"state_dict={type(state_dict).__name__} is invalid: expected a dict from "
                "MultiDataLoader.state_dict() (with a 'loaders' key)."
            )
        ours, theirs = list(self.individual_dataloaders), list(state_dict["loaders"])
        missing = [n for n in theirs if n not in ours]
        extra = [n for n in ours if n not in theirs]
        if missing or extra:
            raise ValueError(
                f"state_dict is invalid for this MultiDataLoader: it was saved with loaders "
                f"{theirs}; {missing} are not among this loader's {ours} and {extra} are not in "
                "the state (renamed?). Build the MultiDataLoader with the names it was saved with."
            )
        strategy = state_dict.get("strategy")
        if strategy != type(self.iteration_strategy).__name__:
            raise ValueError(
                f"state_dict is invalid for this MultiDataLoader: it was saved with strategy "
                f"{strategy!r}, this loader uses {type(self.iteration_strategy).__name__!r}. "
                "Resume with the strategy the run was saved with."
            )


def _check_loaders(loaders: Any) -> None:
    if not isinstance(loaders, Mapping) or not loaders:
        raise TypeError(
            f"individual_dataloaders={loaders!r} is invalid: expected a non-empty dict "
            "{name: dataloader}."
        )
    for name, dl in loaders.items():
        if not isinstance(name, str):
            raise TypeError(
                f"individual_dataloaders has key {name!r}: expected str names. Use e.g. "
                "{'train_a': dl_a}."
            )
        if not isinstance(dl, Iterable):
            raise TypeError(
                f"individual_dataloaders[{name!r}]={dl!r} is invalid: expected an iterable of "
                "batches such as a DataLoader."
            )


def _safe_len(obj: Any) -> int | None:
    try:
        return len(obj)
    except (TypeError, NotImplementedError):
        return None
