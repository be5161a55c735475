"""Two gloo ranks: seeded draws agree with no collective; ``run_stages`` runs and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from torchkit.stages import Stage, run_stages
from torchkit.testing import DummyTrainUnit, generate_random_dataloader
from torchkit.utils import get_global_rank, spawn_multi_process
from torchkit.utils.data import MultiDataLoader, RandomizedBatchSampler


@pytest.fixture(autouse=True, scope="module")
def _warm_optimizer_imports() -> None:
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # see test_fit_distributed


def _draws() -> list[str]:
    rank = get_global_rank()

    def shard(n: int) -> DataLoader[int]:
        return DataLoader(range(n), batch_size=2, sampler=DistributedSampler(range(n), 2, rank))

    strategy = RandomizedBatchSampler(weights={"a": 1.0, "b": 2.0}, seed=11)
    mdl = MultiDataLoader({"a": shard(8), "b": shard(16)}, strategy)
    return [name for _ in range(3) for batch in mdl for name in batch]


@pytest.mark.distributed
def test_randomized_draws_agree_across_ranks() -> None:
    r0, r1 = spawn_multi_process(2, "gloo", _draws)
    assert r0 == r1 and len(r0) == 3 * (2 + 4)  # every batch of both shards, each epoch


def _stages(dirpath: str) -> list[int]:
    dl = generate_random_dataloader(8, 2, 2)
    stages = [Stage("a", lambda prev: DummyTrainUnit(2), dl, max_epochs=1),
              Stage("b", lambda prev: prev, dl, max_epochs=1)]  # fmt: skip
    first = run_stages(stages, dirpath=dirpath)
    again = run_stages(stages, dirpath=dirpath)
    return [r.unit.train_progress.num_steps_completed for r in first + again]


@pytest.mark.distributed
def test_run_stages_on_two_ranks(tmp_path: Path) -> None:
    r0, r1 = spawn_multi_process(2, "gloo", _stages, str(tmp_path))
    assert r0 == r1 == [8, 8, 8, 8]
    manifest = json.loads((tmp_path / "stages.json").read_text())
    assert [e["status"] for e in manifest["stages"]] == ["done", "done"]
