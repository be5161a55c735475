"""No host-device sync from torchkit code during AutoUnit steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.units.test_auto_unit import MSEUnit, batches, mlp
from torchkit import train


@pytest.mark.parametrize(
    "options",
    [{}, {"clip_grad_norm": 1.0}, {"clip_grad_value": 0.1, "gradient_accumulation_steps": 2}],
    ids=["plain", "clip-norm", "clip-value-accum"],
)
def test_twenty_steps_make_no_sync_calls_from_torchkit(
    host_syncs: list[str], options: dict[str, Any]
) -> None:
    def sched(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.StepLR(opt, step_size=5)

    unit = MSEUnit(module=mlp(), device="cpu", sched_fn=sched, step_lr_interval="step", **options)
    train(unit, batches(21), max_steps=20)
    assert unit.train_progress.num_steps_completed == 20
    assert host_syncs == []


def test_probe_catches_a_sync_in_torchkit(host_syncs: list[str]) -> None:
    unit = MSEUnit(module=mlp(), device="cpu", non_finite_policy="skip")
    train(unit, batches(2), max_epochs=1)
    # the non-finite check is the one documented sync point (policy on, per optimizer step)
    assert len(host_syncs) == 2 and all("_auto_extras.py" in c for c in host_syncs)
