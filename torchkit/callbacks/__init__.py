"""Callbacks: hooks into the loop, one callback per file."""

from torchkit.callbacks.callback import Callback
from torchkit.callbacks.lambda_callback import Lambda

__all__ = [
    "Callback",
    "Lambda",
]
