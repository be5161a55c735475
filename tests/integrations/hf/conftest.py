"""HF tests run offline (never a hub download) and skip without transformers."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest
import torch

# huggingface_hub reads these when it is first imported, so they are set before transformers
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# without the hf extra (pip install 'torchkit[hf]') these tests are not collected
collect_ignore_glob = [] if importlib.util.find_spec("transformers") else ["test_*.py"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # for subprocesses started by a test
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # the models are tiny: a second intra-op thread only adds synchronisation (10x slower on a
    # busy machine)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
