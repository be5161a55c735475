"""Saving a unit to, and restoring it from, one checkpoint directory with
``torch.distributed.checkpoint`` (DCP). Policy (when, what to keep) lives in the callbacks."""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import torch

from torchkit.checkpoint.app_state import (
    GENERATORS_KEY,
    RANK_KEY_PREFIX,
    RestoreOptions,
    pack,
    rank_key,
    set_rng_states,
    stateful_views,
    unpack,
)
from torchkit.checkpoint.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointSaveError,
    CorruptCheckpointError,
)
from torchkit.checkpoint.storage import make_reader, make_writer, read_manifest, write_commit_marker
from torchkit.utils.dataloader_utils import prime_restored_loader
from torchkit.utils.distributed import get_global_rank, get_world_size

logger = logging.getLogger(__name__)


def _dcp_call(fn: Any, *args: Any, process_group: Any = None, **kwargs: Any) -> Any:
    """Call DCP's ``save``/``load``; in a single process, without its per-call warning."""
    import torch.distributed as dist

    if process_group is not None:
        kwargs["process_group"] = process_group
    if dist.is_available() and dist.is_initialized():
        return fn(*args, **kwargs)
    if "no_dist" in inspect.signature(fn).parameters:
        kwargs["no_dist"] = True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        return fn(*args, **kwargs)


def _snapshot(obj: Any) -> Any:
    """Deep copy of a state dict's tensors, so training can go on while it is written."""
    if isinstance(obj, torch.Tensor):
        if type(obj) is not torch.Tensor:  # DTensor / subclasses: clone keeps the sharding
            return obj.detach().clone()
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snapshot(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_snapshot(v) for v in obj)
    return obj


def gather_state(
    unit: Any, extra: dict[str, Any], overrides: dict[str, Any] | None = None, *, copy: bool
) -> dict[str, Any]:
    """The state dict DCP writes: every app-state item plus this rank's packed extra state.

    Args:
        unit: the unit whose ``app_state()`` is saved.
        extra: this rank's RNG states, dataloader states and loop flags.
        overrides: objects saved instead of the unit's under the same name.
        copy: snapshot tensors (async saves), instead of letting DCP read them live.
    """
    views = stateful_views(unit)
    views.update(overrides or {})
    out: dict[str, Any] = {name: view.state_dict() for name, view in views.items()}
    if copy:
        out = _snapshot(out)
    out[rank_key(get_global_rank())] = pack(extra)
    return out


def write_checkpoint(
    url: str, state_dict: dict[str, Any], info: dict[str, Any], process_group: Any = None
) -> None:
    """Write ``state_dict`` to ``url`` with DCP on every rank, then commit it (rank 0).

    Raises:
        CheckpointSaveError: any rank failed to write; the directory stays uncommitted.
    """
    from torch.distributed.checkpoint.state_dict_saver import save

    try:
        _dcp_call(save, state_dict, storage_writer=make_writer(url), process_group=process_group)
        if get_global_rank() == 0:
            write_commit_marker(url, {**info, "world_size": get_world_size()})
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # DCP's CheckpointException is a BaseException
        raise CheckpointSaveError(
            f"Saving checkpoint {url!r} failed: {type(exc).__name__}: {exc}. Earlier "
            "checkpoints are untouched; check the storage (space, permissions) and retry."
        ) from exc


# Progress counters a checkpoint may lack even under strict restore: train_progress is what a
# resume continues from, so its absence is an error; the others only count finished phases.
_PHASE_PROGRESS = frozenset({"eval_progress", "predict_progress", "test_progress"})


def _present(keys: set[str], name: str) -> set[str]:
    return {k for k in keys if k == name or k.startswith(f"{name}.")}


def _check_module_keys(url: str, name: str, module_sd: dict[str, Any], keys: set[str]) -> None:
    expected = {f"{name}.{k}" for k in module_sd}
    found = _present(keys, name)
    missing = sorted(k[len(name) + 1 :] for k in expected - found)
    unexpected = sorted(k[len(name) + 1 :] for k in found - expected)
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"Checkpoint {url!r} does not match module {name!r}: missing keys {missing}, "
            f"unexpected keys {unexpected}. Restore a checkpoint of the same model, or pass "
            "RestoreOptions(strict=False) to load only the matching keys."
        )


def _selected(name: str, unit: Any, opts: RestoreOptions) -> bool:
    if name in unit.tracked_modules():
        return opts.restore_modules
    if name in unit.tracked_optimizers():
        return opts.restore_optimizers
    if name in unit.tracked_lr_schedulers():
        return opts.restore_lr_schedulers
    if name in unit.tracked_metrics():
        return opts.restore_metrics
    if name in unit.tracked_progress():
        flags = {
            "train_progress": opts.restore_train_progress,
            "eval_progress": opts.restore_eval_progress,
            "predict_progress": opts.restore_predict_progress,
        }
        return flags.get(name, True)
    return True


