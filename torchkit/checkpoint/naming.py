"""Checkpoint names (``epoch_{e}_train_step_{s}[_{metric}={value}]``) and discovery by name."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Literal

from torchkit.utils.fs import join_url, url_to_fs

logger = logging.getLogger(__name__)

COMMIT_MARKER = ".torchkit_committed"
"""File written last into a checkpoint directory; its presence is what makes it valid."""

_NAME_RE = re.compile(r"^epoch_(\d+)_train_step_(\d+)(?:_([^=/]+)=([^=/]+))?$")
_MODES = ("min", "max")


def sanitize_metric_name(name: str) -> str:
    """The metric name as it appears in a directory name (``/`` is not allowed there)."""
    return name.replace("/", "_")


@dataclass(frozen=True)
class BestCheckpointConfig:
    """Which metric ranks checkpoints, and whether lower or higher is better.

    With a ``BestCheckpointConfig``, checkpoint names carry the metric value and
    ``keep_last_n_checkpoints=K`` keeps the K best (plus the most recent one, so that a resume
    never goes back in time).

    Args:
        monitored_metric: a key of ``state.metrics`` (e.g. ``"eval/loss"``) or the name of a
            unit attribute holding a number or 0-d tensor.
        mode: ``"min"`` (lower is better) or ``"max"``.

    Raises:
        ValueError: an empty metric name or an unknown mode.

    Example:
        >>> BestCheckpointConfig("eval/loss", mode="min").mode
        'min'
    """

    monitored_metric: str
    mode: Literal["min", "max"] = "min"

    def __post_init__(self) -> None:
        if not isinstance(self.monitored_metric, str) or not self.monitored_metric:
            raise ValueError(
                f"monitored_metric={self.monitored_metric!r} is invalid: expected a non-empty "
                "metric name. Pass e.g. 'eval/loss'."
            )
        if self.mode not in _MODES:
            raise ValueError(
                f"mode={self.mode!r} is invalid: expected 'min' or 'max'. Use 'min' for a loss "
                "and 'max' for an accuracy."
            )


@dataclass(frozen=True)
class CheckpointName:
    """A parsed checkpoint directory name.

    Example:
        >>> CheckpointName.parse("epoch_1_train_step_20_eval_loss=0.5").metric_value
        0.5
    """

    epoch: int
    step: int
    metric_name: str | None = None
    metric_value: float | None = None

    @classmethod
    def parse(cls, name: str) -> CheckpointName | None:
        """The parsed name, or ``None`` when ``name`` is not a checkpoint name."""
        m = _NAME_RE.match(name)
        if m is None:
            return None
        value: float | None = None
        if m.group(4) is not None:
            try:
                value = float(m.group(4))
            except ValueError:
                return None
        return cls(int(m.group(1)), int(m.group(2)), m.group(3), value)

    def __str__(self) -> str:
        base = f"epoch_{self.epoch}_train_step_{self.step}"
        if self.metric_name is None or self.metric_value is None:
            return base
        return f"{base}_{sanitize_metric_name(self.metric_name)}={self.metric_value!r}"

    def recency_key(self) -> tuple[int, int, str]:
        """Sort key: later training state sorts last (epoch-end saves after step saves)."""
        return (self.step, self.epoch, str(self))

    def metric_key(self, mode: str) -> float:
        """Sort key putting the best value last; a missing or NaN value ranks worst."""
        v = self.metric_value
        if v is None or math.isnan(v):
            return -math.inf
        return -v if mode == "min" else v


def list_checkpoints(
    dirpath: str, *, warn_uncommitted: bool = True
) -> list[tuple[str, CheckpointName]]:
    """Committed checkpoints under ``dirpath`` as ``(url, name)``, oldest first.

    Directories that look like checkpoints but have no commit marker (a save that was
    interrupted or is still running) are skipped, with a warning. A missing ``dirpath`` gives
    an empty list. The URLs keep ``dirpath``'s protocol (``memory://...``).
    """
    fs, root = url_to_fs(dirpath)
    if not fs.exists(root):
        return []
    found: list[tuple[str, CheckpointName]] = []
    for entry in fs.ls(root, detail=True):
        if entry.get("type") != "directory":
            continue
        base = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        parsed = CheckpointName.parse(base)
        if parsed is None:
            continue
        if not fs.exists(f"{str(entry['name']).rstrip('/')}/{COMMIT_MARKER}"):
            if warn_uncommitted:
                logger.warning(
                    "Skipping %s: it has no %s marker, so its save was interrupted or is still "
                    "running.",
                    join_url(dirpath, base),
                    COMMIT_MARKER,
                )
            continue
        found.append((join_url(dirpath, base), parsed))
    found.sort(key=lambda item: item[1].recency_key())
    return found


def get_latest_checkpoint_path(dirpath: str) -> str | None:
    """The most recent committed checkpoint under ``dirpath``, or ``None``.

    Args:
        dirpath: the checkpointer's directory (local path or fsspec URL).

    Example:
        >>> get_latest_checkpoint_path("memory://no/such/dir") is None
        True
    """
    found = list_checkpoints(dirpath)
    return found[-1][0] if found else None


def get_best_checkpoint_path(dirpath: str, metric_name: str, mode: str) -> str | None:
    """The committed checkpoint with the best ``metric_name`` value under ``dirpath``, or ``None``.

    Args:
        dirpath: the checkpointer's directory (local path or fsspec URL).
        metric_name: the monitored metric (as given to ``BestCheckpointConfig``).
        mode: ``"min"`` or ``"max"``.

    Raises:
        ValueError: an unknown ``mode``.

    Example:
        >>> get_best_checkpoint_path("memory://no/such/dir", "eval/loss", "min") is None
        True
    """
    BestCheckpointConfig(metric_name, mode)  # type: ignore[arg-type]  # validates
    wanted = sanitize_metric_name(metric_name)
    found = [
        (url, n)
        for url, n in list_checkpoints(dirpath)
        if n.metric_name == wanted and n.metric_value is not None and not math.isnan(n.metric_value)
    ]
    if not found:
        return None
    return max(found, key=lambda item: (item[1].metric_key(mode), item[1].recency_key()))[0]
