"""``ThroughputLogger``: items/s, optional tokens/s, and model FLOPs utilisation (MFU)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchkit.callbacks._logging_utils import as_logger_list, check_interval, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger, to_float
from torchkit.loop.state import State


def batch_items_from_output(step_output: Any) -> int:
    """Items in a step: dim 0 of the step's outputs (the tensor after the loss in a
    ``(loss, outputs)`` pair, or ``TrainStepResults.outputs``). Reading a shape is no sync."""
    outputs = getattr(step_output, "outputs", None)
    if outputs is None and isinstance(step_output, (tuple, list)) and len(step_output) > 1:
        outputs = step_output[1]
    if outputs is None:
        outputs = step_output
    while isinstance(outputs, (tuple, list)) and outputs:
        outputs = outputs[0]
    if isinstance(outputs, dict) and outputs:
        outputs = next(iter(outputs.values()))
    if isinstance(outputs, torch.Tensor) and outputs.dim() > 0:
        return int(outputs.shape[0])
    raise ValueError(
        f"items_per_batch=None is invalid for a step output of type {type(step_output).__name__}: "
        "expected (loss, outputs) with a batched outputs tensor. Pass items_per_batch=<int> or "
        "a function step_output -> int."
    )


class ThroughputLogger(Callback):
    """Logs train throughput every ``every_n_steps`` steps and at epoch end, over the wall time
    since the previous logging point:

    * ``train/items_per_second`` and ``train/items_total`` (exact counts);
    * ``train/tokens_per_second`` when ``tokens_fn`` is given;
    * ``train/mfu`` (0..1) when ``flops_per_batch`` and ``peak_flops_per_second`` are given
      (both per device).

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        every_n_steps: logging interval in train steps.
        items_per_batch: a fixed count, a function ``step_output -> int``, or ``None`` to use
            dim 0 of the step's outputs.
        tokens_fn: optional ``step_output -> int`` (or 0-d tensor: summed on the device and
            read at logging points only).
        flops_per_batch: model FLOPs of one train step on one device (forward + backward).
        peak_flops_per_second: the device's peak FLOP/s for the dtype in use.

    Raises:
        ValueError: ``every_n_steps`` < 1, a non-positive FLOP figure, or only one of them.

    Example:
        >>> from torchkit import train
        >>> from torchkit.loggers import InMemoryLogger
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> lg = InMemoryLogger()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(10, 2, 4), max_epochs=1,
        ...           callbacks=[ThroughputLogger(lg, every_n_steps=100)])
        >>> lg.log_buffer[3]["train/items_total"]
        10.0
    """

    def __init__(
        self,
        loggers: MetricLogger | Sequence[MetricLogger],
        every_n_steps: int = 100,
        *,
        items_per_batch: int | Callable[[Any], int] | None = None,
        tokens_fn: Callable[[Any], Any] | None = None,
        flops_per_batch: float | None = None,
        peak_flops_per_second: float | None = None,
    ) -> None:
        self.every_n_steps = check_interval("every_n_steps", every_n_steps)
        self.loggers = as_logger_list("loggers", loggers)
        if (flops_per_batch is None) != (peak_flops_per_second is None):
            raise ValueError(
                f"flops_per_batch={flops_per_batch!r}, peak_flops_per_second="
                f"{peak_flops_per_second!r} is invalid: expected both or neither. Pass both "
                "to log MFU."
            )
        for name, v in (("flops_per_batch", flops_per_batch),
                        ("peak_flops_per_second", peak_flops_per_second)):  # fmt: skip
            if v is not None and not v > 0:
                raise ValueError(f"{name}={v!r} is invalid: expected a number > 0. Pass FLOPs.")
        if isinstance(items_per_batch, int) and items_per_batch < 1:
            raise ValueError(
                f"items_per_batch={items_per_batch!r} is invalid: expected an int >= 1, a "
                "function or None. Pass the batch size."
            )
        self.items_per_batch = items_per_batch
        self.tokens_fn = tokens_fn
        self.flops_per_batch = flops_per_batch
        self.peak_flops_per_second = peak_flops_per_second
        self.items_total = 0
        self._items = 0
        self._tokens: Any = 0
        self._steps = 0
        self._t0 = time.perf_counter()
        self._last_logged_step = -1

    def _count(self, step_output: Any) -> int:
        n = self.items_per_batch
        if n is None:
            return batch_items_from_output(step_output)
        return n if isinstance(n, int) else int(n(step_output))

    def on_train_start(self, state: State, unit: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_step_end(self, state: State, unit: Any) -> None:
        ts = state.train_state
        output = ts.step_output if ts is not None else None
        items = self._count(output)
        self._items += items
        self.items_total += items
        self._steps += 1
        if self.tokens_fn is not None:
            self._tokens = self._tokens + self.tokens_fn(output)
        if unit.train_progress.num_steps_completed % self.every_n_steps == 0:
            self._log(unit)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._log(unit)

    def _log(self, unit: Any) -> None:
        step = unit.train_progress.num_steps_completed
        if step == self._last_logged_step or self._steps == 0:
            return
        self._last_logged_step = step
        now = time.perf_counter()
        elapsed = max(now - self._t0, 1e-12)
        payload = {
            "train/items_per_second": self._items / elapsed,
            "train/items_total": float(self.items_total),
        }
        if self.tokens_fn is not None:
            payload["train/tokens_per_second"] = to_float(self._tokens) / elapsed
        if self.flops_per_batch is not None and self.peak_flops_per_second is not None:
            achieved = self.flops_per_batch * self._steps / elapsed
            payload["train/mfu"] = achieved / self.peak_flops_per_second
        log_to_all(self.loggers, payload, step)
        self._items, self._tokens, self._steps, self._t0 = 0, 0, 0, now
