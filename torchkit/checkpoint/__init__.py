"""Checkpointing: app-state gathering, fsspec storage, atomic commit, naming, discovery, restore."""

from torchkit.checkpoint.app_state import RestoreOptions, get_rng_states, set_rng_states
from torchkit.checkpoint.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointSaveError,
    CorruptCheckpointError,
)
from torchkit.checkpoint.naming import (
    COMMIT_MARKER,
    BestCheckpointConfig,
    CheckpointName,
    get_best_checkpoint_path,
    get_latest_checkpoint_path,
    list_checkpoints,
)
from torchkit.checkpoint.storage import is_committed, read_manifest, remove_checkpoint
from torchkit.checkpoint.weights import export_module_weights, load_module_weights

__all__ = [
    "COMMIT_MARKER",
    "BestCheckpointConfig",
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointName",
    "CheckpointSaveError",
    "CorruptCheckpointError",
    "RestoreOptions",
    "export_module_weights",
    "get_best_checkpoint_path",
    "get_latest_checkpoint_path",
    "get_rng_states",
    "is_committed",
    "list_checkpoints",
    "load_module_weights",
    "read_manifest",
    "remove_checkpoint",
    "set_rng_states",
]
