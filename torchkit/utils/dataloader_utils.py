"""Reaching into a dataloader: the epoch for its sampler, its RNGs when resuming it."""

from __future__ import annotations

from typing import Any

import torch


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


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch generators a loader draws from: its own, its sampler's, its batch sampler's
    sampler's (torchdata's ``RandomSampler`` seeds a private one when given none).

    Example:
        >>> from torch.utils.data import DataLoader
        >>> g = torch.Generator()
        >>> loader_generators(DataLoader(range(4), shuffle=True, generator=g)) == [g]
        True
    """
    found: list[torch.Generator] = []
    batch_sampler = getattr(loader, "batch_sampler", None)
    for owner in (
        loader,
        getattr(loader, "sampler", None),
        getattr(batch_sampler, "sampler", None),
    ):
        gen = getattr(owner, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def generator_states(loader: Any) -> list[torch.Tensor]:
    """The states of ``loader_generators(loader)``, to hand to ``prime_restored_loader``."""
    return [g.get_state() for g in loader_generators(loader)]


def prime_restored_loader(loader: Any, generators: list[torch.Tensor] | None) -> None:
    """Build the iterator of a loader whose loaded state will not be continued, leaving the
    global torch RNG as it was and the loader's generators as ``generators`` (as saved).

    torchdata's ``StatefulDataLoader`` resumes a loaded state at the next ``iter()``; loaded
    with a finished epoch, that ``iter()`` builds the restored iterator and then a fresh one,
    drawing from the RNGs twice where the uninterrupted run draws once at its next epoch.
    Building the restored iterator here, with every RNG put back, makes the next ``iter()``
    start a fresh pass that draws exactly as the uninterrupted run's.
    """
    rng = torch.get_rng_state()
    iter(loader)
    torch.set_rng_state(rng)
    set_generator_states(loader, generators)


def set_generator_states(loader: Any, states: list[torch.Tensor] | None) -> None:
    """Put ``loader_generators(loader)`` back to ``states`` (from ``generator_states``)."""
    gens = loader_generators(loader)
    if states and len(states) == len(gens):
        for gen, state in zip(gens, states):
            gen.set_state(state)
