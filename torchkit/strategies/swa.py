"""Building the SWA / EMA averaged model and its schedule from ``SWAParams``."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn

from torchkit.strategies.params import SWAParams


def build_averaged_model(module: torch.nn.Module, params: SWAParams) -> AveragedModel:
    """An ``AveragedModel`` of ``module`` averaging as ``params`` says.

    Example:
        >>> m = build_averaged_model(torch.nn.Linear(2, 2), SWAParams(0, 1))
        >>> type(m).__name__
        'AveragedModel'
    """
    multi_avg_fn: Any = None
    if params.averaging_method == "ema":
        multi_avg_fn = (
            _lit_ema_fn(params.ema_decay)
            if params.use_lit
            else get_ema_multi_avg_fn(params.ema_decay)  # type: ignore[no-untyped-call]
        )
    # averaging_method == "swa": AveragedModel's default equal-weight running mean
    return AveragedModel(module, multi_avg_fn=multi_avg_fn, use_buffers=params.use_buffers)


def _lit_ema_fn(max_decay: float) -> Any:
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], num_averaged: Any) -> None:
        # the decay ramps up with the number of updates; computed on device, no host sync
        n = torch.as_tensor(num_averaged, dtype=torch.float32, device=ema[0].device)
        decay = torch.clamp((1.0 + n) / (10.0 + n), max=max_decay)
        weight = (1.0 - decay).to(ema[0].dtype)
        for e, c in zip(ema, current):
            e.lerp_(c, weight)

    return update


def build_swalr(optimizer: torch.optim.Optimizer, params: SWAParams) -> SWALR | None:
    """The ``SWALR`` scheduler for ``params.swalr_params`` (None when not configured)."""
    lr = params.swalr_params
    if lr is None:
        return None
    swa_lrs: Any = lr.swa_lrs
    return SWALR(
        optimizer,
        swa_lr=swa_lrs,
        anneal_epochs=lr.anneal_steps_or_epochs,
        anneal_strategy=lr.anneal_strategy,
    )
