"""``TLRScheduler``: the LR-scheduler base class under TNT's name (its ``utils.lr_scheduler``)."""

from __future__ import annotations

import torch

TLRScheduler = torch.optim.lr_scheduler.LRScheduler
"""Base class of every torch LR scheduler (public since torch 2.0; torchkit needs >= 2.4).

Example:
    >>> import torch
    >>> opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    >>> isinstance(torch.optim.lr_scheduler.StepLR(opt, 1), TLRScheduler)
    True
"""

__all__ = ["TLRScheduler"]
