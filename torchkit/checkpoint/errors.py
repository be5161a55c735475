"""Exceptions raised by checkpoint saving, discovery and restore."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """Base class for checkpoint failures; the message always names the checkpoint's path."""


class CorruptCheckpointError(CheckpointError):
    """A committed checkpoint cannot be read: a file is missing, truncated or unreadable."""


class CheckpointSaveError(CheckpointError):
    """Writing a checkpoint failed; earlier checkpoints and the training state are untouched."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's keys do not match the unit's (a checkpoint of a different model)."""
