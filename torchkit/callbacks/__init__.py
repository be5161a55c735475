"""Callbacks: hooks into the loop, one callback per file."""

from torchkit.callbacks.base_checkpointer import BaseCheckpointer
from torchkit.callbacks.callback import Callback
from torchkit.callbacks.distributed_checkpoint_saver import DistributedCheckpointSaver
from torchkit.callbacks.early_stopping import EarlyStopping
from torchkit.callbacks.empty_cuda_cache import EmptyCudaCache
from torchkit.callbacks.garbage_collector import GarbageCollector
from torchkit.callbacks.iteration_time_logger import IterationTimeLogger
from torchkit.callbacks.lambda_callback import Lambda
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
