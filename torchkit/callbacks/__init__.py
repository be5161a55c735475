"""Callbacks: hooks into the loop, one callback per file.

Only ``Callback`` and ``Lambda`` are imported with the package; every other callback is
imported on first use (``from torchkit.callbacks import MetricsLogger``), so ``import
torchkit`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchkit.callbacks.callback import Callback
from torchkit.callbacks.lambda_callback import Lambda

if TYPE_CHECKING:
    from torchkit.callbacks.base_checkpointer import BaseCheckpointer
    from torchkit.callbacks.distributed_checkpoint_saver import DistributedCheckpointSaver
    from torchkit.callbacks.early_stopping import EarlyStopping
    from torchkit.callbacks.empty_cuda_cache import EmptyCudaCache
    from torchkit.callbacks.garbage_collector import GarbageCollector
    from torchkit.callbacks.iteration_time_logger import IterationTimeLogger
    from torchkit.callbacks.learning_rate_monitor import LearningRateMonitor
    from torchkit.callbacks.metrics_logger import MetricsLogger
    from torchkit.callbacks.module_summary import ModuleSummary
    from torchkit.callbacks.pytorch_profiler import PyTorchProfiler
    from torchkit.callbacks.run_summary import RunSummary
    from torchkit.callbacks.system_resources_monitor import SystemResourcesMonitor
    from torchkit.callbacks.tensorboard_parameter_monitor import TensorBoardParameterMonitor
    from torchkit.callbacks.throughput_logger import ThroughputLogger
    from torchkit.callbacks.time_limit_interrupter import TimeLimitInterrupter
    from torchkit.callbacks.time_wait_for_batch_logger import TimeWaitForBatchLogger
    from torchkit.callbacks.tqdm_progress_bar import TQDMProgressBar
    from torchkit.callbacks.train_progress_monitor import TrainProgressMonitor

_LAZY = {
    "BaseCheckpointer": "torchkit.callbacks.base_checkpointer",
    "DistributedCheckpointSaver": "torchkit.callbacks.distributed_checkpoint_saver",
    "EarlyStopping": "torchkit.callbacks.early_stopping",
    "EmptyCudaCache": "torchkit.callbacks.empty_cuda_cache",
    "GarbageCollector": "torchkit.callbacks.garbage_collector",
    "IterationTimeLogger": "torchkit.callbacks.iteration_time_logger",
    "LearningRateMonitor": "torchkit.callbacks.learning_rate_monitor",
    "MetricsLogger": "torchkit.callbacks.metrics_logger",
    "ModuleSummary": "torchkit.callbacks.module_summary",
    "PyTorchProfiler": "torchkit.callbacks.pytorch_profiler",
    "RunSummary": "torchkit.callbacks.run_summary",
    "SystemResourcesMonitor": "torchkit.callbacks.system_resources_monitor",
    "TensorBoardParameterMonitor": "torchkit.callbacks.tensorboard_parameter_monitor",
    "ThroughputLogger": "torchkit.callbacks.throughput_logger",
    "TimeLimitInterrupter": "torchkit.callbacks.time_limit_interrupter",
    "TimeWaitForBatchLogger": "torchkit.callbacks.time_wait_for_batch_logger",
    "TQDMProgressBar": "torchkit.callbacks.tqdm_progress_bar",
    "TrainProgressMonitor": "torchkit.callbacks.train_progress_monitor",
}

__all__ = [
    "BaseCheckpointer",
    "Callback",
    "DistributedCheckpointSaver",
    "EarlyStopping",
    "EmptyCudaCache",
    "GarbageCollector",
    "IterationTimeLogger",
    "Lambda",
    "LearningRateMonitor",
    "MetricsLogger",
    "ModuleSummary",
    "PyTorchProfiler",
    "RunSummary",
    "SystemResourcesMonitor",
    "TQDMProgressBar",
    "TensorBoardParameterMonitor",
    "ThroughputLogger",
    "TimeLimitInterrupter",
    "TimeWaitForBatchLogger",
    "TrainProgressMonitor",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchkit.callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
