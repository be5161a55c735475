"""docs/hf.md's snippets run (the timm one when timm imports), and the HF example trains."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "hf.md"


def blocks(*, timm: bool) -> list[str]:
    found = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [b for b in found if ("import timm" in b) == timm]


def run_blocks(code: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for block in code:
        exec(compile(block, str(PAGE), "exec"), namespace)


def test_hf_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = blocks(timm=False)
    assert len(code) >= 4
    run_blocks(code, tmp_path, monkeypatch)


def test_timm_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = blocks(timm=True)
    assert len(code) == 1
    try:
        import timm  # noqa: F401
    except Exception as exc:  # timm missing, or its torchvision broken for this torch
        pytest.skip(f"timm is not importable: {type(exc).__name__}: {exc}")
    run_blocks(code, tmp_path, monkeypatch)


def test_text_classification_example_trains_exports_and_reloads(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("hf_example", ROOT / "examples" /
                                                  "hf_text_classification.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hf_example"] = module
    spec.loader.exec_module(module)
    accuracy = module.main(["--output-dir", str(tmp_path / "run")])
    assert accuracy >= 0.9
    assert (tmp_path / "run" / "model" / "config.json").exists()
    assert (tmp_path / "run" / "model" / "tokenizer.json").exists()
