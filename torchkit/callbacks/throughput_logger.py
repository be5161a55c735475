"""``ThroughputLogger``: items/s, optional tokens/s, and model FLOPs utilisation (MFU)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import torch

from torchkit.callbacks._logging_utils import as_logger_list, check_interval, log_to_all
from torchkit.callbacks.callback import Callback
from torchkit.loggers.metric_logger import MetricLogger, to_float
from torchkit.loop.state import State

logger = logging.getLogger(__name__)


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


def _check_flops_args(
    flops_per_batch: float | None,
    peak_flops_per_second: float | None,
    flops_per_step: Any,
    peak_flops: Any,
) -> None:
    """Validate the FLOP arguments of ``ThroughputLogger`` (raises before any state is set)."""
    for old, new, v_old, v_new in (
        ("flops_per_batch", "flops_per_step", flops_per_batch, flops_per_step),
        ("peak_flops_per_second", "peak_flops", peak_flops_per_second, peak_flops),
    ):
        if v_old is not None and v_new is not None:
            raise ValueError(
                f"{old}={v_old!r} with {new}={v_new!r} is invalid: expected one of them. "
                f"Pass {new} only ({old} is its older name)."
            )
    legacy_only = flops_per_step is None and peak_flops is None
    if legacy_only and (flops_per_batch is None) != (peak_flops_per_second is None):
        raise ValueError(
            f"flops_per_batch={flops_per_batch!r}, peak_flops_per_second="
            f"{peak_flops_per_second!r} is invalid: expected both or neither. Pass both "
            "to log MFU, or flops_per_step= to look the peak up from the device."
        )
    if flops_per_step is None and flops_per_batch is None and peak_flops is not None:
        raise ValueError(
            f"peak_flops={peak_flops!r} is invalid without flops_per_step: expected both. "
            "Pass flops_per_step=<FLOPs of one train step> to log MFU."
        )
    if not (flops_per_step is None or callable(flops_per_step)) and (
        isinstance(flops_per_step, bool) or not isinstance(flops_per_step, (int, float))
    ):
        raise TypeError(
            f"flops_per_step={flops_per_step!r} is invalid: expected an int, a function "
            "step_output -> int or None. Pass the FLOPs of one train step."
        )
    for name, v in (("flops_per_batch", flops_per_batch), ("flops_per_step", flops_per_step),
                    ("peak_flops_per_second", peak_flops_per_second),
                    ("peak_flops", peak_flops)):  # fmt: skip
        if v is None or callable(v):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(
                f"{name}={v!r} is invalid: expected a number > 0. Pass FLOPs (per device)."
            )


class ThroughputLogger(Callback):
    """Logs train throughput every ``every_n_steps`` steps and at epoch end, over the wall time
    since the previous logging point:

    * ``train/items_per_second`` and ``train/items_total`` (exact counts);
    * ``train/tokens_per_second`` when ``tokens_fn`` is given;
    * with ``flops_per_step``: ``train/tflops_per_s`` (achieved, per device) and, when a peak
      is known, ``train/mfu`` (0..1) with ``train/peak_flops_used``, the denominator. Both are
      taken over the last ``window`` steps (step-end to step-end wall time).

    The peak is ``peak_flops`` when given. Otherwise it is looked up once, at train start,
    in a table of *dense* tensor-core peaks keyed by ``torch.cuda.get_device_name()`` of the
    unit's ``device`` and the compute dtype (the unit's ``precision.dtype``; fp32 counts as
    TF32 when ``torch.backends.cuda.matmul.allow_tf32`` is set). A device not in the table (or
    a CPU) gets one warning and no MFU; ``tflops_per_s`` is still logged.

    Args:
        loggers: one ``MetricLogger`` or a list of them.
        every_n_steps: logging interval in train steps.
        items_per_batch: a fixed count, a function ``step_output -> int``, or ``None`` to use
            dim 0 of the step's outputs.
        tokens_fn: optional ``step_output -> int`` (or 0-d tensor: summed on the device and
            read at logging points only).
        flops_per_batch: older name of ``flops_per_step`` (a number); with it,
            ``peak_flops_per_second`` is required.
        peak_flops_per_second: older name of ``peak_flops``.
        flops_per_step: model FLOPs of one train step on one device (forward + backward),
            as a number or a function ``step_output -> int`` called every step (the step
            output, as for ``items_per_batch``: callbacks do not see the batch). See
            ``torchkit.utils.transformer_flops_per_token`` and ``measure_flops``.
        peak_flops: the device's peak FLOP/s for the dtype in use; ``None`` looks it up.
        window: steps the FLOP rate and MFU are averaged over.
        clock: the wall clock (seconds); replaceable for tests.

    Raises:
        ValueError: ``every_n_steps`` or ``window`` < 1, a FLOP figure <= 0, an old and a new
            name given together, or only one of ``flops_per_batch`` /
            ``peak_flops_per_second``.
        TypeError: ``flops_per_step`` is not a number or function, or the function returns
            something other than an int (raised at that step).

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
        flops_per_step: float | Callable[[Any], int] | None = None,
        peak_flops: float | None = None,
        window: int = 50,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.every_n_steps = check_interval("every_n_steps", every_n_steps)
        self.window = check_interval("window", window, "Pass e.g. window=50")
        self.loggers = as_logger_list("loggers", loggers)
        _check_flops_args(flops_per_batch, peak_flops_per_second, flops_per_step, peak_flops)
        if isinstance(items_per_batch, int) and items_per_batch < 1:
            raise ValueError(
                f"items_per_batch={items_per_batch!r} is invalid: expected an int >= 1, a "
                "function or None. Pass the batch size."
            )
        self.items_per_batch = items_per_batch
        self.tokens_fn = tokens_fn
        self.flops_per_step = flops_per_step if flops_per_step is not None else flops_per_batch
        self.peak_flops = peak_flops if peak_flops is not None else peak_flops_per_second
        self.clock = clock
        self.items_total = 0
        self._items = 0
        self._tokens: Any = 0
        self._steps = 0
        self._t0 = clock()
        self._last_logged_step = -1
        # step-end times (and per-step FLOPs of a function) of the last `window` steps
        self._times: deque[float] | None = None
        self._step_flops: deque[int] = deque(maxlen=self.window)
        self._peak: float | None = self.peak_flops
        self._peak_looked_up = self.peak_flops is not None

    @property
    def flops_per_batch(self) -> float | None:
        """Older name of ``flops_per_step`` (``None`` when it is a function)."""
        return None if callable(self.flops_per_step) else self.flops_per_step

    @property
    def peak_flops_per_second(self) -> float | None:
        """Older name of ``peak_flops``."""
        return self.peak_flops

    def _count(self, step_output: Any) -> int:
        n = self.items_per_batch
        if n is None:
            return batch_items_from_output(step_output)
        return n if isinstance(n, int) else int(n(step_output))

    def on_train_start(self, state: State, unit: Any) -> None:
        self._t0 = self.clock()
        if self.flops_per_step is not None:
            self._times = deque([self._t0], maxlen=self.window + 1)
            self._step_flops.clear()
            if not self._peak_looked_up:
                self._peak_looked_up = True
                self._peak = _device_peak(unit)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        ts = state.train_state
        output = ts.step_output if ts is not None else None
        items = self._count(output)
        self._items += items
        self.items_total += items
        self._steps += 1
        if self.tokens_fn is not None:
            self._tokens = self._tokens + self.tokens_fn(output)
        now = None
        if self._times is not None:
            now = self.clock()
            self._times.append(now)
            if callable(self.flops_per_step):
                self._step_flops.append(self._call_flops(output))
        if unit.train_progress.num_steps_completed % self.every_n_steps == 0:
            self._log(unit, now)

    def _call_flops(self, output: Any) -> int:
        assert callable(self.flops_per_step)
        flops = self.flops_per_step(output)
        if isinstance(flops, bool) or not isinstance(flops, int):
            raise TypeError(
                f"flops_per_step={self.flops_per_step!r} is invalid: expected a function "
                f"returning an int, got {flops!r} ({type(flops).__name__}). Return the step's "
                "FLOPs as a Python int (e.g. int(...) of a count computed on the host)."
            )
        return flops

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._log(unit)

    def _flops_payload(self) -> dict[str, float]:
        times = self._times
        if times is None or len(times) < 2:
            return {}
        elapsed = times[-1] - times[0]
        if elapsed <= 0:
            return {}
        n = len(times) - 1
        f = self.flops_per_step
        flops = sum(self._step_flops) if callable(f) else (f or 0) * n
        achieved = flops / elapsed
        payload = {"train/tflops_per_s": achieved / 1e12}
        if self._peak is not None:
            payload["train/mfu"] = achieved / self._peak
            payload["train/peak_flops_used"] = float(self._peak)
        return payload

    def _log(self, unit: Any, now: float | None = None) -> None:
        step = unit.train_progress.num_steps_completed
        if step == self._last_logged_step or self._steps == 0:
            return
        self._last_logged_step = step
        if now is None:
            now = self.clock()
        elapsed = max(now - self._t0, 1e-12)
        payload = {
            "train/items_per_second": self._items / elapsed,
            "train/items_total": float(self.items_total),
        }
        if self.tokens_fn is not None:
            payload["train/tokens_per_second"] = to_float(self._tokens) / elapsed
        payload.update(self._flops_payload())
        log_to_all(self.loggers, payload, step)
        self._items, self._tokens, self._steps, self._t0 = 0, 0, 0, now


def _device_peak(unit: Any) -> float | None:
    """The dense peak FLOP/s of the unit's CUDA device in its compute dtype, or ``None`` with
    a warning (a CPU, an unknown card)."""
    from torchkit.utils.flops import peak_flops_for

    device = getattr(unit, "device", None)
    if not isinstance(device, torch.device) or device.type != "cuda":
        logger.warning(
            "ThroughputLogger: no peak FLOP/s for device %r, so MFU is not logged (only "
            "train/tflops_per_s). Pass peak_flops=<FLOP/s of one device> to log it.",
            str(device) if device is not None else None,
        )
        return None
    dtype = getattr(getattr(unit, "precision", None), "dtype", torch.float32)
    return peak_flops_for(torch.cuda.get_device_name(device), dtype)
