"""Small pieces of AutoUnit: option checks, counters, metric targets, anomaly mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import torch

NonFinitePolicy = Literal["raise", "skip"]
StepLRInterval = Literal["step", "epoch"]
_POLICIES = ("raise", "skip")
_INTERVALS = ("step", "epoch")


def check_options(
    *,
    step_lr_interval: Any,
    gradient_accumulation_steps: Any,
    clip_grad_norm: Any,
    clip_grad_value: Any,
    non_finite_policy: Any,
) -> None:
    """Validate AutoUnit's scalar options before anything is built.

    Raises:
        ValueError: a value out of range or an unknown choice.
        TypeError: a non-integer ``gradient_accumulation_steps``.
    """
    if step_lr_interval not in _INTERVALS:
        raise ValueError(
            f"step_lr_interval={step_lr_interval!r} is invalid: expected one of {_INTERVALS}. "
            "Use 'step' to step the LR scheduler after every optimizer step."
        )
    k = gradient_accumulation_steps
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(
            f"gradient_accumulation_steps={k!r} is invalid: expected an int >= 1. "
            "Use 1 to step the optimizer after every batch."
        )
    if k < 1:
        raise ValueError(
            f"gradient_accumulation_steps must be >= 1, got {k}. "
            "Use 1 to step the optimizer after every batch."
        )
    for name, value in (("clip_grad_norm", clip_grad_norm), ("clip_grad_value", clip_grad_value)):
        if value is not None and not value > 0:
            raise ValueError(
                f"{name}={value!r} is invalid: expected a positive number or None (no clipping)."
            )
    if non_finite_policy is not None and non_finite_policy not in _POLICIES:
        raise ValueError(
            f"non_finite_policy={non_finite_policy!r} is invalid: expected None, 'raise' or "
            "'skip'. Use 'skip' to drop updates whose gradients contain inf or nan."
        )


def check_swa_strategy(swa_params: Any, strategy: Any) -> None:
    """Refuse SWA/EMA with a sharded strategy before the module is wrapped.

    Raises:
        ValueError: ``swa_params`` with ``"fsdp"`` / ``"fsdp2"`` or their strategy classes.
    """
    if swa_params is None:
        return
    from torchkit.strategies.fsdp import FSDPStrategy
    from torchkit.strategies.fsdp2 import FSDP2Strategy

    if strategy in ("fsdp", "fsdp2") or isinstance(strategy, (FSDPStrategy, FSDP2Strategy)):
        raise ValueError(
            f"swa_params={swa_params!r} is invalid with strategy={strategy!r}: the averaged "
            "model is a copy of the module, and a sharded (FSDP) module cannot be copied. "
            "Use SWA/EMA with DDPStrategy or a single device, or drop swa_params."
        )


class AutoUnitCounters:
    """Optimizer-step bookkeeping that a checkpoint must hold for an exact resume.

    Attributes:
        num_optimizer_steps: optimizer steps taken (skipped ones excluded).
        num_non_finite_skips: updates dropped by ``non_finite_policy="skip"``.
    """

    def __init__(self) -> None:
        self.num_optimizer_steps = 0
        self.num_non_finite_skips = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_optimizer_steps": self.num_optimizer_steps,
            "num_non_finite_skips": self.num_non_finite_skips,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_optimizer_steps = int(state_dict["num_optimizer_steps"])
        self.num_non_finite_skips = int(state_dict["num_non_finite_skips"])


def metric_target(data: Any) -> Any:
    """The target of a batch for ``metrics.update(outputs, target)``.

    Raises:
        TypeError: the batch is neither a tuple/list nor a dict with a target key.
    """
    if isinstance(data, (tuple, list)) and data:
        return data[-1]
    if isinstance(data, Mapping):
        for key in ("target", "label", "labels"):
            if key in data:
                return data[key]
    raise TypeError(
        f"Cannot find the metric target in a batch of type {type(data).__name__}: the default "
        "AutoUnit.update_metrics takes data[-1] of a tuple/list or data['target'|'label'|"
        "'labels'] of a dict. Override update_metrics(self, state, data, outputs) for this batch."
    )


def non_scalar_loss_error(loss: torch.Tensor) -> ValueError:
    return ValueError(
        f"compute_loss must return a scalar loss (a 0-d tensor), got a loss of shape "
        f"{tuple(loss.shape)}. Reduce it (e.g. loss.mean()), or return "
        "(loss_sum, outputs, num_items) for a count-weighted loss."
    )


def bad_result_error(result: Any) -> TypeError:
    return TypeError(
        f"compute_loss returned {type(result).__name__}: expected a tuple (loss, outputs) or "
        "(loss_sum, outputs, num_items). Return e.g. `return loss, outputs`."
    )


class AnomalyMode:
    """A reusable context turning on autograd anomaly detection (``detect_anomaly=True``)."""

    def __init__(self) -> None:
        self._inner: Any = None

    def __enter__(self) -> None:
        self._inner = torch.autograd.set_detect_anomaly(True)
        self._inner.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._inner.__exit__(exc_type, exc, tb)
        self._inner = None


@dataclass
class TrainStepResults:
    """What ``on_train_step_end`` receives.

    Attributes:
        loss: the micro-batch loss as ``compute_loss`` returned it (not divided by the
            accumulation steps), detached, on device.
        total_grad_norm: the gradient norm before clipping on steps that update the weights
            with ``clip_grad_norm`` set; None otherwise.
        outputs: the outputs ``compute_loss`` returned.
    """

    loss: torch.Tensor
    total_grad_norm: torch.Tensor | None
    outputs: Any


class Window:
    """The accumulation window in progress."""

    __slots__ = ("grad_norm", "items", "num_pending")

    def __init__(self) -> None:
        self.num_pending = 0  # micro-batches accumulated since the last optimizer step
        self.items: Any = None  # sum of num_items in a count-weighted window
        self.grad_norm: torch.Tensor | None = None  # of the last update, on device
