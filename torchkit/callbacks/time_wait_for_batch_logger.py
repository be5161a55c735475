"""``TimeWaitForBatchLogger``: logs how long the loop waited for data."""

from __future__ import annotations

from collections.abc import Sequence

from torchkit.callbacks.iteration_time_logger import RecentTimerLogger, resolve_every
from torchkit.loggers.metric_logger import MetricLogger


class TimeWaitForBatchLogger(RecentTimerLogger):
    """Every ``log_every_n_steps`` steps, logs ``<phase>/data_wait_time_s``: the mean time
    the loop spent between the end of the previous step and having the next batch (the loop's
    ``data_wait_time`` timer) over the steps since the previous log. A large value means the
    dataloader is the bottleneck.

    Args:
        logger: one ``MetricLogger`` or a list of them.
        log_every_n_steps: logging interval in steps (TNT's name and default).
        warmup_steps: log nothing for the first this many steps.
        every_n_steps: the same interval under torchkit's usual name.

    Raises:
        ValueError: an interval < 1 or a negative ``warmup_steps``.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[TimeWaitForBatchLogger(lg, every_n_steps=4)])
        >>> list(lg.log_buffer[4])
        ['train/data_wait_time_s']
    """

    timer_key = "data_wait_time"
    metric_name = "data_wait_time_s"

    def __init__(
        self,
        logger: MetricLogger | Sequence[MetricLogger],
        *,
        log_every_n_steps: int = 1,
        warmup_steps: int = 0,
        every_n_steps: int | None = None,
    ) -> None:
        every = resolve_every(log_every_n_steps, every_n_steps)
        # the window is the interval: each logged value covers the steps since the last one
        super().__init__(logger, every, every, warmup_steps)
