"""``DistributedCheckpointSaver``: checkpoints with ``torch.distributed.checkpoint`` (DCP) on
any fsspec storage, synchronously or in the background, and restores them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from torchkit.callbacks.base_checkpointer import BaseCheckpointer
from torchkit.callbacks.preemption import DEFAULT_PREEMPTION_SIGNALS
from torchkit.checkpoint.app_state import RestoreOptions, set_eval_pending
from torchkit.checkpoint.dcp_io import gather_state, read_checkpoint, write_checkpoint
from torchkit.checkpoint.naming import (
    BestCheckpointConfig,
    CheckpointName,
    get_best_checkpoint_path,
    get_latest_checkpoint_path,
)
from torchkit.checkpoint.storage import remove_quietly
from torchkit.loop.duration_tracker import set_duration_state
from torchkit.loop.state import State
from torchkit.utils.distributed import get_global_rank, get_world_size

logger = logging.getLogger(__name__)


class DistributedCheckpointSaver(BaseCheckpointer):
    """Saves the unit's app state, per-rank RNG states and dataloader states with DCP.

    Works in one process and across ranks, including FSDP2-sharded modules and optimizers
    (each rank writes its shards). Storage is any fsspec URL DCP can write to (see the
    checkpointing docs for the limits). Each checkpoint is written into its directory and
    committed by a marker file written last, holding every file's size; until then discovery
    skips it and ``restore`` refuses it.

    With ``async_checkpoint=True`` the loop stalls only while the state is copied (a
    snapshot); writing and committing happen on a background thread (with its own gloo
    process group across ranks). The previous save is awaited before the next one starts and
    at the end of training, its errors are raised there, and older checkpoints are evicted
    only once the new one is committed.

    Args:
        dirpath: directory (local path or fsspec URL) holding the checkpoint directories.
        save_every_n_train_steps: save every N global train steps.
        save_every_n_epochs: save every N train epochs.
        save_every_n_eval_epochs: save every N eval epochs.
        keep_last_n_checkpoints: how many checkpoints to keep (None: all).
        best_checkpoint_config: the metric that names and ranks checkpoints.
        async_checkpoint: write in the background (default ``False``).
        preemption_signals: signals that trigger a checkpoint-and-stop; ``()`` turns it off.
        save_every: save every interval given as a ``Duration`` or a string (``"30m"``,
            ``"1e9tok"``, ``"500ba"``, ``"1ep"``, ``"0.1dur"`` of ``max_duration``).

    Raises:
        ValueError: an empty ``dirpath``, a non-positive interval or count, or a bad signal.
        TypeError: ``dirpath`` or ``best_checkpoint_config`` has a wrong type.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> saver = DistributedCheckpointSaver("memory://doc/ckpts", save_every_n_train_steps=2)
        >>> unit = DummyTrainUnit(input_dim=2)
        >>> DistributedCheckpointSaver.restore_from_latest("memory://doc/ckpts", unit)
        False
        >>> _ = train(unit, generate_random_dataloader(8, 2, 2), max_steps=4, callbacks=[saver])
        >>> saver.retained_checkpoints
        ['memory://doc/ckpts/epoch_0_train_step_2', 'memory://doc/ckpts/epoch_0_train_step_4']
    """

    def __init__(
        self,
        dirpath: str,
        *,
        save_every_n_train_steps: int | None = None,
        save_every_n_epochs: int | None = None,
        save_every_n_eval_epochs: int | None = None,
        keep_last_n_checkpoints: int | None = None,
        best_checkpoint_config: BestCheckpointConfig | None = None,
        async_checkpoint: bool = False,
        preemption_signals: Sequence[int] | None = DEFAULT_PREEMPTION_SIGNALS,
        save_every: Any = None,
    ) -> None:
        super().__init__(
            dirpath,
            save_every_n_train_steps=save_every_n_train_steps,
            save_every_n_epochs=save_every_n_epochs,
            save_every_n_eval_epochs=save_every_n_eval_epochs,
            keep_last_n_checkpoints=keep_last_n_checkpoints,
            best_checkpoint_config=best_checkpoint_config,
            preemption_signals=preemption_signals,
            save_every=save_every,
        )
        if not isinstance(async_checkpoint, bool):
            raise TypeError(
                f"async_checkpoint={async_checkpoint!r} is invalid: expected True or False."
            )
        self._async = async_checkpoint
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[None], State, Any, str] | None = None
        self._async_group: Any = None

    def _setup_groups(self) -> None:
        super()._setup_groups()
        if self._async and get_world_size() > 1 and self._async_group is None:
            import torch.distributed as dist

            # The background writer's collectives must never interleave with the training
            # thread's, so it gets a process group of its own (CPU, gloo).
            self._async_group = dist.new_group(backend="gloo")

    def _checkpoint_impl(
        self,
        state: State,
        unit: Any,
        *,
        checkpoint_id: str,
        name: CheckpointName,
        extra: dict[str, Any],
        overrides: dict[str, Any],
    ) -> None:
        info = {"name": str(name), "epoch": name.epoch, "train_step": name.step}
        if not self._async:
            state_dict = gather_state(unit, extra, overrides, copy=False)
            self._write(checkpoint_id, name, state_dict, info, self._control_group)
            unit.on_checkpoint_save(state, checkpoint_id)
            return
        # The only stall of an async save: copying the state so training can change it.
        state_dict = gather_state(unit, extra, overrides, copy=True)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="torchkit-ckpt")
        future = self._executor.submit(
            self._write, checkpoint_id, name, state_dict, info, self._async_group
        )
        self._pending = (future, state, unit, checkpoint_id)

    def _write(
        self,
        url: str,
        name: CheckpointName,
        state_dict: dict[str, Any],
        info: dict[str, Any],
        group: Any,
    ) -> None:
        try:
            write_checkpoint(url, state_dict, info, group)
        except BaseException:
            if get_global_rank() == 0:
                remove_quietly(url)
            raise
        if get_world_size() > 1:
            import torch.distributed as dist

            dist.barrier(group=group)  # every rank sees the commit before on_checkpoint_save
        self._after_commit(url, name)

    def _wait_for_pending(self, *, raise_errors: bool = True) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        future, state, unit, url = pending
        try:
            future.result()
        except Exception:
            if raise_errors:
                raise
            logger.exception("The background save of %s failed", url)
            return
        unit.on_checkpoint_save(state, url)

    # ---- restore -------------------------------------------------------------------------
    @staticmethod
    def restore(
        path: str,
        unit: Any,
        *,
        train_dataloader: Any = None,
        eval_dataloader: Any = None,
        restore_options: RestoreOptions | None = None,
    ) -> None:
        """Restore ``unit`` (in place) from the checkpoint at ``path``.

        RNG states, progress and the given dataloaders' states are in place when it returns.
        If the run was stopped with an eval pending (or in progress) inside ``fit``, the next
        ``fit`` with a checkpointer among its callbacks runs that eval first.

        Args:
            path: a committed checkpoint directory (local path or fsspec URL).
            unit: the unit to load into, built the same way as the one that saved.
            train_dataloader: its state is restored when it has ``load_state_dict``.
            eval_dataloader: likewise.
            restore_options: what to restore (default: everything, strict).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            CorruptCheckpointError: ``path`` is uncommitted, truncated or unreadable.
            CheckpointMismatchError: the checkpoint is of a different model; the message
                lists the missing and unexpected keys.
        """
        opts = restore_options if restore_options is not None else RestoreOptions()
        loaders = {"train": train_dataloader, "eval": eval_dataloader}
        extra = read_checkpoint(path, unit, opts, loaders)
        set_eval_pending(unit, bool(extra.get("eval_pending", False)))
        # the duration counts (samples, tokens, wall time) go with the train progress
        set_duration_state(unit, extra.get("durations") if opts.restore_train_progress else None)
        logger.info("Restored %s from %s", type(unit).__name__, path)

    @classmethod
    def restore_from_latest(
        cls,
        dirpath: str,
        unit: Any,
        *,
        train_dataloader: Any = None,
        eval_dataloader: Any = None,
        restore_options: RestoreOptions | None = None,
    ) -> bool:
        """Restore from the most recent committed checkpoint in ``dirpath``, if there is one.

        This is the one-line auto-resume: call it before ``train``/``fit``.

        Returns:
            True when a checkpoint was restored, False (no exception) when there is none.
        """
        path = _agreed(lambda: get_latest_checkpoint_path(dirpath))
        if path is None:
            logger.info("No checkpoint in %s: starting from scratch.", dirpath)
            return False
        cls.restore(path, unit, train_dataloader=train_dataloader,
                    eval_dataloader=eval_dataloader, restore_options=restore_options)  # fmt: skip
        return True

    @classmethod
    def restore_from_best(
        cls,
        dirpath: str,
        unit: Any,
        metric_name: str,
        mode: str,
        *,
        train_dataloader: Any = None,
        eval_dataloader: Any = None,
        restore_options: RestoreOptions | None = None,
    ) -> bool:
        """Restore from the committed checkpoint with the best ``metric_name`` in ``dirpath``.

        Returns:
            True when a checkpoint was restored, False when none carries the metric.

        Raises:
            ValueError: ``mode`` is not ``"min"`` or ``"max"``.
        """
        BestCheckpointConfig(metric_name, mode)  # type: ignore[arg-type]  # validates first
        path = _agreed(lambda: get_best_checkpoint_path(dirpath, metric_name, mode))
        if path is None:
            logger.info("No checkpoint with metric %r in %s.", metric_name, dirpath)
            return False
        cls.restore(path, unit, train_dataloader=train_dataloader,
                    eval_dataloader=eval_dataloader, restore_options=restore_options)  # fmt: skip
        return True


def _agreed(fn: Any) -> Any:
    """``fn()`` computed on rank 0 and broadcast, so every rank restores the same checkpoint."""
    if get_world_size() == 1:
        return fn()
    import torch.distributed as dist

    box: list[Any] = [fn() if get_global_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
