"""``import torchkit`` stays free of ``torchkit.live``; the docs page's example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_torchkit_does_not_import_torchkit_live() -> None:
    code = "import sys, torchkit; print(sorted(m for m in sys.modules if 'torchkit.live' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_live_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/live.md").read_text(), flags=re.S)
    assert blocks
    namespace: dict[str, object] = {"__name__": "__doc_snippet__"}
    for block in blocks:
        exec(compile(block, "docs/live.md", "exec"), namespace)
    assert namespace["live"].version == 32  # type: ignore[attr-defined]
