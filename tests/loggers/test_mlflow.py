"""MLflowLogger: a clear error without mlflow; a real run with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from torchkit.loggers import MLflowLogger
from torchkit.loggers import mlflow as mlflow_module

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def test_missing_mlflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "mlflow":
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install torchkit\[mlflow\]"):
        mlflow_module._import_mlflow()


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow is not installed")
def test_logs_metrics_to_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # newer mlflow gates the file store
    uri = (tmp_path / "mlruns").as_uri()
    lg = MLflowLogger(experiment_name="exp", run_name="r", tracking_uri=uri)
    lg.log("train/loss", 0.5, step=1)
    lg.log_dict({"train/loss": 0.25}, step=2)
    lg.log_hparams({"lr": 0.1})
    run_id = lg.run_id
    lg.close()
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
