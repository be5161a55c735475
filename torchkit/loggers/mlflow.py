"""``MLflowLogger``: scalars and params to an MLflow run (optional extra ``torchkit[mlflow]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkit.loggers.metric_logger import Scalar, to_float
from torchkit.utils.distributed import get_global_rank


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(
            "MLflowLogger needs the optional dependency mlflow, which is not installed. "
            "Install it with `pip install torchkit[mlflow]` (or `pip install mlflow`)."
        ) from exc
    return mlflow


class MLflowLogger:
    """Logs scalars (and ``log_hparams`` params) to an MLflow run from rank 0.

    Args:
        experiment_name: MLflow experiment (created when missing); ``None`` = MLflow default.
        run_name: name of the run started by this logger.
        tracking_uri: MLflow tracking URI, e.g. ``"file:///tmp/mlruns"``.

    Raises:
        ImportError: mlflow is not installed (install ``torchkit[mlflow]``).

    Example:
        >>> lg = MLflowLogger(tracking_uri="file:///tmp/mlruns")  # doctest: +SKIP
        >>> lg.log("train/loss", 0.5, step=1); lg.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        run_name: str | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        self._mlflow = _import_mlflow()
        self._run: Any = None
        if get_global_rank() != 0:
            return
        if tracking_uri is not None:
            self._mlflow.set_tracking_uri(tracking_uri)
        if experiment_name is not None:
            self._mlflow.set_experiment(experiment_name)
        self._run = self._mlflow.start_run(run_name=run_name)

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (``None`` on ranks other than 0)."""
        return None if self._run is None else str(self._run.info.run_id)

    def log(self, name: str, value: Scalar, step: int) -> None:
        """Log one scalar."""
        if self._run is not None:
            self._mlflow.log_metric(name, to_float(value), step=int(step))

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Log several scalars at one step."""
        if self._run is not None:
            self._mlflow.log_metrics({k: to_float(v) for k, v in payload.items()}, step=int(step))

    def log_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Log hyper-parameters as MLflow params."""
        if self._run is not None:
            self._mlflow.log_params(dict(hparams))

    def close(self) -> None:
        """End the run; later calls are no-ops."""
        if self._run is not None:
            self._mlflow.end_run()
            self._run = None
