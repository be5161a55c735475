"""AutoUnit with DDP and FSDP2 on 2 CPU processes (gloo), against single-process references."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from tests.units.test_auto_unit import Batch, CountWeightedUnit, MSEUnit, batches, mlp
from torchkit import train
from torchkit.strategies import DDPStrategy, FSDP2Strategy
from torchkit.utils import spawn_multi_process

pytestmark = pytest.mark.distributed
WORLD = 2


def rank_batches(rank: int, n: int = 4) -> list[Batch]:
    return batches(n, seed=10 + rank)


def counting_hook(state, bucket):  # type: ignore[no-untyped-def]
    # unannotated: DDP checks the annotations of a comm hook against its own types
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    state["count"] += 1
    return allreduce_hook(None, bucket)  # type: ignore[arg-type]


def _ddp_run() -> dict[str, Any]:
    rank = dist.get_rank()
    comm_state = {"count": 0}
    strategy = DDPStrategy(comm_hook=counting_hook, comm_state=comm_state)
    unit = MSEUnit(module=mlp(), device="cpu", strategy=strategy, gradient_accumulation_steps=2)
    train(unit, rank_batches(rank, 5), max_epochs=1)  # windows [0, 1], [2, 3], [4]
    lengths = [[1, 4, 2], [3, 1, 4]][rank]
    data = [(x, y, n) for (x, y), n in zip(rank_batches(rank, 3), lengths)]
    counted = CountWeightedUnit(
        as_tensor=True, module=mlp(), device="cpu", strategy="ddp", gradient_accumulation_steps=3
    )
    train(counted, data, max_epochs=1)
    return {
        "params": [p.detach().clone() for p in unit.module.parameters()],
        "allreduces": comm_state["count"],
        "opt_steps": unit.num_optimizer_steps,
        "counted": [p.detach().clone() for p in counted.module.parameters()],
    }


def test_ddp_accumulation_equals_single_process_global_batch() -> None:
    out = spawn_multi_process(WORLD, "gloo", _ddp_run)
    for a, b in zip(out[0]["params"], out[1]["params"]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # identical on both ranks
    assert out[0]["opt_steps"] == 3
    assert out[0]["allreduces"] == out[0]["opt_steps"]  # no_sync on non-final micro-batches
    ref = mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    per_rank = [rank_batches(r, 5) for r in range(WORLD)]
    for window in ([0, 1], [2, 3], [4]):
        x = torch.cat([per_rank[r][i][0] for r in range(WORLD) for i in window])
        y = torch.cat([per_rank[r][i][1] for r in range(WORLD) for i in window])
        nn.functional.mse_loss(ref(x), y).backward()
        opt.step()
        opt.zero_grad()
    for a, b in zip(out[0]["params"], ref.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # count-weighted: the update is the mean over every valid item of both ranks
    ref = mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    lengths = [[1, 4, 2], [3, 1, 4]]
    xs, ys = [], []
    for r in range(WORLD):
        for (x, y), n in zip(rank_batches(r, 3), lengths[r]):
            xs.append(x[:n])
            ys.append(y[:n])
    (ref(torch.cat(xs)) - torch.cat(ys)).pow(2).sum(dim=1).mean().backward()
    opt.step()
    for a, b in zip(out[1]["counted"], ref.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def _fsdp2_run() -> dict[str, Any]:
    rank = dist.get_rank()
    strategy = FSDP2Strategy(modules_to_shard=(nn.Linear,))
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        strategy=strategy,
        gradient_accumulation_steps=2,
        clip_grad_norm=0.05,
    )
    train(unit, rank_batches(rank), max_epochs=1)
    full = [p.full_tensor().detach().clone() for p in unit.module.parameters()]  # type: ignore[attr-defined]
    norms = [r.total_grad_norm for r in unit.results if r.total_grad_norm is not None]
    return {"params": full, "norms": [n.detach().clone() for n in norms]}


def _clipped_reference() -> tuple[nn.Module, list[torch.Tensor]]:
    """Single-process reference for the sharded runs: the global batch of each k=2 window,
    clipped to 0.05; returns the model and the pre-clip norms."""
    ref = mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    per_rank = [rank_batches(r) for r in range(WORLD)]
    norms = []
    for window in ([0, 1], [2, 3]):
        x = torch.cat([per_rank[r][i][0] for r in range(WORLD) for i in window])
        y = torch.cat([per_rank[r][i][1] for r in range(WORLD) for i in window])
        nn.functional.mse_loss(ref(x), y).backward()
        norms.append(nn.utils.clip_grad_norm_(ref.parameters(), 0.05))
        opt.step()
        opt.zero_grad()
    return ref, norms


def test_fsdp2_training_matches_single_process_reference() -> None:
    out = spawn_multi_process(WORLD, "gloo", _fsdp2_run)
    ref, norms = _clipped_reference()
    assert norms[0] > 0.05
    for rank in range(WORLD):
        for a, b in zip(out[rank]["params"], ref.parameters()):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        assert len(out[rank]["norms"]) == 2
        for got, want in zip(out[rank]["norms"], norms):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def _fsdp1_run() -> dict[str, Any]:
    from torch.distributed.fsdp import FullyShardedDataParallel

    from torchkit.strategies import FSDPStrategy

    rank = dist.get_rank()
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        strategy=FSDPStrategy(),
        gradient_accumulation_steps=2,
        clip_grad_norm=0.05,
    )
    train(unit, rank_batches(rank), max_epochs=1)
    with FullyShardedDataParallel.summon_full_params(unit.module):
        full = [p.detach().clone() for p in unit.module.parameters()]
    norms = [r.total_grad_norm for r in unit.results if r.total_grad_norm is not None]
    return {"params": full, "norms": [n.detach().clone() for n in norms]}


def test_fsdp1_training_matches_single_process_reference() -> None:
    out = spawn_multi_process(WORLD, "gloo", _fsdp1_run)
    ref, norms = _clipped_reference()
    for rank in range(WORLD):
        for a, b in zip(out[rank]["params"], ref.parameters()):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        for got, want in zip(out[rank]["norms"], norms, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def _ddp_compiled_run() -> dict[str, Any]:
    from torchkit.strategies import TorchCompileParams

    rank = dist.get_rank()
    out: dict[str, Any] = {}
    for name, params in (("eager", None), ("compiled", TorchCompileParams(backend="eager"))):
        torch._dynamo.reset()
        unit = MSEUnit(module=mlp(), device="cpu", strategy="ddp", torch_compile_params=params)
        train(unit, rank_batches(rank), max_epochs=1)
        out[name] = [p.detach().clone() for p in unit.module.parameters()]
        out[f"{name}_graphs"] = unit.num_compiled_graphs
    return out


def test_ddp_of_an_nn_sequential_is_compiled_and_trains_as_eager() -> None:
    # mlp() is an nn.Sequential of built-in layers: dynamo skips every frame of it and of the
    # DDP wrapper, so compiling the wrapper in place would run eagerly
    out = spawn_multi_process(WORLD, "gloo", _ddp_compiled_run)
    for rank in range(WORLD):
        assert out[rank]["compiled_graphs"] >= 1 and out[rank]["eager_graphs"] == 0
        for a, b in zip(out[rank]["compiled"], out[rank]["eager"]):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def _test_phase_run() -> dict[str, Any]:
    from torchmetrics.classification import MulticlassAccuracy

    from torchkit import fit
    from torchkit.callbacks import MetricsLogger
    from torchkit.loggers import InMemoryLogger
    from torchkit.units import SupervisedUnit

    rank = dist.get_rank()
    torch.manual_seed(0)
    unit = SupervisedUnit(
        module=nn.Linear(8, 3),
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        metrics={"accuracy": MulticlassAccuracy(num_classes=3, average="micro")},
        device="cpu",
        strategy="ddp",
    )
    g = torch.Generator().manual_seed(50 + rank)
    data = [(torch.randn(4, 8, generator=g), torch.randint(0, 3, (4,), generator=g))] * 2
    test_data = [(torch.randn(6, 8, generator=g), torch.randint(0, 3, (6,), generator=g))]
    lg = InMemoryLogger()
    fit(unit, data, data, max_epochs=1, test_dataloader=test_data, callbacks=[MetricsLogger(lg)])
    with torch.no_grad():
        x, y = test_data[0]
        correct = int((unit.module(x).argmax(1) == y).sum())
    return {"accuracy": lg.log_buffer[2]["test/accuracy"], "correct": correct, "n": len(y)}


def test_ddp_test_phase_metrics_are_synced_across_ranks() -> None:
    out = spawn_multi_process(WORLD, "gloo", _test_phase_run)
    total = sum(out[r]["correct"] for r in range(WORLD)) / sum(out[r]["n"] for r in range(WORLD))
    assert any(out[r]["correct"] / out[r]["n"] != total for r in range(WORLD))  # not local
    for rank in range(WORLD):
        assert out[rank]["accuracy"] == pytest.approx(total)  # both ranks' test data
