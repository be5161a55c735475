"""Test hygiene shared by the whole suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

import torchkit

TORCHKIT_DIR = str(Path(torchkit.__file__).parent)
SYNC_METHODS = ("item", "__bool__", "__float__", "tolist")


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _no_leaked_process_group() -> Iterator[None]:
    yield
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        pytest.fail("the test left a torch.distributed process group open")


@pytest.fixture(autouse=True)
def _seed_and_threads() -> Iterator[None]:
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # not keywords: a "gpu" folder matches
            item.add_marker(skip_gpu)


@pytest.fixture
def host_syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Tensor ``item`` / ``__bool__`` / ``__float__`` / ``tolist`` call made directly
    from a frame under torchkit/, as ``"<method> from <file>:<line> (<function>)"``."""
    calls: list[str] = []

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            code, line = sys._getframe(1).f_code, sys._getframe(1).f_lineno
            if code.co_filename.startswith(TORCHKIT_DIR):
                calls.append(f"{name} from {code.co_filename}:{line} ({code.co_name})")
            return original(self, *args, **kwargs)

        return wrapper

    for name in SYNC_METHODS:
        monkeypatch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
    yield calls
