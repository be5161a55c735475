"""The child loaders of a ``MultiDataLoader``: opening their iterators, their resume states,
and the seeded draws of ``RandomizedBatchSampler``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from torchkit.utils.dataloader_utils import (
    generator_states,
    prime_restored_loader,
    set_generator_states,
)

logger = logging.getLogger(__name__)


def is_stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


class Children:
    """Opens child iterators and knows which child state is live.

    A child's ``state_dict()`` is asked for only once this ``MultiDataLoader`` has iterated
    it: asking a torchdata ``StatefulDataLoader`` that was never iterated creates an iterator,
    which draws from the global torch RNG and would make a checkpoint change the run. A state
    loaded by ``load_state_dict`` is returned as loaded until the child is iterated again.

    Args:
        loaders: name -> loader.
        ignore_empty_data: skip loaders that yield nothing (else a ``ValueError``).
        track: False for a custom ``MultiIterator`` that opens the children itself; every
            stateful child's state is then asked for.
    """

    def __init__(
        self, loaders: Mapping[str, Iterable[Any]], ignore_empty_data: bool, track: bool
    ) -> None:
        self.loaders = loaders
        self.ignore_empty_data = ignore_empty_data
        self.track = track
        self.opened: set[str] = set()
        self.loaded: dict[str, Any] = {}
        self._generators: dict[str, Any] = {}  # to re-apply when a loaded child is opened

    def open(self, name: str) -> Iterator[Any]:
        self.loaded.pop(name, None)
        self.opened.add(name)
        it = iter(self.loaders[name])
        if name in self._generators:
            # torchdata restores the sampler's draw position but builds the restored iterator
            # with extra draws from the loader's own generator: put it back as saved
            set_generator_states(self.loaders[name], self._generators.pop(name))
        return it

    def state(self, name: str) -> Any:
        """``{"state": child state_dict, "generator": [its generators' states]}`` or None."""
        if name in self.loaded:
            return self.loaded[name]
        if name in self.opened or not self.track:
            loader = self.loaders[name]
            return {
                "state": loader.state_dict(),  # type: ignore[attr-defined]
                "generator": generator_states(loader),
            }
        return None

    def load(self, name: str, record: Any) -> None:
        self.opened.discard(name)
        self.loaded.pop(name, None)
        self._generators.pop(name, None)
        if record is not None:
            self.loaders[name].load_state_dict(record["state"])  # type: ignore[attr-defined]
            self.loaded[name] = record
            self._generators[name] = record["generator"]

    def prime(self, name: str) -> None:
        """Build the iterator of a child whose loaded state the resumed epoch won't continue
        (see ``prime_restored_loader``)."""
        prime_restored_loader(self.loaders[name], self._generators.pop(name, None))


class BlockRandom:
    """Uniform draws in [0, 1) from a seeded ``torch.Generator``, 256 at a time.

    Its state (the generator state before the current block and the position in it) is
    enough to replay the exact draws after a restore.

    Args:
        seed: the generator's seed.
    """

    BLOCK = 256

    def __init__(self, seed: int) -> None:
        self._gen = torch.Generator().manual_seed(seed)
        self._block_start = self._gen.get_state()
        self._block: list[float] = []
        self._index = 0

    def random(self) -> float:
        if self._index >= len(self._block):
            self._block_start = self._gen.get_state()
            self._block = torch.rand(self.BLOCK, generator=self._gen, dtype=torch.float64).tolist()
            self._index = 0
        value = self._block[self._index]
        self._index += 1
        return value

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._block_start.clone(), "index": self._index,
                "in_block": bool(self._block)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._gen.set_state(state["generator"])
        self._block_start = self._gen.get_state()
        self._block, self._index = [], 0
        if state["in_block"]:
            self._block = torch.rand(self.BLOCK, generator=self._gen, dtype=torch.float64).tolist()
            self._index = int(state["index"])
