"""Seeding every RNG a training run draws from (python, numpy, torch, CUDA)."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)

_MAX_SEED = 2**32 - 1


def seed(seed: int, deterministic: str | int | None = None) -> None:
    """Seed python's ``random``, numpy and torch (all devices).

    Args:
        seed: an integer in ``[0, 2**32 - 1]``.
        deterministic: ``None`` leaves torch's determinism settings alone; ``"default"``/``0``
            turns deterministic algorithms off; ``"warn"``/``1`` warns on nondeterministic
            ops; ``"error"``/``2`` raises on them (and disables cuDNN benchmarking).

    Raises:
        ValueError: ``seed`` is out of range or ``deterministic`` is unknown.

    Example:
        >>> seed(0)
        >>> a = torch.rand(1); seed(0)
        >>> bool(torch.equal(a, torch.rand(1)))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(
            f"seed={seed!r} is invalid: expected an int in [0, {_MAX_SEED}]. "
            "Pass a non-negative integer such as 0."
        )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too
    if deterministic is None:
        return
    modes = {"default": 0, 0: 0, "warn": 1, 1: 1, "error": 2, 2: 2}
    if deterministic not in modes:
        raise ValueError(
            f"deterministic={deterministic!r} is invalid: expected None, 'default', 'warn' or "
            "'error' (or 0, 1, 2)."
        )
    level = modes[deterministic]
    torch.set_deterministic_debug_mode(level)
    if level > 0:
        torch.backends.cudnn.benchmark = False
