"""Telling a dataloader which epoch starts, so shuffling samplers reshuffle per epoch."""

from __future__ import annotations

from typing import Any


def set_dataloader_epoch(dataloader: Any, epoch: int) -> None:
    """Forward ``epoch`` to ``dataloader``.

    An object with its own ``set_epoch`` (a ``MultiDataLoader``, a Hugging Face iterable
    dataset...) gets the call itself; otherwise the ``set_epoch`` of the loader's sampler or
    batch sampler's sampler (e.g. ``DistributedSampler``) is called when there is one.

    Args:
        dataloader: any iterable of batches.
        epoch: the number of epochs completed so far.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, DistributedSampler
        >>> sampler = DistributedSampler(range(8), num_replicas=2, rank=0)
        >>> set_dataloader_epoch(DataLoader(range(8), sampler=sampler), 3)
        >>> sampler.epoch
        3
    """
    own = getattr(dataloader, "set_epoch", None)
    if callable(own):
        own(epoch)
        return
    for owner in (dataloader, getattr(dataloader, "batch_sampler", None)):
        sampler = getattr(owner, "sampler", None)
        if sampler is not None and callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(epoch)
            return
