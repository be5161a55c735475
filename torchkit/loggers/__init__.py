"""Loggers: where metrics go (TensorBoard, CSV, JSON, memory, stdout, MLflow), one per file.

Heavy backends (tensorboard, mlflow) are imported only when a logger is created.
"""

from torchkit.loggers.csv_logger import CSVLogger
from torchkit.loggers.in_memory import InMemoryLogger
from torchkit.loggers.json_logger import JSONLogger
from torchkit.loggers.metric_logger import MetricLogger
from torchkit.loggers.mlflow import MLflowLogger
from torchkit.loggers.stdout import StdoutLogger
from torchkit.loggers.tensorboard import TensorBoardLogger

__all__ = [
    "CSVLogger",
    "InMemoryLogger",
    "JSONLogger",
    "MLflowLogger",
    "MetricLogger",
    "StdoutLogger",
    "TensorBoardLogger",
]
