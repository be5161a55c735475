"""``run_stages``: several ``fit``/``train`` stages in a row, checkpointed and resumable."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torchkit.callbacks.callback import Callback
from torchkit.callbacks.distributed_checkpoint_saver import DistributedCheckpointSaver, _agreed
from torchkit.callbacks.metrics_logger import MetricsLogger
from torchkit.checkpoint.app_state import RestoreOptions
from torchkit.checkpoint.naming import get_latest_checkpoint_path
from torchkit.checkpoint.weights import load_module_weights
from torchkit.loggers.csv_logger import CSVLogger
from torchkit.loop.fit import fit
from torchkit.loop.state import State
from torchkit.loop.train import train
from torchkit.stages.manifest import MANIFEST_NAME, load_manifest, write_manifest
from torchkit.stages.stage import Stage, check_callbacks
from torchkit.units.app_state_mixin import AppStateMixin
from torchkit.utils.distributed import barrier, get_global_rank, get_world_size
from torchkit.utils.fs import join_url

logger = logging.getLogger(__name__)

_ALL_BUT_RNG_AND_DATA = RestoreOptions(
    restore_rng_state=False, restore_dataloader_state=False, strict=False
)
_ALL_BUT_DATA = RestoreOptions(restore_dataloader_state=False)


@dataclass
class StageResult:
    """What ``run_stages`` did with one stage.

    Args:
        name: the stage's name.
        unit: its unit (for a stage skipped because it was done: rebuilt with ``make_unit``;
            its state is restored when a later stage builds on it, or when it is the last).
        state: the ``State`` its ``fit``/``train`` returned; None when it was skipped.
    """

    name: str
    unit: Any
    state: State | None


def stage_dir(dirpath: str, index: int, name: str) -> str:
    """Where stage ``index`` keeps its checkpoints: ``dirpath/stages/{index:02d}_{name}``."""
    return join_url(dirpath, "stages", f"{index:02d}_{name}")


def run_stages(
    stages: Sequence[Stage], *, dirpath: str, callbacks: Sequence[Callback] | None = None
) -> list[StageResult]:
    """Run ``stages`` one after the other; calling it again with the same stages resumes.

    Each stage builds its unit with ``make_unit(previous_unit)``, loads the previous stage's
    final checkpoint into it as its ``handoff`` says, and runs ``fit`` (with an eval
    dataloader) or ``train`` for *its own* ``max_epochs``/``max_steps``: TNT's limits count
    the unit's whole life, so the helper adds the unit's progress at the stage start. A
    ``DistributedCheckpointSaver`` saves the stage under ``dirpath/stages/{i:02d}_{name}/``
    every epoch and at its end, and a ``CSVLogger`` (through ``MetricsLogger``) keeps its
    metric history in ``metrics/metrics.csv`` there. ``dirpath/stages.json`` records each
    stage's status and final checkpoint; it is committed atomically at every change.

    On a re-run, done stages are skipped (their hooks do not run; their units are rebuilt
    and restored only as far as the next stage needs), the running stage restores its latest
    checkpoint (weights, optimizers, progress, RNG and dataloader states), and a new stage
    starts from the previous one's final checkpoint. A stage that ends early
    (``EarlyStopping``, ``state.stop()``) counts as done; a preempted one stays running and
    ``run_stages`` returns after it.

    Args:
        stages: the stages, in order (unique names).
        dirpath: the run directory (local path or fsspec URL).
        callbacks: callbacks for every stage (before each stage's own).

    Returns:
        One ``StageResult`` per stage reached, in order.

    Raises:
        ValueError: no stages, duplicate names, an empty ``dirpath``, a checkpointer among
            the callbacks, or a ``stages.json`` that is unreadable or records other stages
            (nothing is written then).
        TypeError: a stage is not a ``Stage`` or a callback not a ``Callback``.

    Example:
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> dl = generate_random_dataloader(8, 2, 4)
        >>> stages = [Stage("a", lambda prev: DummyTrainUnit(2), dl, max_epochs=1),
        ...           Stage("b", lambda prev: prev, dl, max_epochs=2)]
        >>> results = run_stages(stages, dirpath="memory://doc/stages")
        >>> results[-1].unit.train_progress.num_steps_completed
        6
        >>> [r.state is None for r in run_stages(stages, dirpath="memory://doc/stages")]
        [True, True]
    """
    shared = _check_args(stages, dirpath, callbacks)
    names = [s.name for s in stages]
    manifest = _agreed(lambda: load_manifest(dirpath, names))
    entries = manifest["stages"]
    first_open = next((i for i, e in enumerate(entries) if e["status"] != "done"), len(stages))
    results = _rebuild_done(stages, entries, dirpath, first_open)
    prev = results[-1].unit if results else None
    for i in range(first_open, len(stages)):
        unit, state = _run_one(stages, i, manifest, dirpath, prev, shared)
        results.append(StageResult(stages[i].name, unit, state))
        if state.preempted:
            logger.warning("Stage %r was preempted; re-run run_stages to resume it.", names[i])
            break
        prev = unit
    return results


def _check_args(
    stages: Sequence[Stage], dirpath: str, callbacks: Sequence[Callback] | None
) -> list[Callback]:
    if not isinstance(dirpath, str) or not dirpath.strip():
        raise ValueError(
            f"dirpath={dirpath!r} is invalid: expected a non-empty path or fsspec URL. Pass "
            "e.g. dirpath='runs/exp1'."
        )
    stages = list(stages)
    if not stages:
        raise ValueError("stages=[] is invalid: expected at least one Stage.")
    for s in stages:
        if not isinstance(s, Stage):
            raise TypeError(f"stages holds {s!r}: expected torchkit.stages.Stage instances.")
    names = [s.name for s in stages]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"stages={names!r} is invalid: the names {dupes} repeat. Give every stage its own "
            "name (it names the stage's folder)."
        )
    return check_callbacks("callbacks", callbacks)


def _rebuild_done(
    stages: Sequence[Stage], entries: list[dict[str, Any]], dirpath: str, first_open: int
) -> list[StageResult]:
    """Units of the done stages, rebuilt in order; the last one restored from its final
    checkpoint (RNG included), which is all a later stage needs."""
    results: list[StageResult] = []
    prev: Any = None
    for i in range(first_open):
        prev = stages[i].make_unit(prev)
        results.append(StageResult(stages[i].name, prev, None))
    if first_open:
        final = _final_checkpoint(dirpath, entries[first_open - 1])
        DistributedCheckpointSaver.restore(final, prev, restore_options=_ALL_BUT_DATA)
        logger.info("Stages %s are done; continuing after them.", [r.name for r in results])
    return results


def _final_checkpoint(dirpath: str, entry: dict[str, Any]) -> str:
    rel = entry.get("final_checkpoint")
    if not rel:
        raise ValueError(
            f"{MANIFEST_NAME} in {dirpath!r} marks stage {entry['name']!r} done without a final "
            "checkpoint. The file was edited or damaged; restore it or use another dirpath."
        )
    return join_url(dirpath, str(rel))


def _run_one(
    stages: Sequence[Stage],
    i: int,
    manifest: dict[str, Any],
    dirpath: str,
    prev: Any,
    shared: list[Callback],
) -> tuple[Any, State]:
    stage, entry = stages[i], manifest["stages"][i]
    folder = stage_dir(dirpath, i, stage.name)
    latest = _agreed(lambda: get_latest_checkpoint_path(folder))
    if entry["status"] == "running" and latest is not None:
        unit = stage.make_unit(prev)
        DistributedCheckpointSaver.restore(latest, unit, train_dataloader=stage.train_dataloader,
                                           eval_dataloader=stage.eval_dataloader)  # fmt: skip
        logger.info("Stage %r resumes from %s.", stage.name, latest)
    else:
        if latest is not None:
            raise ValueError(
                f"Stage {stage.name!r} is {entry['status']} in {MANIFEST_NAME} but {folder!r} "
                "already holds checkpoints (of another run?). Remove that folder, or use "
                "another dirpath."
            )
        unit = _start_new(stage, i, manifest, dirpath, prev)
    state = _fit_stage(stage, unit, entry, folder, shared)
    if not state.preempted:
        final = _agreed(lambda: get_latest_checkpoint_path(folder))
        name = final.rstrip("/").rsplit("/", 1)[-1]
        entry.update(status="done", final_checkpoint=f"stages/{i:02d}_{stage.name}/{name}")
        _commit(dirpath, manifest)
    return unit, state


def _start_new(stage: Stage, i: int, manifest: dict[str, Any], dirpath: str, prev: Any) -> Any:
    """Build a new stage's unit from the previous one's final checkpoint; record its start."""
    prev_final = _final_checkpoint(dirpath, manifest["stages"][i - 1]) if i > 0 else None
    if prev_final is not None:
        # the RNG as the previous stage saved it: the uninterrupted run and a re-run that
        # rebuilt the previous unit draw the same numbers from here on
        DistributedCheckpointSaver.restore(
            prev_final, AppStateMixin(), restore_options=_ALL_BUT_DATA
        )
    unit = stage.make_unit(prev)
    if prev_final is not None:
        _handoff(stage, unit, prev_final)
    progress = unit.train_progress
    manifest["stages"][i].update(status="running", final_checkpoint=None,
                                 start_epoch=progress.num_epochs_completed,
                                 start_step=progress.num_steps_completed)  # fmt: skip
    _commit(dirpath, manifest)
    return unit


def _handoff(stage: Stage, unit: Any, prev_final: str) -> None:
    if stage.handoff == "all":
        DistributedCheckpointSaver.restore(prev_final, unit, restore_options=_ALL_BUT_RNG_AND_DATA)
    elif stage.handoff == "modules":
        for name, module in unit.tracked_modules().items():
            load_module_weights(module, prev_final, module_name=name, strict=False)


def _fit_stage(
    stage: Stage, unit: Any, entry: dict[str, Any], folder: str, shared: list[Callback]
) -> State:
    max_epochs = None if stage.max_epochs is None else entry["start_epoch"] + stage.max_epochs
    max_steps = None if stage.max_steps is None else entry["start_step"] + stage.max_steps
    csv = CSVLogger(join_url(folder, "metrics", "metrics.csv"), steps_before_flushing=1)
    own: list[Callback] = [
        DistributedCheckpointSaver(folder, save_every_n_epochs=1, keep_last_n_checkpoints=2),
        MetricsLogger(csv),
    ]
    callbacks = own + shared + list(stage.callbacks)
    try:
        if stage.eval_dataloader is None:
            return train(unit, stage.train_dataloader, max_epochs=max_epochs,
                         max_steps=max_steps, callbacks=callbacks)  # fmt: skip
        return fit(unit, stage.train_dataloader, stage.eval_dataloader, max_epochs=max_epochs,
                   max_steps=max_steps, callbacks=callbacks)  # fmt: skip
    finally:
        csv.close()


def _commit(dirpath: str, manifest: dict[str, Any]) -> None:
    if get_global_rank() == 0:
        write_manifest(dirpath, manifest)
    if get_world_size() > 1:
        barrier()
