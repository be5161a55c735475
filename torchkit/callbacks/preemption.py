"""Preemption signals (SIGTERM, SIGUSR1...): a handler that only sets a flag, and the
all-rank agreement on it at step boundaries. Used by the checkpointers."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PREEMPTION_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM,)


def check_signals(signals: Sequence[int] | None) -> tuple[signal.Signals, ...]:
    """Validate ``preemption_signals``: ``None``/``()`` turn handling off.

    Raises:
        TypeError: not a sequence of signal numbers.
        ValueError: an unknown signal, or one that cannot be caught (SIGKILL, SIGSTOP).
    """
    if signals is None:
        return ()
    if isinstance(signals, (str, bytes, int)) or not isinstance(signals, Sequence):
        raise TypeError(
            f"preemption_signals={signals!r} is invalid: expected a sequence of signals such as "
            "(signal.SIGTERM, signal.SIGUSR1), or () to turn preemption handling off."
        )
    out: list[signal.Signals] = []
    for s in signals:
        try:
            sig = signal.Signals(s)
        except (ValueError, TypeError):
            raise ValueError(
                f"preemption_signals={signals!r} is invalid: {s!r} is not a signal. Use members "
                "of the signal module, e.g. signal.SIGUSR1."
            ) from None
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(
                f"preemption_signals={signals!r} is invalid: {sig.name} cannot be caught. Use "
                "SIGTERM (Kubernetes, SLURM) and/or SIGUSR1 (SLURM --signal)."
            )
        out.append(sig)
    return tuple(dict.fromkeys(out))


class PreemptionWatcher:
    """Sets a flag when a preemption signal arrives; ranks agree on it at step boundaries.

    The signal handler does nothing but set the flag (no I/O, no locks), so it is safe at any
    point of the program. ``should_stop()`` is called by the checkpointer after each step:
    with one process it reads the flag; with several it all-reduces it on a CPU (gloo) group,
    so every rank takes the same decision at the same step and no device sync happens.

    Args:
        signals: the signals to handle; empty turns handling off.

    Example:
        >>> w = PreemptionWatcher((signal.SIGUSR1,))
        >>> w.install(); w.should_stop()
        False
        >>> w.uninstall()
    """

    def __init__(self, signals: Sequence[int]) -> None:
        self.signals = check_signals(signals)
        self._requested = False
        self._previous: dict[signal.Signals, Any] = {}
        self._group: Any = None
        self._distributed = False

    @property
    def enabled(self) -> bool:
        return bool(self.signals)

    @property
    def requested(self) -> bool:
        """True once a signal arrived on this rank."""
        return self._requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._requested = True

    def install(self, group: Any = None) -> None:
        """Install the handlers (main thread only) and remember the previous ones.

        Args:
            group: the CPU process group to agree on (``None``: the default group).
        """
        if not self.enabled:
            return
        from torchkit.utils.distributed import get_world_size

        self._group = group
        self._distributed = get_world_size() > 1
        self._requested = False
        if threading.current_thread() is not threading.main_thread():
            logger.warning(
                "The loop runs outside the main thread, so preemption signals %s cannot be "
                "handled; a signal will end the process without a checkpoint.",
                [s.name for s in self.signals],
            )
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for sig, prev in self._previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()

    def should_stop(self) -> bool:
        """Whether any rank received a signal (a collective when there are several ranks)."""
        if not self.enabled:
            return False
        if not self._distributed:
            return self._requested
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if self._requested else 0], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())  # a CPU tensor: no device sync
