"""Every TNT-named public callable keeps TNT's parameter names, order, kinds and defaults.

The table is written from TorchTNT's source (``pytorch/tnt``). torchkit may add parameters
after TNT's (with defaults, typically keyword-only); it may give a default to a parameter TNT
requires. Anything else - a renamed, reordered, re-kinded or re-defaulted TNT parameter - fails,
unless it is a deliberate difference listed in ``DEVIATIONS`` and in docs/migration.md.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

REQUIRED = inspect.Parameter.empty
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)

# "name" (required), "name=<python literal>", "*" (the rest keyword-only), "*args", "**kwargs"
TNT: dict[str, list[str]] = {
    # entry points (torchtnt.framework)
    "torchkit:train": ["train_unit", "train_dataloader", "*", "max_epochs=None",
                       "max_steps=None", "max_steps_per_epoch=None", "callbacks=None",
                       "timer=None"],
    "torchkit:evaluate": ["eval_unit", "eval_dataloader", "*", "max_steps_per_epoch=None",
                          "callbacks=None", "timer=None"],
    "torchkit:predict": ["predict_unit", "predict_dataloader", "*", "max_steps_per_epoch=None",
                         "callbacks=None", "timer=None"],
    "torchkit:fit": ["unit", "train_dataloader", "eval_dataloader", "*", "max_epochs=None",
                     "max_steps=None", "max_train_steps_per_epoch=None",
                     "max_eval_steps_per_epoch=None", "evaluate_every_n_steps=None",
                     "evaluate_every_n_epochs=1", "callbacks=None", "timer=None",
                     "test_dataloader=None", "max_test_steps=None"],
    "torchkit:test": ["test_unit", "test_dataloader", "*", "max_steps_per_epoch=None",
                      "callbacks=None", "timer=None"],
    # state (torchtnt.framework.state)
    "torchkit:State": ["*", "entry_point", "timer=None", "train_state=None", "eval_state=None",
                       "predict_state=None", "test_state=None"],
    "torchkit:PhaseState": ["*", "dataloader", "max_epochs=None", "max_steps=None",
                            "max_steps_per_epoch=None", "evaluate_every_n_steps=None",
                            "evaluate_every_n_epochs=None"],
    # units
    "torchkit:AutoUnit": ["*", "module", "device=None", "strategy=None",
                          "step_lr_interval='epoch'", "precision=None",
                          "gradient_accumulation_steps=1", "detect_anomaly=None",
                          "clip_grad_norm=None", "clip_grad_value=None", "swa_params=None",
                          "torch_compile_params=None", "activation_checkpoint_params=None",
                          "training=True", "enable_prefetch=True",
                          "zero_grad_at_train_step_start=False"],
    "torchkit:AutoPredictUnit": ["*", "module", "device=None", "strategy=None",
                                 "precision=None", "torch_compile_params=None"],
    "torchkit.units:TrainUnit": [],
    "torchkit.units:EvalUnit": [],
    "torchkit.units:PredictUnit": [],
    "torchkit.units:TestUnit": [],
    "torchkit.units:AppStateMixin": [],
    "torchkit.loop.state:_check_loop_condition": ["name", "val"],
    # progress (torchtnt.utils.progress)
    "torchkit:Progress": ["num_epochs_completed=0", "num_steps_completed=0",
                          "num_steps_completed_in_epoch=0"],
    "torchkit.utils.progress:estimated_steps_in_epoch": [
        "dataloader", "*", "num_steps_completed", "max_steps", "max_steps_per_epoch"],
    "torchkit.utils.progress:estimated_steps_in_loop": [
        "dataloader", "*", "max_steps", "max_steps_per_epoch", "epochs"],
    "torchkit.utils.progress:estimated_steps_in_fit": [
        "*", "train_dataloader", "eval_dataloader", "epochs", "max_steps",
        "max_train_steps_per_epoch", "max_eval_steps_per_epoch", "eval_every_n_steps",
        "eval_every_n_epochs"],
    # callbacks (torchtnt.framework.callbacks)
    "torchkit.callbacks:EarlyStopping": ["monitored_attr", "early_stop_checker",
                                         "interval='epoch'", "phase='train'",
                                         "interval_freq=1"],
    "torchkit.callbacks:GarbageCollector": ["step_interval"],
    "torchkit.callbacks:EmptyCudaCache": ["step_interval"],
    "torchkit.callbacks:TimeLimitInterrupter": ["duration", "interval='epoch'",
                                                "interval_freq=1", "timestamp=None"],
    "torchkit.callbacks:TQDMProgressBar": ["refresh_rate=1"],
    "torchkit.callbacks:LearningRateMonitor": ["loggers", "*", "logging_interval='epoch'"],
    "torchkit.callbacks:SystemResourcesMonitor": ["loggers", "*", "logging_interval='epoch'"],
    "torchkit.callbacks:TrainProgressMonitor": ["loggers"],
    "torchkit.callbacks:IterationTimeLogger": ["logger", "moving_avg_window=1",
                                               "log_every_n_steps=1"],
    "torchkit.callbacks:TimeWaitForBatchLogger": ["logger", "*", "log_every_n_steps=1",
                                                  "warmup_steps=0"],
    "torchkit.callbacks:TensorBoardParameterMonitor": ["logger"],
    "torchkit.callbacks:PyTorchProfiler": ["profiler"],
    "torchkit.callbacks:ModuleSummary": ["max_depth=None", "process_fn=<fn>",
                                         "module_inputs=None"],
    # utils (torchtnt.utils)
    "torchkit.utils:EarlyStopChecker": ["mode", "patience", "min_delta=0.0",
                                        "check_finite=True", "threshold_mode='abs'",
                                        "stopping_threshold=None", "divergence_threshold=None"],
    "torchkit.utils:spawn_multi_process": ["world_size", "backend", "method", "*method_args",
                                           "**method_kwargs"],
    "torchkit.utils:sync_bool": ["val", "pg=None", "coherence_mode='any'"],
    "torchkit.utils:all_gather_tensors": ["result", "group=None"],
    "torchkit.utils:seed": ["seed", "deterministic=None"],
    "torchkit.utils:init_from_env": ["*", "device_type=None", "dist_init_method_type='env'",
                                     "pg_backend=None", "pg_timeout=<30min>",
                                     "float32_matmul_precision='high'"],
    "torchkit.utils.version:is_torch_version_geq": ["version"],
    "torchkit.strategies:FSDPOptimizerWrapper": ["module", "optimizer"],
    # loggers (torchtnt.utils.loggers) and checkpoint options
    "torchkit.loggers:CSVLogger": ["path", "steps_before_flushing=100", "log_all_ranks=False"],
    "torchkit.loggers:JSONLogger": ["path", "steps_before_flushing=100", "log_all_ranks=False"],
    "torchkit.loggers:StdoutLogger": ["precision=4"],
    "torchkit.loggers:InMemoryLogger": [],
    "torchkit.checkpoint:BestCheckpointConfig": ["monitored_metric", "mode='min'"],
    "torchkit.checkpoint:RestoreOptions": ["restore_modules=True", "restore_train_progress=True",
                                           "restore_eval_progress=True",
                                           "restore_predict_progress=True",
                                           "restore_optimizers=True",
                                           "restore_lr_schedulers=True", "restore_metrics=True",
                                           "strict=True", "init_optim_states=True"],
    "torchkit.strategies:FSDP2OptimizerWrapper": ["module", "optimizer"],
}  # fmt: skip

_SPECIAL_DEFAULTS: dict[str, Any] = {"<30min>": timedelta(minutes=30), "<fn>": "<fn>"}

# (callable, parameter) -> why; each must also be named in docs/migration.md
DEVIATIONS: dict[tuple[str, str], str] = {
    ("torchkit.callbacks:ModuleSummary", "max_depth"): "default 1: a readable summary",
    ("torchkit.callbacks:ModuleSummary", "process_fn"): "receives the table text, not "
    "torcheval objects (no torcheval dependency)",
    ("torchkit.callbacks:ModuleSummary", "module_inputs"): "named example_inputs",
    ("torchkit.utils:init_from_env", "float32_matmul_precision"): "default None: the global "
    "matmul precision is left alone",
    ("torchkit.checkpoint:RestoreOptions", "init_optim_states"): "not provided: a fresh "
    "optimizer's state is always allocated before loading",
}


def _parse(spec: list[str]) -> list[tuple[str, Any, Any]]:
    out, kind = [], inspect.Parameter.POSITIONAL_OR_KEYWORD
    for item in spec:
        if item == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
        elif item.startswith("**"):
            out.append((item[2:], inspect.Parameter.VAR_KEYWORD, REQUIRED))
        elif item.startswith("*"):
            out.append((item[1:], inspect.Parameter.VAR_POSITIONAL, REQUIRED))
            kind = inspect.Parameter.KEYWORD_ONLY
        elif "=" in item:
            name, raw = item.split("=", 1)
            default = (
                _SPECIAL_DEFAULTS.get(raw) if raw in _SPECIAL_DEFAULTS else ast.literal_eval(raw)
            )
            out.append((name, kind, default))
        else:
            out.append((item, kind, REQUIRED))
    return out


def _resolve(key: str) -> Any:
    module, name = key.split(":")
    return getattr(importlib.import_module(module), name)


def _mismatches(key: str) -> list[str]:
    sig = inspect.signature(_resolve(key))
    ours = list(sig.parameters.values())
    problems: list[str] = []
    positional_ours = [p for p in ours if p.kind in _POSITIONAL]
    tnt = _parse(TNT[key])
    tnt_names = {name for name, _, _ in tnt}
    for index, (name, _, _) in enumerate([t for t in tnt if t[1] in _POSITIONAL]):
        if index >= len(positional_ours) or positional_ours[index].name != name:
            problems.append(f"{name}: not positional parameter #{index}")
    for name, kind, default in tnt:
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            if not any(p.kind == kind for p in ours):
                problems.append(f"{name}: no {kind.description} parameter")
            continue
        p = sig.parameters.get(name)
        if p is None:
            problems.append(f"{name}: missing")
            continue
        if kind == inspect.Parameter.KEYWORD_ONLY and p.kind not in _BY_KEYWORD:
            problems.append(f"{name}: not accepted by keyword")
        if default is not REQUIRED and default != "<fn>" and p.default != default:
            problems.append(f"{name}: default {p.default!r}, TNT {default!r}")
        if default == "<fn>" and not callable(p.default):
            problems.append(f"{name}: default {p.default!r}, TNT a function")
    for p in ours:  # torchkit's own additions must not make a TNT call fail
        extra = p.name not in tnt_names and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        if extra and p.default is REQUIRED:
            problems.append(f"{p.name}: extra parameter without a default")
    return problems


@pytest.mark.parametrize("key", sorted(TNT))
def test_signature_matches_tnt(key: str) -> None:
    allowed = {param for (k, param) in DEVIATIONS if k == key}
    problems = [m for m in _mismatches(key) if m.split(":")[0] not in allowed]
    assert problems == []


@pytest.mark.parametrize(("key", "param"), sorted(DEVIATIONS))
def test_each_deviation_is_real_and_documented(key: str, param: str) -> None:
    assert any(m.split(":")[0] == param for m in _mismatches(key)), "no longer differs: drop it"
    guide = (Path(__file__).parents[1] / "docs" / "migration.md").read_text()
    assert key.split(":")[1] in guide and param in guide


def test_the_checker_catches_renamed_reordered_and_redefaulted_parameters() -> None:
    def ours(b: int, a: int = 2, *, c: int = 0, extra: int = 1) -> None: ...

    TNT["tests.test_tnt_signatures:_probe"] = ["a", "b", "*", "c=5", "d=None"]
    globals()["_probe"] = ours
    try:
        problems = _mismatches("tests.test_tnt_signatures:_probe")
    finally:
        del TNT["tests.test_tnt_signatures:_probe"]
    assert problems == [
        "a: not positional parameter #0", "b: not positional parameter #1",
        "c: default 0, TNT 5", "d: missing",
    ]  # fmt: skip
