"""``import torchkit`` stays light, and the public names of design.md §2 are importable."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import torchkit

# Heavy or optional modules ``import torchkit`` must not pull in (design.md §3).
FORBIDDEN = (
    "torch._dynamo",
    "torch.distributed.checkpoint",
    "tensorboard",
    "torchmetrics",
    "tqdm",
    "jsonargparse",
    "transformers",
    "torchkit.integrations",
)

_PROBE = """
import json, sys
import torch
after_torch = set(sys.modules)
import torchkit
new = sorted(set(sys.modules) - after_torch)
print(json.dumps({"all": sorted(sys.modules), "new": new}))
"""


@pytest.fixture(scope="module")
def imported_modules() -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("prefix", FORBIDDEN)
def test_import_torchkit_does_not_import(
    prefix: str, imported_modules: dict[str, list[str]]
) -> None:
    # Some versions of ``import torch`` itself import tqdm (through torch.hub); torchkit is
    # only answerable for what it adds, so check the modules that appeared after torch.
    added = [m for m in imported_modules["new"] if _matches(m, prefix)]
    assert added == [], f"import torchkit imported {added}"
    if prefix != "tqdm":
        assert not [m for m in imported_modules["all"] if _matches(m, prefix)]


TOP_LEVEL = [
    "train", "evaluate", "predict", "fit", "TrainUnit", "EvalUnit", "PredictUnit",
    "AppStateMixin", "AutoUnit", "AutoPredictUnit", "TrainStepResults", "State", "PhaseState",
    "EntryPoint", "ActivePhase", "Callback", "Progress",
]  # fmt: skip


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_names(name: str) -> None:
    assert hasattr(torchkit, name), f"torchkit.{name} is missing"
    assert name in torchkit.__all__


SUBPACKAGES = {
    "torchkit.callbacks": [
        "Lambda", "TQDMProgressBar", "LearningRateMonitor", "GarbageCollector", "EarlyStopping",
        "TimeLimitInterrupter", "SystemResourcesMonitor", "ThroughputLogger",
        "IterationTimeLogger", "TimeWaitForBatchLogger", "ModuleSummary",
        "TensorBoardParameterMonitor", "PyTorchProfiler", "EmptyCudaCache",
        "TrainProgressMonitor", "MetricsLogger", "BaseCheckpointer", "DistributedCheckpointSaver",
    ],
    "torchkit.loggers": [
        "MetricLogger", "TensorBoardLogger", "CSVLogger", "JSONLogger", "InMemoryLogger",
        "StdoutLogger", "MLflowLogger",
    ],
    "torchkit.strategies": [
        "NOOPStrategy", "DDPStrategy", "FSDPStrategy", "FSDP2Strategy", "TorchCompileParams",
        "ActivationCheckpointParams", "SWAParams", "SWALRParams", "prepare_module",
    ],
    "torchkit.checkpoint": [
        "BestCheckpointConfig", "RestoreOptions", "get_latest_checkpoint_path",
        "get_best_checkpoint_path",
    ],
    "torchkit.utils": [
        "copy_data_to_device", "init_from_env", "seed", "get_device_from_env", "get_global_rank",
        "get_local_rank", "get_world_size", "barrier", "sync_bool", "all_gather_tensors",
        "spawn_multi_process", "Timer", "EarlyStopChecker", "get_filesystem", "Stateful",
        "MultiStateful", "estimated_steps_in_epoch", "estimated_steps_in_loop",
        "estimated_steps_in_fit",
    ],
}  # fmt: skip

_SUB_CASES = [(pkg, name) for pkg, names in SUBPACKAGES.items() for name in names]


@pytest.mark.parametrize(("pkg", "name"), _SUB_CASES)
def test_subpackage_exports(pkg: str, name: str) -> None:
    module = importlib.import_module(pkg)
    assert hasattr(module, name), f"{pkg}.{name} is missing"
    assert name in module.__all__


def test_core_names_come_from_their_packages() -> None:
    from torchkit.callbacks import Callback
    from torchkit.loop import Progress, State, train
    from torchkit.units import TrainUnit

    assert torchkit.Callback is Callback
    assert torchkit.Progress is Progress and torchkit.State is State
    assert torchkit.train is train and torchkit.TrainUnit is TrainUnit
