"""No host-device sync from torchkit code during AutoUnit steps."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import torchkit
from tests.units.test_auto_unit import MSEUnit, batches, mlp
from torchkit import train

TORCHKIT_DIR = str(Path(torchkit.__file__).parent)
SYNC_METHODS = ("item", "__bool__", "__float__", "tolist")


@pytest.fixture
def sync_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every Tensor sync method called directly from a frame under torchkit/."""
    calls: list[str] = []

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(TORCHKIT_DIR):
                calls.append(f"{name} from {caller.f_code.co_filename}:{caller.f_lineno}")
            return original(self, *args, **kwargs)

        return wrapper

    for name in SYNC_METHODS:
        monkeypatch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
    yield calls


@pytest.mark.parametrize(
    "options",
    [{}, {"clip_grad_norm": 1.0}, {"clip_grad_value": 0.1, "gradient_accumulation_steps": 2}],
    ids=["plain", "clip-norm", "clip-value-accum"],
)
def test_twenty_steps_make_no_sync_calls_from_torchkit(
    sync_calls: list[str], options: dict[str, Any]
) -> None:
    def sched(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.StepLR(opt, step_size=5)

    unit = MSEUnit(module=mlp(), device="cpu", sched_fn=sched, step_lr_interval="step", **options)
    train(unit, batches(21), max_steps=20)
    assert unit.train_progress.num_steps_completed == 20
    assert sync_calls == []


def test_probe_catches_a_sync_in_torchkit(sync_calls: list[str]) -> None:
    unit = MSEUnit(module=mlp(), device="cpu", non_finite_policy="skip")
    train(unit, batches(2), max_epochs=1)
    # the non-finite check is the one documented sync point (policy on, per optimizer step)
    assert len(sync_calls) == 2 and all("_auto_extras.py" in c for c in sync_calls)