def _template(url: str, unit: Any, opts: RestoreOptions, keys: set[str]) -> dict[str, Any]:
    template: dict[str, Any] = {}
    modules = unit.tracked_modules()
    for name, view in stateful_views(unit, strict=opts.strict).items():
        if not _selected(name, unit, opts):
            continue
        if not _present(keys, name):
            if name in _PHASE_PROGRESS and name in unit.tracked_progress():
                # the counter of a phase the writing unit did not have (a train-only unit, or
                # an AutoUnit from before it had a test phase): nothing of it to restore
                logger.info("Checkpoint %s has no %r; leaving it as is.", url, name)
                continue
            if opts.strict:
                held = sorted({k.split(".")[0] for k in keys if not k.startswith(RANK_KEY_PREFIX)})
                raise CheckpointMismatchError(
                    f"Checkpoint {url!r} has no entry for {name!r} (it holds {held}). "
                    "Restore a checkpoint of the same unit, or pass "
                    "RestoreOptions(strict=False) to skip it."
                )
            logger.warning("Checkpoint %s has no entry for %r; leaving it as is.", url, name)
            continue
        if name in modules and opts.strict:
            _check_module_keys(url, name, view.state_dict(), keys)
        template[name] = view
    return template


def _load_planner(strict: bool) -> Any:
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

    try:
        return DefaultLoadPlanner(allow_partial_load=not strict)
    except TypeError:  # pragma: no cover - torch < 2.3 has no partial loads
        return DefaultLoadPlanner()


def read_checkpoint(
    url: str,
    unit: Any,
    restore_options: RestoreOptions,
    dataloaders: dict[str, Any] | None = None,
    process_group: Any = None,
) -> dict[str, Any]:
    """Load ``url`` into ``unit`` (in place) and apply this rank's RNG and dataloader states.

    Returns:
        This rank's extra state (``{}`` when the checkpoint has none for this rank).

    Raises:
        FileNotFoundError: ``url`` does not exist.
        CorruptCheckpointError: uncommitted, truncated or unreadable checkpoint.
        CheckpointMismatchError: (strict) the checkpoint is of a different model or unit.
    """
    from torch.distributed.checkpoint.state_dict_loader import load

    read_manifest(url)  # existence, commit marker and file sizes
    try:
        keys = set(make_reader(url).read_metadata().state_dict_metadata)
        template = _template(url, unit, restore_options, keys)
        own_key = rank_key(get_global_rank())
        if own_key in keys:
            template[own_key] = b""
        _dcp_call(
            load,
            template,
            storage_reader=make_reader(url),
            planner=_load_planner(restore_options.strict),
            process_group=process_group,
        )
    except (KeyboardInterrupt, SystemExit, CheckpointError):
        raise
    except BaseException as exc:  # DCP's CheckpointException is a BaseException
        raise CorruptCheckpointError(
            f"Checkpoint {url!r} could not be read: {type(exc).__name__}: {exc}. It is damaged "
            "or was written by an incompatible version; restore an earlier checkpoint."
        ) from exc
    if own_key not in template:
        logger.warning(
            "Checkpoint %s has no RNG/dataloader state for rank %d (saved with another world "
            "size?); those are not restored.",
            url,
            get_global_rank(),
        )
        return {}
    extra = unpack(template[own_key])
    _apply_extra(url, extra, restore_options, dataloaders or {})
    return extra


def _apply_extra(
    url: str, extra: dict[str, Any], opts: RestoreOptions, dataloaders: dict[str, Any]
) -> None:
    if opts.restore_rng_state and "rng" in extra:
        set_rng_states(extra["rng"])
    if not opts.restore_dataloader_state:
        return
    for phase, loader in dataloaders.items():
        if loader is None:
            continue
        saved = extra.get("dataloaders", {}).get(phase)
        load = getattr(loader, "load_state_dict", None)
        if saved is None:
            logger.info("Checkpoint %s holds no %s dataloader state to restore.", url, phase)
        elif not callable(load):
            logger.warning(
                "The %s dataloader has no load_state_dict(); it restarts from its beginning. "
                "Use torchdata's StatefulDataLoader for an exact mid-epoch resume.",
                phase,
            )
        else:
            gens = None
            if isinstance(saved, dict):
                saved = dict(saved)
                gens = saved.pop(GENERATORS_KEY, None)
            load(saved)
            if isinstance(saved, dict) and saved.get("_iterator_finished"):
                # a finished epoch: the next iter() must start a fresh pass drawing as the
                # uninterrupted run does (torchdata would build two iterators)
                prime_restored_loader(loader, gens)
