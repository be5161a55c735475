"""``SystemResourcesMonitor``: logs CPU, memory, swap and CUDA memory usage."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch

from torchkit.callbacks._logging_utils import (
    as_logger_list,
    check_choice,
    check_interval,
    log_to_all,
)
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loop.state import State

logger = logging.getLogger(__name__)

_MIB = float(1 << 20)


def system_stats(process: Any = None) -> dict[str, float]:
    """A snapshot of host and CUDA resource usage (no device sync: the CUDA figures come from
    the caching allocator's counters).

    Keys: ``system/cpu_percent`` (this process, since the previous call), ``system/rss_mib``,
    ``system/vm_percent``, ``system/swap_percent`` and, with CUDA,
    ``system/cuda_allocated_mib``, ``system/cuda_reserved_mib``,
    ``system/cuda_max_allocated_mib``.
    """
    import psutil

    proc = process if process is not None else psutil.Process(os.getpid())
    stats = {
        "system/cpu_percent": float(proc.cpu_percent(interval=None)),
        "system/rss_mib": proc.memory_info().rss / _MIB,
        "system/vm_percent": float(psutil.virtual_memory().percent),
        "system/swap_percent": float(psutil.swap_memory().percent),
    }
    if torch.cuda.is_available() and _cuda_initialized():
        stats["system/cuda_allocated_mib"] = torch.cuda.memory_allocated() / _MIB
        stats["system/cuda_reserved_mib"] = torch.cuda.memory_reserved() / _MIB
        stats["system/cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / _MIB
    return stats


class SystemResourcesMonitor(Callback):
    """Logs ``system_stats()`` after every train step (``"step"``, as TNT; ``every_n_steps``
    thins it out) or at each train epoch end (``"epoch"``), at the global train step. Every
    rank logs through its own loggers (file loggers write on rank 0 unless told otherwise).

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        logging_interval: ``"step"`` or ``"epoch"``.
        every_n_steps: with ``logging_interval="step"``, log every this many steps (default
            1: every step).

    Raises:
        ValueError: a bad ``logging_interval`` or ``every_n_steps``.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1,
        ...           callbacks=[SystemResourcesMonitor(lg)])
        >>> lg.log_buffer[2]["system/rss_mib"] > 0
        True
    """

    def __init__(
        self,
        loggers: MetricLogger | Sequence[MetricLogger],
        logging_interval: Literal["step", "epoch"] = "epoch",
        every_n_steps: int = 1,
    ) -> None:
        self.logging_interval = check_choice(
            "logging_interval", logging_interval, ("step", "epoch")
        )
        self.every_n_steps = check_interval("every_n_steps", every_n_steps)
        if self.logging_interval == "epoch" and every_n_steps != 1:
            logger.warning(
                "SystemResourcesMonitor: every_n_steps=%d has no effect with "
                "logging_interval='epoch'. Pass logging_interval='step' to log every N steps.",
                every_n_steps,
            )
        self.loggers = as_logger_list("loggers", loggers)
        self._process: Any = None

    def _log(self, unit: Any) -> None:
        if self._process is None:
            import psutil

            self._process = psutil.Process(os.getpid())
        log_to_all(
            self.loggers, system_stats(self._process), unit.train_progress.num_steps_completed
        )

    def on_train_start(self, state: State, unit: Any) -> None:
        import psutil

        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(interval=None)  # the first reading only starts the window

    def on_train_step_end(self, state: State, unit: Any) -> None:
        steps = unit.train_progress.num_steps_completed
        if self.logging_interval == "step" and steps % self.every_n_steps == 0:
            self._log(unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        if self.logging_interval == "epoch":
            self._log(unit)


def _cuda_initialized() -> bool:
    """True once this process created a CUDA context (never creates one itself)."""
    return bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]
