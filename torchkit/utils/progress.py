"""Step estimates for an epoch, a loop or a ``fit`` (TNT's ``torchtnt.utils.progress``).

``Progress`` itself lives in ``torchkit.loop.progress``; it is also reachable here, as in TNT,
without this module importing the loop package up front.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [  # and ``Progress``, resolved on first access by ``__getattr__``
    "estimated_steps_in_epoch",
    "estimated_steps_in_fit",
    "estimated_steps_in_loop",
]


def __getattr__(name: str) -> Any:
    if name == "Progress":
        from torchkit.loop.progress import Progress

        return Progress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dataloader_len(dataloader: Iterable[Any]) -> int | None:
    try:
        return len(dataloader)  # type: ignore[arg-type]
    except (TypeError, NotImplementedError):
        return None


def estimated_steps_in_epoch(
    dataloader: Iterable[Any],
    *,
    num_steps_completed: int,
    max_steps: int | None,
    max_steps_per_epoch: int | None,
) -> float:
    """Steps the next epoch will run: the smallest of the loader length and the limits.

    Returns ``float('inf')`` when nothing bounds the epoch.

    Example:
        >>> estimated_steps_in_epoch(range(10), num_steps_completed=0, max_steps=4,
        ...                          max_steps_per_epoch=None)
        4
    """
    total: float = float("inf")
    n = _dataloader_len(dataloader)
    if n is not None:
        total = n
    if max_steps_per_epoch is not None:
        total = min(total, max_steps_per_epoch)
    if max_steps is not None:
        total = min(total, max_steps - num_steps_completed)
    return max(total, 0)


def estimated_steps_in_loop(
    dataloader: Iterable[Any],
    *,
    max_steps: int | None,
    max_steps_per_epoch: int | None,
    epochs: int | None,
) -> int | None:
    """Total steps of a loop of ``epochs`` epochs, or ``None`` when unbounded.

    Example:
        >>> estimated_steps_in_loop(range(10), max_steps=None, max_steps_per_epoch=3, epochs=2)
        6
    """
    per_epoch = estimated_steps_in_epoch(
        dataloader, num_steps_completed=0, max_steps=None, max_steps_per_epoch=max_steps_per_epoch
    )
    candidates: list[float] = []
    if epochs is not None and per_epoch != float("inf"):
        candidates.append(per_epoch * epochs)
    if max_steps is not None:
        candidates.append(max_steps)
    if not candidates:
        return None
    return int(min(candidates))


def estimated_steps_in_fit(
    *,
    train_dataloader: Iterable[Any],
    eval_dataloader: Iterable[Any],
    epochs: int | None,
    max_steps: int | None,
    max_train_steps_per_epoch: int | None,
    max_eval_steps_per_epoch: int | None,
    eval_every_n_steps: int | None,
    eval_every_n_epochs: int | None,
) -> int | None:
    """Total train + eval steps of a ``fit`` call, or ``None`` when unbounded.

    Evaluations are counted from both intervals: ``epochs // eval_every_n_epochs`` plus
    ``train_steps // eval_every_n_steps`` of them, each of one eval epoch's steps.

    Example:
        >>> estimated_steps_in_fit(train_dataloader=range(10), eval_dataloader=range(4),
        ...     epochs=2, max_steps=None, max_train_steps_per_epoch=None,
        ...     max_eval_steps_per_epoch=None, eval_every_n_steps=None, eval_every_n_epochs=1)
        28
    """
    # Both estimates go through the module-level ``estimated_steps_in_loop``, so patching
    # ``torchkit.utils.progress.estimated_steps_in_loop`` changes them, as in TNT's tests.
    train_total = estimated_steps_in_loop(
        train_dataloader,
        max_steps=max_steps,
        max_steps_per_epoch=max_train_steps_per_epoch,
        epochs=epochs,
    )
    if not train_total:
        return None
    if not eval_every_n_steps and not eval_every_n_epochs:
        return train_total
    eval_len = estimated_steps_in_loop(
        eval_dataloader, max_steps=None, max_steps_per_epoch=max_eval_steps_per_epoch, epochs=1
    )
    if not eval_len:
        return None
    n_evals = 0
    if eval_every_n_epochs and epochs:
        n_evals += epochs // eval_every_n_epochs
    if eval_every_n_steps:
        n_evals += train_total // eval_every_n_steps
    return train_total + n_evals * eval_len
