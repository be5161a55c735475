"""The shipped examples run and reach their documented results."""

from __future__ import annotations

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
def test_digits_example_reaches_95_percent(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    digits = _load(ROOT / "examples" / "digits.py")
    accuracy = digits.main(["--epochs", "20"])
    assert accuracy >= 0.95


def _python_blocks(md: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", md.read_text(), flags=re.S)


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md", "docs/units.md"])
def test_doc_snippets_run(page: str) -> None:
    blocks = _python_blocks(ROOT / page)
    assert blocks, f"{page} has no python snippet"
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
