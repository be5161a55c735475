"""Fixtures shared by the callback tests."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

TORCHKIT_DIR = str(Path(__file__).resolve().parents[2] / "torchkit")


@pytest.fixture
def host_syncs() -> Iterator[list[str]]:
    """Count Tensor.item / __float__ / __bool__ / tolist calls made directly from torchkit."""
    calls: list[str] = []
    originals = {n: getattr(torch.Tensor, n) for n in ("item", "__float__", "__bool__", "tolist")}

    def wrap(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            caller = inspect.currentframe().f_back  # type: ignore[union-attr]
            if caller is not None and caller.f_code.co_filename.startswith(TORCHKIT_DIR):
                calls.append(f"{name} from {caller.f_code.co_name}")
            return fn(self, *args, **kwargs)

        return wrapper

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
