"""``Progress``: the completed-work counters a unit keeps per phase, checkpointable."""

from __future__ import annotations

from typing import Any


class Progress:
    """Counts completed epochs and steps for one phase.

    ``increment_step`` runs after every step and ``increment_epoch`` after every epoch (before
    the epoch-end hooks). Steps are unit steps: with gradient accumulation each micro-batch is
    a step.

    Args:
        num_epochs_completed: epochs completed so far.
        num_steps_completed: steps completed so far, over all epochs.
        num_steps_completed_in_epoch: steps completed in the current epoch.
        num_steps_completed_in_prev_epoch: steps the previous epoch completed.

    Example:
        >>> p = Progress()
        >>> p.increment_step(); p.increment_epoch()
        >>> p.state_dict()["num_epochs_completed"], p.num_steps_completed_in_prev_epoch
        (1, 1)
    """

    __slots__ = (
        "num_epochs_completed",
        "num_steps_completed",
        "num_steps_completed_in_epoch",
        "num_steps_completed_in_prev_epoch",
    )

    def __init__(
        self,
        num_epochs_completed: int = 0,
        num_steps_completed: int = 0,
        num_steps_completed_in_epoch: int = 0,
        num_steps_completed_in_prev_epoch: int = 0,
    ) -> None:
        self.num_epochs_completed = num_epochs_completed
        self.num_steps_completed = num_steps_completed
        self.num_steps_completed_in_epoch = num_steps_completed_in_epoch
        self.num_steps_completed_in_prev_epoch = num_steps_completed_in_prev_epoch

    def increment_step(self) -> None:
        """Count one completed step."""
        self.num_steps_completed += 1
        self.num_steps_completed_in_epoch += 1

    def increment_epoch(self) -> None:
        """Count one completed epoch and start the in-epoch step counter over."""
        self.num_epochs_completed += 1
        self.num_steps_completed_in_prev_epoch = self.num_steps_completed_in_epoch
        self.num_steps_completed_in_epoch = 0

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name in self.__slots__:
            if name in state_dict:
                setattr(self, name, int(state_dict[name]))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)}" for n in self.__slots__)
        return f"Progress({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Progress) and self.state_dict() == other.state_dict()

    __hash__ = None  # type: ignore[assignment]
