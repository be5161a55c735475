"""Precision: fp32, autocast (bf16/fp16) and fp16 with a ``GradScaler``; one class each."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch

PrecisionName = Literal["fp32", "fp16", "bf16"]
_NAMES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


class Precision:
    """Full precision (fp32): no autocast, plain ``backward`` and ``optimizer.step``.

    Subclasses change only what differs, so ``AutoUnit`` never branches on the precision.

    Example:
        >>> p = Precision()
        >>> p.dtype
        torch.float32
    """

    dtype: torch.dtype = torch.float32
    grad_scaler: Any = None
    uses_autocast: bool = False
    """True when ``autocast()`` is not a no-op; lets ``AutoUnit`` skip entering it per step."""

    @property
    def has_plain_update(self) -> bool:
        """True when ``backward``, ``unscale_`` and ``step`` are this class's plain ones, so
        ``AutoUnit`` may call ``loss.backward()`` and ``optimizer.step()`` itself."""
        cls = type(self)
        return all(
            getattr(cls, n) is getattr(Precision, n) for n in ("backward", "unscale_", "step")
        )

    def __init__(self) -> None:
        # reused every step: entering a nullcontext is the cheapest possible no-op
        self._autocast: AbstractContextManager[Any] = contextlib.nullcontext()

    def autocast(self) -> AbstractContextManager[Any]:
        """The context the forward pass (``compute_loss``) runs in."""
        return self._autocast

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled first when a ``GradScaler`` is used)."""
        loss.backward()  # type: ignore[no-untyped-call]

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide gradients by the loss scale; called exactly once per optimizer step."""

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Step the optimizer; returns False when the step was skipped (fp16 overflow)."""
        optimizer.step()
        return True


class AutocastPrecision(Precision):
    """``torch.autocast`` for ``device_type`` with ``dtype``; fp32 master weights.

    Args:
        device_type: ``"cpu"``, ``"cuda"``...
        dtype: ``torch.bfloat16`` or ``torch.float16``.

    Example:
        >>> p = AutocastPrecision("cpu", torch.bfloat16)
        >>> with p.autocast():
        ...     y = torch.nn.Linear(2, 2)(torch.ones(1, 2))
        >>> y.dtype
        torch.bfloat16
    """

    uses_autocast = True

    def __init__(self, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.device_type = device_type

    def autocast(self) -> AbstractContextManager[Any]:
        # a fresh object each step: autocast saves the previous state on itself on entry
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


class GradScalerPrecision(AutocastPrecision):
    """fp16 autocast with ``torch.amp.GradScaler``.

    ``unscale_`` runs exactly once per optimizer step, before clipping or reading a norm.
    When the scaler skips a step (inf/nan gradients) ``step`` returns False, so the LR
    scheduler is not stepped either.

    Args:
        device_type: the device type of the module.

    Example:
        >>> p = GradScalerPrecision("cpu")
        >>> p.grad_scaler.is_enabled()
        True
    """

    def __init__(self, device_type: str) -> None:
        super().__init__(device_type, torch.float16)
        self.grad_scaler = torch.amp.GradScaler(device_type)

    def backward(self, loss: torch.Tensor) -> None:
        self.grad_scaler.scale(loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        self.grad_scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        scaler = self.grad_scaler
        # note: CPU-GPU sync points, fp16 only and once per optimizer step: GradScaler.step
        # itself reads found_inf on the host, and telling whether it skipped needs the scale.
        scale_before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        return bool(scaler.get_scale() >= scale_before)


def resolve_precision(
    precision: str | torch.dtype | Precision | None, device: torch.device
) -> Precision:
    """Turn a precision name, dtype or ``Precision`` into a ``Precision`` for ``device``.

    Raises:
        ValueError: an unknown name or dtype.
        RuntimeError: fp16/bf16 requested on a device type without autocast support.
    """
    if isinstance(precision, Precision):
        return precision
    dtype = _to_dtype(precision)
    if dtype == torch.float32:
        return Precision()
    name = "fp16" if dtype == torch.float16 else "bf16"
    available = getattr(torch.amp, "is_autocast_available", None)
    if available is not None and not available(device.type):
        raise RuntimeError(
            f"precision={precision!r} is not supported on device={device}: torch.autocast "
            f"has no {device.type!r} backend. Use precision='fp32' or a CUDA/CPU device."
        )
    if name == "fp16":
        if not hasattr(torch.amp, "GradScaler"):  # torch < 2.3 has only torch.cuda.amp
            raise RuntimeError(
                f"precision='fp16' on device={device} needs torch.amp.GradScaler (torch >= 2.3). "
                "Upgrade torch or use precision='bf16'."
            )
        return GradScalerPrecision(device.type)
    return AutocastPrecision(device.type, dtype)


def _to_dtype(precision: str | torch.dtype | None) -> torch.dtype:
    if precision is None:
        return torch.float32
    if isinstance(precision, torch.dtype):
        if precision in _NAMES.values():
            return precision
        raise ValueError(
            f"precision={precision!r} is invalid: expected torch.float32, torch.float16 or "
            "torch.bfloat16 (or 'fp32', 'fp16', 'bf16')."
        )
    if isinstance(precision, str) and precision in _NAMES:
        return _NAMES[precision]
    raise ValueError(
        f"precision={precision!r} is invalid: expected one of {tuple(_NAMES)}, a torch dtype "
        "or a Precision instance. Use 'bf16' for mixed precision on CPU or recent GPUs."
    )
