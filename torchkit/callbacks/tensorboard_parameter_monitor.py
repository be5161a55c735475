"""``TensorBoardParameterMonitor``: histograms of every parameter at each train epoch end."""

from __future__ import annotations

from typing import Any

from torchkit.callbacks.callback import Callback
from torchkit.loop.state import State


class TensorBoardParameterMonitor(Callback):
    """At the end of each train epoch, writes a histogram of every parameter of every tracked
    module (``parameters/<module>.<param>``) at the epoch count, through a
    ``TensorBoardLogger`` (which writes on rank 0 only).

    Args:
        logger: a ``TensorBoardLogger`` (anything with ``log_histogram(name, values, step)``).

    Raises:
        TypeError: ``logger`` has no ``log_histogram``.

    Example:
        >>> import tempfile
        >>> from torchkit import train
        >>> from torchkit.loggers import TensorBoardLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> tb = TensorBoardLogger(tempfile.mkdtemp())
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1,
        ...           callbacks=[TensorBoardParameterMonitor(tb)])
        >>> tb.close()
    """

    def __init__(self, logger: Any) -> None:
        if not callable(getattr(logger, "log_histogram", None)):
            raise TypeError(
                f"logger={logger!r} is invalid: expected a TensorBoardLogger (with "
                "log_histogram). Pass torchkit.loggers.TensorBoardLogger(path)."
            )
        self.logger = logger

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        step = unit.train_progress.num_epochs_completed
        for mod_name, module in unit.tracked_modules().items():
            for name, param in module.named_parameters():
                self.logger.log_histogram(f"parameters/{mod_name}.{name}", param.detach(), step)
