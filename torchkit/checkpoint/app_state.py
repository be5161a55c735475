"""What a checkpoint holds: the unit's app state, wrapped for DCP, and per-rank extra state.

Per-rank extra state (RNG states, dataloader states, loop flags) is pickled into one opaque
blob per rank, stored under ``torchkit_rank_{r}``: its structure varies (a fresh
``StatefulDataLoader`` has a different ``state_dict`` layout than a used one), so it must not
be flattened into DCP's per-key layout.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass, field
from typing import Any

import torch

from torchkit.utils.dataloader_utils import generator_states

RANK_KEY_PREFIX = "torchkit_rank_"
GENERATORS_KEY = "_torchkit_generators"
"""Where ``dataloader_state`` keeps the loader's generator states (not the loader's own key)."""


def rank_key(rank: int) -> str:
    return f"{RANK_KEY_PREFIX}{rank}"


@dataclass(frozen=True)
class RestoreOptions:
    """What ``restore`` loads; everything by default.

    The fields TNT has come first, in TNT's order; torchkit's own are keyword-only.

    Args:
        restore_modules: load module weights.
        restore_train_progress: load ``train_progress``.
        restore_eval_progress: load ``eval_progress``.
        restore_predict_progress: load ``predict_progress``.
        restore_optimizers: load optimizer states.
        restore_lr_schedulers: load LR scheduler states.
        restore_metrics: load the tracked torchmetrics states.
        strict: fail when the checkpoint lacks a key the unit has, or has a module key the
            unit lacks; ``False`` loads what matches.
        restore_rng_state: re-apply this rank's python, numpy, torch and CUDA RNG states.
        restore_dataloader_state: load the dataloaders' states (when passed to ``restore``).

    Example:
        >>> RestoreOptions(restore_optimizers=False).restore_modules
        True
    """

    restore_modules: bool = True
    restore_train_progress: bool = True
    restore_eval_progress: bool = True
    restore_predict_progress: bool = True
    restore_optimizers: bool = True
    restore_lr_schedulers: bool = True
    restore_metrics: bool = True
    strict: bool = True
    restore_rng_state: bool = field(default=True, kw_only=True)
    restore_dataloader_state: bool = field(default=True, kw_only=True)


def _dcp_state_dict_api() -> Any:
    try:
        from torch.distributed.checkpoint import state_dict as sd_api
    except ImportError:  # pragma: no cover - torch < 2.2
        return None
    return sd_api if hasattr(sd_api, "get_optimizer_state_dict") else None


class ModuleState:
    """DCP ``Stateful`` view of a module; handles DDP/FSDP/FSDP2 (sharded) state dicts."""

    def __init__(self, module: torch.nn.Module, strict: bool = True) -> None:
        self.module = module
        self.strict = strict

    def state_dict(self) -> dict[str, Any]:
        api = _dcp_state_dict_api()
        if api is None:
            return self.module.state_dict()
        return dict(api.get_model_state_dict(self.module))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        api = _dcp_state_dict_api()
        if api is None:
            self.module.load_state_dict(state_dict, strict=self.strict)
            return
        api.set_model_state_dict(
            self.module, state_dict, options=api.StateDictOptions(strict=self.strict)
        )


class OptimizerState:
    """DCP ``Stateful`` view of an optimizer, keyed by parameter names (FQNs) when the module
    that owns its parameters is known, so sharded optimizer state reshards on load."""

    def __init__(self, optimizer: torch.optim.Optimizer, module: torch.nn.Module | None) -> None:
        self.optimizer = optimizer
        self.module = module

    def state_dict(self) -> dict[str, Any]:
        api = _dcp_state_dict_api()
        if api is None or self.module is None:
            _init_optimizer_state(self.optimizer)
            return self.optimizer.state_dict()
        # get_optimizer_state_dict allocates the state of a fresh optimizer, which DCP needs
        # as the template to load into.
        return dict(api.get_optimizer_state_dict(self.module, self.optimizer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        api = _dcp_state_dict_api()
        if api is None or self.module is None:
            self.optimizer.load_state_dict(state_dict)
            return
        api.set_optimizer_state_dict(self.module, self.optimizer, state_dict)


def _init_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Allocate a fresh optimizer's state with a zero-learning-rate step (weights unchanged)."""
    if optimizer.state:
        return
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    if any(p.grad is not None for p in params):
        return
    for p in params:
        p.grad = torch.zeros_like(p)
    lrs = [g.get("lr") for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        if "lr" in g:
            g["lr"] = 0.0
    optimizer.step()
    for g, lr in zip(optimizer.param_groups, lrs):
        if lr is not None:
            g["lr"] = lr
    optimizer.zero_grad(set_to_none=True)


class MetricState:
    """torchmetrics keeps metric states out of ``state_dict`` unless marked persistent; this
    view saves and loads them and then puts the metric's own setting back."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric

    def _persisted(self, fn: Any, *args: Any) -> Any:
        saved = [
            (m, dict(m._persistent)) for m in self.metric.modules() if hasattr(m, "_persistent")
        ]
        self.metric.persistent(True)
        try:
            return fn(*args)
        finally:
            for m, flags in saved:
                m._persistent.update(flags)

    def state_dict(self) -> dict[str, Any]:
        return dict(self._persisted(self.metric.state_dict))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._persisted(self.metric.load_state_dict, state_dict, False)


def _owner_module(
    optimizer: torch.optim.Optimizer, modules: dict[str, torch.nn.Module]
) -> torch.nn.Module | None:
    """The tracked module holding all of ``optimizer``'s parameters (or all of them together)."""
    wanted = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for module in modules.values():
        if wanted <= {id(p) for p in module.parameters()}:
            return module
    if len(modules) > 1:
        together = torch.nn.ModuleDict(modules)
        if wanted <= {id(p) for p in together.parameters()}:
            return together
    return None


def stateful_views(unit: Any, strict: bool = True) -> dict[str, Any]:
    """``unit.app_state()`` with modules, optimizers and metrics wrapped for DCP."""
    modules = unit.tracked_modules()
    metrics = unit.tracked_metrics()
    optimizers = unit.tracked_optimizers()
    views: dict[str, Any] = {}
    for name, obj in unit.app_state().items():
        if name in metrics:
            views[name] = MetricState(obj)
        elif name in modules:
            views[name] = ModuleState(obj, strict=strict)
        elif name in optimizers:
            views[name] = OptimizerState(obj, _owner_module(obj, modules))
        else:
            views[name] = obj
    return views


def get_rng_states() -> dict[str, Any]:
    """This process's python, numpy, torch and (when initialised) CUDA RNG states."""
    import numpy as np

    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    is_init: Any = torch.cuda.is_initialized
    if torch.cuda.is_available() and is_init():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Re-apply states from ``get_rng_states`` (CUDA only when both sides have it)."""
    import numpy as np

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def dataloader_state(unit: Any, phase: str, dataloader: Any) -> dict[str, Any] | None:
    """The dataloader's state as of the last *consumed* batch, or ``None`` when it has none.

    A unit that reads ahead (prefetch) defines
    ``dataloader_state_dict_for_checkpoint(phase, dataloader)`` returning that state (or
    ``None`` to fall back); otherwise ``dataloader.state_dict()`` is used. The states of the
    loader's random generators are added under ``GENERATORS_KEY``.
    """
    hook = getattr(unit, "dataloader_state_dict_for_checkpoint", None)
    sd = hook(phase, dataloader) if callable(hook) else None
    if sd is None:
        fn = getattr(dataloader, "state_dict", None)
        sd = fn() if callable(fn) else None
    if sd is None:
        return None
    gens = generator_states(dataloader)
    # kept beside the loader's own state: restoring a finished epoch needs them (dcp_io)
    return {**sd, GENERATORS_KEY: gens} if gens else dict(sd)


def pack(extra: dict[str, Any]) -> bytes:
    """Serialise per-rank extra state (CPU tensors, numpy arrays, python objects)."""
    return pickle.dumps(extra, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(blob: bytes) -> dict[str, Any]:
    """Inverse of ``pack``. Only load checkpoints you trust, as with ``torch.load``."""
    out: dict[str, Any] = pickle.loads(blob)
    return out


_EVAL_PENDING_ATTR = "_torchkit_resume_eval_pending"


def set_eval_pending(unit: Any, pending: bool) -> None:
    """Record on the unit that the restored run must re-run an eval before training on."""
    object.__setattr__(unit, _EVAL_PENDING_ATTR, pending)


def pop_eval_pending(unit: Any) -> bool:
    """Read and clear the flag ``set_eval_pending`` wrote (the checkpointer does at train start)."""
    return bool(unit.__dict__.pop(_EVAL_PENDING_ATTR, False))
