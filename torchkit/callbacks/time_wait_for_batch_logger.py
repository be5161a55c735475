"""``TimeWaitForBatchLogger``: logs how long the loop waited for data."""

from __future__ import annotations

from collections.abc import Sequence

from torchkit.callbacks.iteration_time_logger import RecentTimerLogger
from torchkit.loggers.metric_logger import MetricLogger


class TimeWaitForBatchLogger(RecentTimerLogger):
    """Every ``every_n_steps`` steps, logs ``<phase>/data_wait_time_s``: the mean time the
    loop spent between the end of the previous step and having the next batch (the loop's
    ``data_wait_time`` timer) over the last ``every_n_steps`` steps. A large value means the
    dataloader is the bottleneck.

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        every_n_steps: logging interval in steps.

    Raises:
        ValueError: ``every_n_steps`` < 1.

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
        self, loggers: MetricLogger | Sequence[MetricLogger], every_n_steps: int = 100
    ) -> None:
        # the window is the interval: each logged value covers the steps since the last one
        super().__init__(loggers, every_n_steps, every_n_steps)
