"""``AsyncEvaluator``: evaluates the latest ``LiveModel`` snapshot in a background thread."""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch

from torchkit.callbacks._logging_utils import as_logger_list, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.live.live_model import LiveModel, Snapshot
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State

logger = logging.getLogger(__name__)

EvaluateFn = Callable[[torch.nn.Module, Iterable[Any]], Mapping[str, Any]]


class AsyncEvaluator(Callback):
    """Evaluates the newest published snapshot of ``live`` while training goes on.

    At a train step end, when the background thread is idle and ``live`` has a version it
    has not evaluated, the newest snapshot is held (so no publish overwrites it) and handed
    to the thread, which runs ``evaluate_fn(snapshot.module, batches)`` under
    ``torch.inference_mode()``. Versions published meanwhile are skipped: it always takes the
    newest. Results are logged from the training thread at the next step end (loggers are
    never called from two threads), with ``log_dict({prefix + name: value},
    snapshot.train_step)``: at the train step the weights come from. At train end the newest
    version is evaluated too, and the thread is joined.

    The training thread's work is unchanged: the eval loader's iterator is created (and its
    first batch read) in the training thread with the global CPU RNG state saved and restored
    around it, since a ``DataLoader`` draws its seeds from that RNG. An exception raised by
    ``evaluate_fn`` is re-raised in the training thread at the next step end, with its
    original traceback; training itself is never touched by it.

    Args:
        live: the ``LiveModel`` that ``PublishWeights`` publishes into (put ``PublishWeights``
            first in the callback list so a step's publish is seen at that step).
        dataloader: the eval data, iterated once per evaluation.
        evaluate_fn: ``(module, batches) -> {name: value}``; values are numbers or 0-d tensors.
        loggers: the run's loggers (one or a list; an empty list only keeps ``history``).
        prefix: prepended to each metric name.

    Raises:
        TypeError: ``live`` is not a ``LiveModel``, ``evaluate_fn`` is not callable, or an
            element of ``loggers`` is not a logger.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> from torchkit.live import LiveModel, PublishWeights
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> def accuracy(module, batches):
        ...     pairs = [(module(x).argmax(1) == y).sum() for x, y in batches]
        ...     return {"accuracy": sum(p for p in pairs).item() / 8}
        >>> unit, lg = DummyTrainUnit(2), InMemoryLogger()
        >>> live = LiveModel.from_module(unit.module)
        >>> cbs = [PublishWeights(live, every_n_train_steps=2),
        ...        AsyncEvaluator(live, generate_random_dataloader(8, 2, 4), accuracy, lg)]
        >>> _ = train(unit, generate_random_dataloader(8, 2, 2), max_epochs=1, callbacks=cbs)
        >>> 4 in lg.log_buffer and "async_eval/accuracy" in lg.log_buffer[4]
        True
    """

    def __init__(
        self,
        live: LiveModel,
        dataloader: Iterable[Any],
        evaluate_fn: EvaluateFn,
        loggers: MetricLogger | Sequence[MetricLogger],
        *,
        prefix: str = "async_eval/",
    ) -> None:
        if not isinstance(live, LiveModel):
            raise TypeError(
                f"live={live!r} is invalid: expected a torchkit.live.LiveModel. Pass the one "
                "PublishWeights publishes into."
            )
        if not callable(evaluate_fn):
            raise TypeError(
                f"evaluate_fn={evaluate_fn!r} is invalid: expected a callable (module, batches) "
                "-> {name: value}."
            )
        self.live = live
        self.dataloader = dataloader
        self.evaluate_fn = evaluate_fn
        self.loggers = as_logger_list("loggers", loggers)
        self.prefix = prefix
        self.history: list[tuple[int, int, dict[str, float]]] = []
        """``(train_step, version, metrics)`` for every evaluation logged so far."""
        self._inbox: queue.SimpleQueue[tuple[int, Snapshot, Iterator[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._outbox: collections.deque[tuple[Snapshot, Any]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._idle = True  # read on every step: a plain bool, not the Event below
        self._finished = threading.Event()
        self._last_version = 0

    # ---- training-thread side --------------------------------------------------------------

    def on_train_start(self, state: State, unit: Any) -> None:
        self._last_version = self.live.version
        self._idle = True
        self._thread = threading.Thread(target=self._work, name="AsyncEvaluator", daemon=True)
        self._thread.start()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if self._idle and (self._outbox or self.live._version != self._last_version):
            self._service()

    def on_train_end(self, state: State, unit: Any) -> None:
        if not self._idle:
            self._finished.wait()
        self._service()  # the newest version gets an evaluation too
        self._stop()
        self._drain()

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        self._stop()
        for _, result in self._outbox:
            if isinstance(result, BaseException) and result is not exc:
                logger.warning("AsyncEvaluator: an evaluation also failed", exc_info=result)
        self._outbox.clear()

    def _service(self) -> None:
        self._drain()
        if self._idle and self.live._version != self._last_version:
            self._start()

    def _drain(self) -> None:
        """Log finished evaluations; re-raise the first failure (with its traceback)."""
        while self._outbox:
            snap, result = self._outbox.popleft()
            if isinstance(result, BaseException):
                raise result
            log_to_all(self.loggers, result, snap.train_step)
            self.history.append((snap.train_step, snap.version, result))

    def _start(self) -> None:
        index, snap = self.live._pin()
        try:
            batches = self._open_batches()
        except BaseException:
            self.live._unpin(index)
            raise
        self._last_version = snap.version
        self._idle = False
        self._finished.clear()
        self._inbox.put((index, snap, batches))

    def _open_batches(self) -> Iterator[Any]:
        # A DataLoader draws its base seed (and a shuffling sampler its seed) from the global
        # CPU RNG when its iterator starts. Doing that here, with the RNG state restored
        # afterwards, keeps the training thread's random stream exactly as without us.
        with torch.random.fork_rng(devices=[]):
            it = iter(self.dataloader)
            try:
                first = next(it)
            except StopIteration:
                return iter(())
        return itertools.chain((first,), it)

    def _stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._inbox.put(None)
            thread.join()

    # ---- background-thread side ------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            index, snap, batches = item
            try:
                self.live._wait_ready(index)
                with torch.inference_mode():
                    metrics = self.evaluate_fn(snap.module, batches)
                    result: Any = {self.prefix + k: float(v) for k, v in metrics.items()}
            except BaseException as exc:  # handed to the training thread, never lost
                result = exc
            finally:
                self.live._unpin(index)
            self._outbox.append((snap, result))
            self._idle = True
            self._finished.set()
