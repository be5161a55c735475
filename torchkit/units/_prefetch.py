"""One-batch look-ahead for AutoUnit: detects the last batch and overlaps the H2D copy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import torch

from torchkit.utils.device import map_leaves, record_data_in_stream

logger = logging.getLogger(__name__)

_NOTHING = object()


class CudaStreams:
    """The side stream batches are copied on, and how the compute stream waits for them.

    ``BatchPrefetcher`` touches CUDA only through this object, so the side-stream path (pin,
    copy, record, event, wait) can run on a CPU with a stand-in for tests.

    Args:
        device: the CUDA device.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]

    def compute(self) -> Any:
        """The stream the step runs on (the current one)."""
        return torch.cuda.current_stream(self.device)

    def copying(self) -> AbstractContextManager[Any]:
        """Make the side stream current for the copy."""
        return torch.cuda.stream(self.side)

    def record_event(self) -> Any:
        """An event marking the end of the copies queued on the side stream so far."""
        return self.side.record_event()

    def pin(self, data: Any) -> tuple[Any, bool]:
        """``data`` with its unpinned host tensors pinned, and whether any needed it."""
        pinned = False

        def pin(leaf: Any) -> Any:
            nonlocal pinned
            if (
                isinstance(leaf, torch.Tensor)
                and leaf.device.type == "cpu"
                and not leaf.is_pinned()
            ):
                pinned = True
                return leaf.pin_memory()
            return leaf

        return map_leaves(data, pin), pinned


class _Ready(NamedTuple):
    """A batch copied on the side stream, and the event its copy ends with."""

    batch: Any
    event: Any


def dataloader_advice(loader: Any, *, prefetch: bool) -> list[str]:
    """Advice for a dataloader feeding a CUDA device: more workers, pinned memory.

    Args:
        loader: the phase's dataloader (anything without these attributes gets no advice).
        prefetch: whether batches are prefetched on a side stream.

    Returns:
        One sentence per problem found (empty when none).

    Example:
        >>> import torch
        >>> dataloader_advice(torch.utils.data.DataLoader(range(4)), prefetch=True)[0][:27]
        'DataLoader(num_workers=0): '
    """
    advice = []
    workers = getattr(loader, "num_workers", None)
    if isinstance(workers, int) and workers < 2:
        advice.append(
            f"DataLoader(num_workers={workers}): batches are loaded on the training process, "
            "between steps; the GPU waits. Pass num_workers=2 or more (e.g. the CPU count per "
            "GPU)."
        )
    if prefetch and getattr(loader, "pin_memory", None) is False:
        advice.append(
            "DataLoader(pin_memory=False) with enable_prefetch=True: each batch is pinned on "
            "the training thread before its asynchronous copy (one more host copy). Pass "
            "DataLoader(pin_memory=True) to pin in the loader's thread."
        )
    return advice


class BatchPrefetcher:
    """Reads one batch ahead of the step, moving it to the device as it is read.

    The look-ahead tells the unit that the batch it hands out is the last of the epoch
    (``is_last``), which is how a partial accumulation window is detected. On CUDA the next
    batch is copied on a side stream while the current step runs:

    1. the batch is pinned if the loader did not pin it (one warning: pin in the loader);
    2. it is moved (``move(state, data, non_blocking=True)``) with the side stream current;
    3. ``record_stream(compute)`` is called on every moved leaf, so the allocator does not
       reuse its memory while the compute stream reads it;
    4. an event is recorded on the side stream; when the batch is handed out, the compute
       stream waits for that event (not for the whole side stream).

    On other devices batches are only read ahead. With ``enabled=False`` batches are fetched
    and moved one at a time and ``is_last`` stays False.

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
            so its ``state_dict()`` can be tracked for checkpoints and its settings checked
            once (None: neither).
        streams: the side-stream operations; ``None`` builds ``CudaStreams`` on a CUDA
            device (tests pass a stand-in to run the CUDA path on a CPU).
    """

    def __init__(
        self,
        move: Callable[[Any, Any, bool], Any] | None,
        device: torch.device,
        *,
        enabled: bool,
        loader_of: Callable[[Any], Any] | None = None,
        streams: Any = None,
    ) -> None:
        self._move = move
        self._loader_of = loader_of
        self.enabled = enabled
        self._iter: Iterator[Any] | None = None
        self._next: Any = _NOTHING
        self.is_last = False
        self.consumed_dataloader_state: dict[str, Any] | None = None
        self._state_dict_fn: Callable[[], dict[str, Any]] | None = None
        if streams is None and enabled and device.type == "cuda":
            streams = CudaStreams(device)
        self._streams = streams if enabled else None
        self._advised = device.type != "cuda" and self._streams is None  # advice is for GPUs
        self._warned_pin = False

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
            if not self._advised:
                self._advise(state)
            raw = next(data_iter)
            return raw if self._move is None else self._move(state, raw, False)
        if data_iter is not self._iter:  # a new epoch: fill the look-ahead
            self._start_epoch(state, data_iter)
        batch = self._next
        if batch is _NOTHING:
            raise StopIteration
        if self._state_dict_fn is not None:
            self.consumed_dataloader_state = self._state_dict_fn()
        if self._streams is None:  # the usual case, inlined: read (and move) the next batch
            try:
                raw = next(data_iter)
            except StopIteration:
                self._next = _NOTHING
            else:
                self._next = raw if self._move is None else self._move(state, raw, False)
            self.is_last = self._next is _NOTHING
            return batch
        self._next = self._read(state, data_iter)  # queue the next copy before waiting
        self.is_last = self._next is _NOTHING
        # the step's kernels start after this batch's copy, not after the next one's
        self._streams.compute().wait_event(batch.event)
        return batch.batch

    def _start_epoch(self, state: Any, data_iter: Iterator[Any]) -> None:
        self._iter = data_iter
        self.is_last = False
        loader = self._loader_of(state) if self._loader_of is not None else None
        self._state_dict_fn = getattr(loader, "state_dict", None)
        if not self._advised:
            self._advise(state, loader)
        self._next = self._read(state, data_iter)

    def _advise(self, state: Any, loader: Any = None) -> None:
        """Warn once about loader settings that starve a GPU (``dataloader_advice``)."""
        self._advised = True
        if loader is None and self._loader_of is not None:
            loader = self._loader_of(state)
        for advice in dataloader_advice(loader, prefetch=self._streams is not None):
            logger.warning(advice)

    def _read(self, state: Any, data_iter: Iterator[Any]) -> Any:
        try:
            raw = next(data_iter)
        except StopIteration:
            return _NOTHING
        if self._move is None:
            return raw
        streams = self._streams
        if streams is None:
            return self._move(state, raw, False)
        raw, pinned = streams.pin(raw)
        if pinned and not self._warned_pin:
            self._warned_pin = True
            logger.warning(
                "enable_prefetch=True: batches arrive in pageable memory, so each one is "
                "pinned on the training thread before its asynchronous copy. Pass "
                "DataLoader(pin_memory=True) to pin them in the loader instead."
            )
        compute = streams.compute()
        with streams.copying():
            moved = self._move(state, raw, True)
            record_data_in_stream(moved, compute)
            return _Ready(moved, streams.record_event())
