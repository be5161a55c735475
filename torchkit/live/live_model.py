"""``LiveModel``: inference copies of a training module, refreshed by copying, read in parallel."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchkit.live._args import (
    InferenceProcedure,
    check_buffers,
    check_dtype,
    check_module,
    device_of,
    resolve_procedure,
)
from torchkit.live._tensors import is_sharded, state_names, state_tensors


@dataclass(frozen=True)
class Snapshot:
    """One published copy of the weights, frozen while you hold it.

    Attributes:
        module: the inference module (in ``eval()`` mode, ``requires_grad=False``). Read it,
            never write it; it is only valid inside the ``acquire()`` block.
        version: how many publishes preceded this one (0: the copy taken at construction).
        train_step: the train step (``num_steps_completed``) it was published at (0 for the
            copy taken at construction).
    """

    module: torch.nn.Module
    version: int
    train_step: int


class _Slot:
    """One inference copy with its reader count and, on CUDA, its stream events."""

    __slots__ = ("module", "readers", "ready", "released", "snapshot", "tensors")

    def __init__(self, module: torch.nn.Module, cuda: bool) -> None:
        self.module = module
        self.tensors = state_tensors(module)
        self.readers = 0
        self.snapshot = Snapshot(module, 0, 0)
        # ready: recorded after the copy into this slot; readers' streams wait on it.
        # released: per reader stream, an event recorded when that reader let go, which the
        # next copy into this slot waits on (the reader's kernels may still be running).
        self.ready: Any = torch.cuda.Event() if cuda else None  # type: ignore[no-untyped-call]
        self.released: dict[int, Any] = {}


class LiveModel:
    """Inference copies of a training module that a training loop refreshes while it runs.

    ``buffers`` plain copies of ``module`` are made, in ``eval()`` mode and with
    ``requires_grad=False``. Publishing (``publish()``, or the ``PublishWeights`` callback)
    copies every parameter and every buffer of the training module (non-persistent buffers
    included) with ``torch._foreach_copy_`` into a copy that is not current and that no reader
    holds, records a CUDA event on CUDA, then makes it current under a short lock. The
    training module, its gradients, the optimizer's references and every submodule's
    train/eval mode are never touched.

    Readers run in parallel: ``acquire()`` only counts a reader on the current copy (under the
    same short lock), so a copy is never written while held. ``infer()`` runs the inference
    procedure on the current copy under ``torch.inference_mode()``. Before the first publish
    readers get the weights copied at construction (version 0). ``version`` and the train step
    of a copy are not saved in checkpoints.

    Args:
        module: the training module (a ``DistributedDataParallel`` wrapper is looked through).
            Build the LiveModel before FSDP2 shards the module.
        buffers: number of copies (>= 2; 3 lets one slow reader hold an old copy while
            publishes go on).
        device: where the copies live (None: the module's device now).
        dtype: cast floating-point parameters and buffers of the copies to it (e.g.
            ``torch.bfloat16``); integer buffers keep their dtype.
        inference_procedure: what ``infer`` runs: a callable ``(module, *args, **kwargs)``, or
            the name of a method of the module's class. None: move tensor arguments to
            ``device`` and call the module.

    Raises:
        ValueError: ``module`` is not an ``nn.Module`` or is already sharded, ``buffers`` < 2,
            ``dtype`` is not a floating-point dtype, or ``inference_procedure`` names no
            method of the module.
        TypeError: ``inference_procedure`` is neither callable nor a string.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 1)
        >>> live = LiveModel.from_module(net)
        >>> with torch.no_grad():
        ...     _ = net.weight.fill_(1.0)
        >>> live.publish(train_step=1)
        True
        >>> with live.acquire() as snap:
        ...     snap.version, snap.train_step, snap.module.weight.tolist()
        (1, 1, [[1.0, 1.0]])
        >>> live.infer(torch.ones(1, 2)).shape
        torch.Size([1, 1])
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        buffers: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        inference_procedure: InferenceProcedure | str | None = None,
    ) -> None:
        source = check_module(module)
        check_buffers(buffers)
        check_dtype(dtype)
        self._source = source
        self._device = torch.device(device) if device is not None else device_of(source)
        self._dtype = dtype
        self._procedure = resolve_procedure(inference_procedure, source, self._device)
        self._cuda = self._device.type == "cuda"
        self._names = state_names(source)
        self._slots = [_Slot(self._make_copy(source), self._cuda) for _ in range(buffers)]
        if self._cuda:  # readers on other streams must not see a copy still in flight
            for slot in self._slots:
                slot.ready.record(torch.cuda.current_stream(self._device))
        # _lock guards reader counts, the current index, versions and waiters; it is held for
        # a few integer updates only. _publish_lock lets one publisher in at a time; readers
        # never take it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._publish_lock = threading.Lock()
        self._current = 0
        self._version = 0
        self._skipped = 0
        self._waiters = 0

    @classmethod
    def from_module(
        cls,
        module: torch.nn.Module,
        *,
        buffers: int = 3,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        inference_procedure: InferenceProcedure | str | None = None,
    ) -> LiveModel:
        """Build a ``LiveModel`` of ``module`` (the arguments are the constructor's).

        Example:
            >>> import torch
            >>> LiveModel.from_module(torch.nn.Linear(2, 1), buffers=2).num_buffers
            2
        """
        return cls(
            module,
            buffers=buffers,
            device=device,
            dtype=dtype,
            inference_procedure=inference_procedure,
        )

    def _make_copy(self, source: torch.nn.Module) -> torch.nn.Module:
        with torch.no_grad():
            clone = copy.deepcopy(source).to(device=self._device, dtype=self._dtype)
        clone.eval()
        clone.requires_grad_(False)
        return clone

    # ---- reading ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The number of publishes so far (0 before the first)."""
        return self._version

    @property
    def skipped_publishes(self) -> int:
        """Publishes skipped because every non-current copy was held by a reader."""
        return self._skipped

    @property
    def num_buffers(self) -> int:
        """The number of inference copies."""
        return len(self._slots)

    @property
    def device(self) -> torch.device:
        """Where the inference copies live."""
        return self._device

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Snapshot]:
        """Hold the current copy for the whole block: it is not written until you leave.

        On CUDA the current stream waits for the copy to be complete on entry, and the next
        write into this copy waits for the work you enqueued on your stream inside the block.

        Example:
            >>> import torch
            >>> live = LiveModel.from_module(torch.nn.Linear(2, 1))
            >>> with live.acquire() as snap:
            ...     snap.version
            0
        """
        index, snap = self._pin()
        try:
            self._wait_ready(index)
            yield snap
        finally:
            self._unpin(index)

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        """Run the inference procedure on the current copy, under ``torch.inference_mode()``.

        Thread-safe; any number of threads may call it at once.

        Example:
            >>> import torch
            >>> live = LiveModel.from_module(torch.nn.Linear(2, 3))
            >>> live.infer(torch.zeros(4, 2)).shape
            torch.Size([4, 3])
        """
        with self.acquire() as snap, torch.inference_mode():
            return self._procedure(snap.module, *args, **kwargs)

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool:
        """Block until ``self.version >= version``; False when ``timeout`` seconds passed first.

        Example:
            >>> import torch
            >>> LiveModel.from_module(torch.nn.Linear(2, 1)).wait_for_version(0)
            True
        """
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(lambda: self._version >= version, timeout)
            finally:
                self._waiters -= 1

    # ---- publishing ------------------------------------------------------------------------

    def publish(self, train_step: int = 0, *, wait: bool = False) -> bool:
        """Copy the training module's current weights into a free copy and make it current.

        Args:
            train_step: the step to record with the copy (``Snapshot.train_step``).
            wait: when every non-current copy is held by a reader, wait for one to be
                released (False: count a skip and return False at once).

        Returns:
            True when the copy was published.

        Raises:
            RuntimeError: the module is sharded (FSDP2): publish with ``PublishWeights``,
                which gathers the full weights on every rank.

        Example:
            >>> import torch
            >>> live = LiveModel.from_module(torch.nn.Linear(2, 1))
            >>> live.publish(train_step=5), live.version
            (True, 1)
        """
        if is_sharded(self._source):
            raise RuntimeError(
                "LiveModel.publish() cannot copy a sharded (FSDP2) module alone: the full "
                "weights need a gather on every rank. Use the PublishWeights callback."
            )
        return self._publish_from(lambda: state_tensors(self._source), train_step, wait)

    def _publish_from(
        self, sources: Callable[[], Sequence[torch.Tensor]], train_step: int, wait: bool
    ) -> bool:
        with self._publish_lock:
            index = self._reserve(wait)
            if index is None:
                return False
            self._copy_into(self._slots[index], sources())
            with self._lock:
                self._version += 1
                self._slots[index].snapshot = Snapshot(
                    self._slots[index].module, self._version, train_step
                )
                self._current = index
                if self._waiters:
                    self._cond.notify_all()
            return True

    def _reserve(self, wait: bool) -> int | None:
        """A copy that is not current and has no reader (None: skipped). Readers only ever
        pin the current copy, so the one returned stays free until it is made current."""
        with self._cond:
            while True:
                index = self._free_slot()
                if index is not None:
                    return index
                if not wait:
                    self._skipped += 1
                    return None
                self._waiters += 1
                self._cond.notify_all()  # lets observers see the publisher is waiting
                try:
                    self._cond.wait()
                finally:
                    self._waiters -= 1

    def _free_slot(self) -> int | None:
        best: int | None = None
        for i, slot in enumerate(self._slots):
            if i == self._current or slot.readers:
                continue
            # the oldest free copy: the one a new reader is least likely to want
            if best is None or slot.snapshot.version < self._slots[best].snapshot.version:
                best = i
        return best

    def _copy_into(self, slot: _Slot, sources: Sequence[torch.Tensor]) -> None:
        if len(sources) != len(slot.tensors):
            raise RuntimeError(
                f"The training module now has {len(sources)} parameters and buffers, the "
                f"LiveModel copies {len(slot.tensors)}: its structure changed after "
                "LiveModel.from_module. Build the LiveModel from the final module."
            )
        if self._cuda:
            stream = torch.cuda.current_stream(self._device)
            for event in slot.released.values():  # the last readers' kernels finish first
                stream.wait_event(event)
            slot.released.clear()
        with torch.no_grad():
            torch._foreach_copy_(slot.tensors, list(sources), non_blocking=self._cuda)
        if self._cuda:
            slot.ready.record(torch.cuda.current_stream(self._device))

    # ---- reader bookkeeping (also used by AsyncEvaluator across threads) -------------------

    def _pin(self) -> tuple[int, Snapshot]:
        with self._lock:
            index = self._current
            slot = self._slots[index]
            slot.readers += 1
            return index, slot.snapshot

    def _wait_ready(self, index: int) -> None:
        if self._cuda:
            torch.cuda.current_stream(self._device).wait_event(self._slots[index].ready)

    def _unpin(self, index: int) -> None:
        slot = self._slots[index]
        with self._lock:
            if self._cuda:
                stream = torch.cuda.current_stream(self._device)
                event = slot.released.get(stream.cuda_stream)
                if event is None:
                    event = slot.released[stream.cuda_stream] = torch.cuda.Event()  # type: ignore[no-untyped-call]
                event.record(stream)
            slot.readers -= 1
            if self._waiters and slot.readers == 0:
                self._cond.notify_all()
