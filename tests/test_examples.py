"""The shipped examples run and reach their documented results."""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_digits_example_trains_logs_checkpoints_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from torchkit.checkpoint import get_latest_checkpoint_path

    digits = _load(ROOT / "examples" / "digits.py")
    out = tmp_path / "run"
    accuracy = digits.main(["--epochs", "20", "--output-dir", str(out)])
    assert accuracy >= 0.95

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "eval/accuracy", "test/accuracy"} <= tags
    assert acc.Scalars("eval/accuracy")[-1].value >= 0.9  # the small validation split
    (test_point,) = acc.Scalars("test/accuracy")  # tested once, after training
    assert test_point.step == 820 and test_point.value == pytest.approx(accuracy)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "eval/accuracy" in rows[0] and "train/loss" in rows[0]

    latest = get_latest_checkpoint_path(str(out / "checkpoints"))
    assert latest is not None and "epoch_20_train_step_820" in latest
    assert len(list((out / "checkpoints").iterdir())) <= 3  # keep_last_n plus the best

    capsys.readouterr()
    resumed_accuracy = digits.main(
        ["--epochs", "22", "--output-dir", str(out), "--resume", "--no-progress-bar"]
    )
    assert "resumed after epoch 20" in capsys.readouterr().out
    assert resumed_accuracy >= 0.95
    latest = get_latest_checkpoint_path(str(out / "checkpoints"))
    assert latest is not None and "epoch_22_train_step_902" in latest
    with open(out / "metrics.csv", newline="") as f:
        resumed_rows = list(csv.DictReader(f))
    # the first run's history is kept; its rows at the resume step (820) are merged into one
    before = [r for r in rows if int(r["step"]) < 820]
    assert resumed_rows[: len(before)] == before
    old_820 = {k: v for r in rows if r["step"] == "820" for k, v in r.items() if v}
    new_820 = resumed_rows[len(before)]
    assert {k: v for k, v in old_820.items() if k != "lr-optimizer"}.items() <= new_820.items()
    assert int(resumed_rows[-1]["step"]) == 902 and len(resumed_rows) > len(rows)
    assert float(resumed_rows[-1]["test/accuracy"]) == pytest.approx(resumed_accuracy)


def test_digits_stages_example_pretrains_fine_tunes_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn")
    import json

    example = _load(ROOT / "examples" / "digits_stages.py")
    args = ["--pretrain-epochs", "2", "--finetune-epochs", "4", "--output-dir", str(tmp_path)]
    accuracy = example.main(args)
    assert accuracy >= 0.85
    out = capsys.readouterr().out
    assert "stage pretrain: ran" in out and "stage finetune: ran" in out
    manifest = json.loads((tmp_path / "stages.json").read_text())
    assert [e["status"] for e in manifest["stages"]] == ["done", "done"]
    with open(tmp_path / "stages" / "01_finetune" / "metrics" / "metrics.csv", newline="") as f:
        assert "eval/loss" in next(csv.DictReader(f))
    # the same call again resumes: both stages are done, so both are skipped
    assert example.main(args) == accuracy
    out = capsys.readouterr().out
    assert "stage pretrain: skipped" in out and "stage finetune: skipped" in out


def _python_blocks(md: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", md.read_text(), flags=re.S)


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        "docs/quickstart.md",
        "docs/units.md",
        "docs/observability.md",
        "docs/autounit.md",
        "docs/checkpointing.md",
        "docs/durations.md",
        "docs/data_and_stages.md",
        "docs/evaluators.md",
    ],
)
def test_doc_snippets_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # snippets may write logs relative to the working directory
    blocks = _python_blocks(ROOT / page)
    assert blocks, f"{page} has no python snippet"
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
