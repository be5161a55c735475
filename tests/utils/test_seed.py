"""seed(): reproducibility and argument checks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from torchkit.utils import seed


@pytest.fixture
def _restore_determinism() -> Iterator[None]:
    mode = torch.get_deterministic_debug_mode()
    bench = torch.backends.cudnn.benchmark
    yield
    torch.set_deterministic_debug_mode(mode)
    torch.backends.cudnn.benchmark = bench


def _draw() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.mark.parametrize("value", [0, 1, 2**32 - 1])
def test_same_seed_same_draws(value: int) -> None:
    seed(value)
    a = _draw()
    seed(value)
    assert _draw() == a


def test_different_seeds_differ() -> None:
    seed(1)
    a = _draw()
    seed(2)
    assert _draw() != a


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "3", True, None])
def test_bad_seed(bad: Any) -> None:
    with pytest.raises(
        ValueError, match=r"seed=.* is invalid: expected an int in \[0, 4294967295\]"
    ):
        seed(bad)


@pytest.mark.usefixtures("_restore_determinism")
@pytest.mark.parametrize(("mode", "level"), [("warn", 1), (2, 2), ("default", 0)])
def test_deterministic_modes(mode: Any, level: int) -> None:
    seed(0, deterministic=mode)
    assert torch.get_deterministic_debug_mode() == level


@pytest.mark.usefixtures("_restore_determinism")
def test_bad_deterministic_value() -> None:
    with pytest.raises(ValueError, match=r"deterministic='strict' is invalid"):
        seed(0, deterministic="strict")
