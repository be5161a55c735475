"""HF tests run offline (never a hub download) and skip without transformers."""

from __future__ import annotations

import importlib.util
import os

import pytest

# huggingface_hub reads these when it is first imported, so they are set before transformers
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# without the hf extra (pip install 'torchkit[hf]') these tests are not collected
collect_ignore_glob = [] if importlib.util.find_spec("transformers") else ["test_*.py"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # for subprocesses started by a test
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
