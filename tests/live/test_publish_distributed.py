"""PublishWeights under DDP and FSDP2 on 2 CPU processes (gloo)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist

from tests.live.units import MSEAutoUnit, batches, mlp
from torchkit import train
from torchkit.live import LiveModel, PublishWeights
from torchkit.strategies import FSDP2Strategy
from torchkit.testing import launch_processes

pytestmark = pytest.mark.distributed
WORLD = 2


def _published(live: LiveModel) -> list[torch.Tensor]:
    with live.acquire() as snap:
        return [p.detach().clone() for p in snap.module.parameters()]


def _ddp_run() -> dict[str, Any]:
    rank = dist.get_rank()
    model = mlp()
    live = LiveModel.from_module(model)
    unit = MSEAutoUnit(module=model, device="cpu", strategy="ddp")
    cb = PublishWeights(live, every_n_optimizer_steps=2)
    train(unit, batches(5, seed=10 + rank), max_epochs=1, callbacks=[cb])
    return {
        "version": live.version,
        "published": _published(live),
        "trained": [p.detach().clone() for p in model.parameters()],
    }


def test_ddp_only_rank_zero_publishes_and_weights_agree() -> None:
    out = launch_processes(WORLD, "gloo", _ddp_run, timeout_s=120)
    assert out[0]["version"] == 3  # optimizer steps 2 and 4, then the end of training (5)
    assert out[1]["version"] == 0
    for a, b, c in zip(out[0]["trained"], out[1]["trained"], out[0]["published"]):
        assert torch.equal(a, b) and torch.equal(a, c)


def _fsdp2_run() -> dict[str, Any]:
    model = mlp()
    live = LiveModel.from_module(model)  # before fully_shard
    unit = MSEAutoUnit(module=model, device="cpu", strategy=FSDP2Strategy())
    cb = PublishWeights(live, every_n_train_steps=2)
    # the same batches on both ranks, so the unsharded reference sees the same global batch
    train(unit, batches(5), max_epochs=1, callbacks=[cb])
    errors = []
    for attempt in (lambda: LiveModel.from_module(model), lambda: live.publish(9)):
        try:
            attempt()
        except (ValueError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"version": live.version, "published": _published(live), "errors": errors}


def test_fsdp2_rank_zero_gets_the_full_weights() -> None:
    out = launch_processes(WORLD, "gloo", _fsdp2_run, timeout_s=120)  # no deadlock
    assert out[0]["version"] == 3  # steps 2 and 4, then the end of training (5)
    assert out[1]["version"] == 0
    too_late, publish_alone = out[0]["errors"]
    assert (
        too_late.startswith("ValueError: module=FSDPSequential is invalid") and "FSDP2" in too_late
    )
    assert publish_alone.startswith("RuntimeError: LiveModel.publish() cannot copy a sharded")
    ref = mlp()
    unit = MSEAutoUnit(module=ref, device="cpu")
    train(unit, batches(5), max_epochs=1)
    for got, want in zip(out[0]["published"], ref.parameters()):
        assert torch.equal(got, want)
    assert not torch.equal(out[0]["published"][0], mlp()[0].weight)
