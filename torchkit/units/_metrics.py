"""The ``metrics=`` argument of the config-built units, as one torchmetrics object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_metric_collection(metrics: Any, example: str) -> Any:
    """``metrics`` as one torchmetrics object: a ``Metric`` or ``MetricCollection`` as given, a
    dict of ``Metric``s as a ``MetricCollection``, ``None`` as ``None``.

    Args:
        metrics: the unit's ``metrics`` argument.
        example: an example value for the error message.

    Raises:
        TypeError: ``metrics`` is none of these.

    Example:
        >>> from torchmetrics.classification import MulticlassAccuracy
        >>> m = as_metric_collection({"accuracy": MulticlassAccuracy(num_classes=3)}, "")
        >>> type(m).__name__
        'MetricCollection'
    """
    if metrics is None:
        return None
    import torchmetrics

    if isinstance(metrics, (torchmetrics.Metric, torchmetrics.MetricCollection)):
        return metrics
    if isinstance(metrics, Mapping) and all(
        isinstance(m, torchmetrics.Metric) for m in metrics.values()
    ):
        return torchmetrics.MetricCollection(dict(metrics))
    raise TypeError(
        f"metrics={metrics!r} is invalid: expected a dict of torchmetrics Metrics (or a Metric "
        f"or MetricCollection). Pass e.g. metrics={example}."
    )
