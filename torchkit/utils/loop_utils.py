"""Former home of the step estimates; they live in ``torchkit.utils.progress`` (TNT's path)."""

from torchkit.utils.progress import (
    estimated_steps_in_epoch,
    estimated_steps_in_fit,
    estimated_steps_in_loop,
)

__all__ = ["estimated_steps_in_epoch", "estimated_steps_in_fit", "estimated_steps_in_loop"]
