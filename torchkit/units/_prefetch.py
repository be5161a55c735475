"""One-batch look-ahead for AutoUnit: detects the last batch and overlaps the H2D copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from torchkit.utils.device import record_data_in_stream

_NOTHING = object()


class BatchPrefetcher:
    """Reads one batch ahead of the step, moving it to the device as it is read.

    The look-ahead tells the unit that the batch it hands out is the last of the epoch
    (``is_last``), which is how a partial accumulation window is detected. On CUDA the next
    batch is copied on a side stream while the current step runs; on other devices it is only
    read ahead. With ``enabled=False`` batches are fetched and moved one at a time and
    ``is_last`` stays False.

    Exact resume: reading ahead advances the dataloader one batch past the last batch handed
    out. When the dataloader has ``state_dict()`` (torchdata's ``StatefulDataLoader``), its
    state is captured just before each read-ahead and kept in ``consumed_dataloader_state``:
    the state as of the last consumed batch, which is what a checkpoint must store.

    Args:
        move: ``move(state, data, non_blocking) -> data`` copying a batch to the device, or
            None when batches are used as the dataloader yields them.
        device: the device batches go to.
        enabled: read ahead (and copy on a side stream on CUDA).
        loader_of: ``loader_of(state) -> dataloader`` for the phase, looked up once per epoch
            so its ``state_dict()`` can be tracked for checkpoints (None: not tracked).
    """

    def __init__(
        self,
        move: Callable[[Any, Any, bool], Any] | None,
        device: torch.device,
        *,
        enabled: bool,
        loader_of: Callable[[Any], Any] | None = None,
    ) -> None:
        self._move = move
        self._loader_of = loader_of
        self.enabled = enabled
        self._iter: Iterator[Any] | None = None
        self._next: Any = _NOTHING
        self.is_last = False
        self.consumed_dataloader_state: dict[str, Any] | None = None
        self._state_dict_fn: Callable[[], dict[str, Any]] | None = None
        self._stream: Any = None
        if enabled and device.type == "cuda":
            self._stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]

    def state_for_checkpoint(self) -> dict[str, Any] | None:
        """The loader state a checkpoint must store, or None when the loader's own state is
        already right (no batch is held in the look-ahead)."""
        if self._iter is None or self._next is _NOTHING:
            return None
        return self.consumed_dataloader_state

    def reset(self) -> None:
        """Forget the read-ahead batch (a new epoch creates a new iterator anyway)."""
        self._iter = None
        self._next = _NOTHING
        self.is_last = False

    def fetch(self, state: Any, data_iter: Iterator[Any]) -> Any:
        """The next batch, on the device. Raises ``StopIteration`` at the end of the data."""
        if not self.enabled:
            raw = next(data_iter)
            return raw if self._move is None else self._move(state, raw, False)
        if data_iter is not self._iter:  # a new epoch: fill the look-ahead
            self._iter = data_iter
            self.is_last = False
            loader = self._loader_of(state) if self._loader_of is not None else None
            self._state_dict_fn = getattr(loader, "state_dict", None)
            self._next = self._read(state, data_iter)
        batch = self._next
        if batch is _NOTHING:
            raise StopIteration
        if self._stream is not None:
            current = torch.cuda.current_stream(self._stream.device)
            current.wait_stream(self._stream)
            # every nested tensor, not only the top-level one, was allocated on the side
            # stream: tell the allocator the main stream uses it too
            record_data_in_stream(batch, current)
        if self._state_dict_fn is not None:
            self.consumed_dataloader_state = self._state_dict_fn()
        if self._stream is None:  # the usual case, inlined: read (and move) the next batch
            try:
                raw = next(data_iter)
            except StopIteration:
                self._next = _NOTHING
            else:
                self._next = raw if self._move is None else self._move(state, raw, False)
        else:
            self._next = self._read(state, data_iter)
        self.is_last = self._next is _NOTHING
        return batch

    def _read(self, state: Any, data_iter: Iterator[Any]) -> Any:
        try:
            raw = next(data_iter)
        except StopIteration:
            return _NOTHING
        if self._move is None:
            return raw
        if self._stream is None:
            return self._move(state, raw, False)
        with torch.cuda.stream(self._stream):
            return self._move(state, raw, True)
