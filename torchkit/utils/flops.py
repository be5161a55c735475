"""FLOP counting for MFU: a transformer formula, a measured count, and dense peak FLOP/s."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch

logger = logging.getLogger(__name__)

# Dense (no 2:4 sparsity) tensor-core peaks from the vendor datasheets, FLOP/s per device.
# Datasheets often print the sparse figure, twice the dense one; only dense figures belong
# here, or MFU comes out halved. Keys: (name of the card, compute dtype).
_DENSE_PEAKS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "H100 SXM": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "H100 NVL": {"bf16": 835e12, "fp16": 835e12, "tf32": 417.5e12, "fp32": 60e12},
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51.2e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    "L40S": {"bf16": 362.05e12, "fp16": 362.05e12, "tf32": 183e12, "fp32": 91.6e12},
    "L4": {"bf16": 121e12, "fp16": 121e12, "tf32": 60e12, "fp32": 30.3e12},
    "A10": {"bf16": 125e12, "fp16": 125e12, "tf32": 62.5e12, "fp32": 31.2e12},
    "V100": {"fp16": 125e12, "fp32": 15.7e12},
}

_DTYPE_KEYS = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def _card_of(device_name: str) -> str | None:
    """The ``_DENSE_PEAKS`` key of a ``torch.cuda.get_device_name()`` string, or ``None``."""
    words = device_name.upper().replace("-", " ").split()
    if "H200" in device_name.upper():
        return "H200"
    if "H100" in words:
        if "NVL" in words:
            return "H100 NVL"
        if "PCIE" in words:
            return "H100 PCIe"
        if "HBM3" in words or any(w.startswith("SXM") for w in words):
            return "H100 SXM"
        return None  # a bare "H100" could be any of the three
    for card in ("A100", "L40S", "L4", "A10", "V100"):
        if card in words:
            return card
    return None


def dtype_key(dtype: torch.dtype | str) -> str:
    """``"bf16"``, ``"fp16"``, ``"tf32"`` or ``"fp32"`` for a compute dtype; fp32 counts as
    tf32 when float32 matmuls may use TF32 (``torch.backends.cuda.matmul.allow_tf32``)."""
    if isinstance(dtype, str):
        if dtype not in ("bf16", "fp16", "tf32", "fp32"):
            raise ValueError(
                f"dtype={dtype!r} is invalid: expected 'bf16', 'fp16', 'tf32', 'fp32' or a "
                "torch dtype. Pass the dtype the matmuls run in."
            )
        return dtype
    if dtype not in _DTYPE_KEYS:
        raise ValueError(
            f"dtype={dtype!r} is invalid: expected torch.bfloat16, torch.float16 or "
            "torch.float32. Pass the dtype the matmuls run in."
        )
    key = _DTYPE_KEYS[dtype]
    if key == "fp32" and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return key


def peak_flops_for(device_name: str, dtype: torch.dtype | str = torch.bfloat16) -> float | None:
    """Dense peak FLOP/s of one device, from its ``torch.cuda.get_device_name()``.

    Args:
        device_name: e.g. ``"NVIDIA H100 80GB HBM3"``, ``"NVIDIA H200"``.
        dtype: the compute dtype (``torch.bfloat16``, ``torch.float16``, ``torch.float32``)
            or one of ``"bf16"``, ``"fp16"``, ``"tf32"``, ``"fp32"``.

    Returns:
        FLOP/s, or ``None`` (and one warning) when the device or dtype is not in the table.

    Raises:
        ValueError: an unsupported ``dtype``.

    Example:
        >>> peak_flops_for("NVIDIA H100 80GB HBM3", "bf16")
        989400000000000.0
        >>> peak_flops_for("NVIDIA H200", torch.bfloat16)
        989400000000000.0
    """
    key = dtype_key(dtype)
    card = _card_of(device_name)
    peak = _DENSE_PEAKS.get(card, {}).get(key) if card is not None else None
    if peak is None:
        logger.warning(
            "no dense peak FLOP/s known for device %r in %s: MFU is not logged. Pass "
            "peak_flops=<FLOP/s of one device> to ThroughputLogger.",
            device_name,
            key,
        )
    return peak


def transformer_flops_per_token(
    n_params: int,
    n_layers: int,
    n_heads: int,
    head_dim: int,
    seq_len: int,
    *,
    tied_embeddings: bool = True,
    vocab_size: int | None = None,
) -> int:
    """Training FLOPs (forward + backward) per token of a decoder-only transformer:
    ``6·N + 12·L·H·Q·T`` (the PaLM appendix; nanoGPT's ``estimate_mfu``).

    ``6·N`` counts the matmuls with the weights (2 FLOPs per multiply-add, times 3 for the
    backward pass); ``12·L·H·Q·T`` counts attention's scores and weighted sum over the full
    ``T`` (a causal mask's skipped half is counted, as everyone does, so figures compare).

    Args:
        n_params: parameters, without position embeddings (a lookup, no matmul). With tied
            embeddings the token embedding is the output head's matmul, so it is counted.
        n_layers: transformer blocks (``L``).
        n_heads: attention heads (``H``).
        head_dim: width of one head (``Q``).
        seq_len: tokens per sequence (``T``).
        tied_embeddings: ``False`` when the input embedding is a separate table; its
            ``vocab_size · n_heads · head_dim`` parameters are then a lookup and subtracted.
        vocab_size: required when ``tied_embeddings=False``.

    Returns:
        FLOPs per token, an int.

    Raises:
        ValueError: a non-positive size, or ``tied_embeddings=False`` without ``vocab_size``.

    Example:
        >>> round(transformer_flops_per_token(123_689_472, 12, 12, 64, 1024) / 1e6, 1)
        855.4
    """
    sizes = {"n_params": n_params, "n_layers": n_layers, "n_heads": n_heads,
             "head_dim": head_dim, "seq_len": seq_len}  # fmt: skip
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid: expected an int >= 1. Pass the size.")
    matmul_params = n_params
    if not tied_embeddings:
        if vocab_size is None or vocab_size < 1:
            raise ValueError(
                f"vocab_size={vocab_size!r} is invalid: expected an int >= 1 with "
                "tied_embeddings=False. Pass the vocabulary size."
            )
        matmul_params -= vocab_size * n_heads * head_dim
    return 6 * matmul_params + 12 * n_layers * n_heads * head_dim * seq_len


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)
    elif hasattr(obj, "__dict__"):  # model-output dataclasses (e.g. .logits)
        for v in vars(obj).values():
            yield from _tensors(v)


def measure_flops(module: torch.nn.Module, batch: Any, *, backward: bool = True) -> int:
    """FLOPs of one forward (and backward) pass of ``module`` on ``batch``, counted once with
    ``torch.utils.flop_counter.FlopCounterMode``.

    ``module(batch)`` runs for a tensor, ``module(*batch)`` for a tuple or list and
    ``module(**batch)`` for a dict. The backward pass is taken with ``torch.autograd.grad`` on
    the sum of the floating outputs, so the module's ``.grad`` fields are not touched. Works
    on a model and batch on the ``meta`` device, where nothing is computed.

    Args:
        module: the model.
        batch: one batch, already on the module's device.
        backward: also count the backward pass (``False``: forward only).

    Returns:
        FLOPs, an int (pass it as ``ThroughputLogger(flops_per_step=...)``).

    Raises:
        ValueError: ``backward=True`` but no output requires grad.

    Example:
        >>> measure_flops(torch.nn.Linear(4, 3, bias=False), torch.ones(2, 4))  # 2·2·4·3 each way
        96
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        if isinstance(batch, Mapping):
            out = module(**batch)
        elif isinstance(batch, (tuple, list)):
            out = module(*batch)
        else:
            out = module(batch)
        if backward:
            leaves = [t for t in _tensors(out) if t.is_floating_point() and t.requires_grad]
            if not leaves:
                raise ValueError(
                    "backward=True is invalid: no floating output of the module requires grad. "
                    "Pass backward=False to count the forward pass only."
                )
            params = [p for p in module.parameters() if p.requires_grad]
            loss = sum((t.float().sum() for t in leaves), torch.zeros((), device=leaves[0].device))
            torch.autograd.grad(loss, params, allow_unused=True)
    return int(counter.get_total_flops())
