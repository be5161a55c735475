"""Durations on 2 gloo ranks: global sample counts, summed user counts, and a wall-clock
budget decided by rank 0's clock alone, taken at the same step on every rank."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit import State, TrainUnit, train
from torchkit.callbacks import DistributedCheckpointSaver, Lambda
from torchkit.utils import get_global_rank, spawn_multi_process


@pytest.fixture(autouse=True, scope="module")
def _warm_optimizer_imports() -> None:
    # the first optimizer imports torch._dynamo (seconds): once in the parent, not per rank
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


class Unit(TrainUnit[torch.Tensor]):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)

    def train_step(self, state: State, data: torch.Tensor) -> None:
        self.net(data).pow(2).mean().backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.opt.zero_grad()


class RankTokens(Unit):
    def count_tokens(self, batch: torch.Tensor) -> int:
        return 3 if get_global_rank() == 0 else 1  # uneven: must be summed, not scaled


def _ranks(dirpath: str) -> dict[str, Any]:
    data = [torch.ones(2, 2)] * 8  # per-rank batch 2
    out: dict[str, Any] = {}
    unit = Unit()
    state = train(unit, data, max_duration="10sp")
    assert state.duration_tracker is not None
    out["sp"] = (unit.train_progress.num_steps_completed, state.duration_tracker.samples)
    unit = RankTokens()
    state = train(unit, data, max_duration="10tok")
    assert state.duration_tracker is not None
    out["tok"] = (unit.train_progress.num_steps_completed, state.duration_tracker.tokens)
    # only rank 0's clock moves (1,000 s a step); rank 1's stands still and never passes 1h
    now = [0.0]

    def install(state: State, unit: Any) -> None:
        assert state.duration_tracker is not None
        state.duration_tracker.clock = lambda: now[0]

    def tick(state: State, unit: Any) -> None:
        if get_global_rank() == 0:
            now[0] += 1000.0

    saver = DistributedCheckpointSaver(dirpath, save_every="30m", preemption_signals=())
    unit = Unit()
    clock = Lambda(on_train_start=install, on_train_step_start=tick)
    state = train(unit, data * 2, max_duration="1h", callbacks=[clock, saver])
    assert state.duration_tracker is not None
    out["sec"] = (unit.train_progress.num_steps_completed, state.duration_tracker.seconds)
    out["saved"] = [u.rsplit("/", 1)[1] for u in saver.retained_checkpoints]
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return spawn_multi_process(2, "gloo", _ranks, str(tmp_path_factory.mktemp("ddp") / "ckpt"))


@pytest.mark.distributed
def test_10sp_with_per_rank_batch_2_runs_3_steps_on_both_ranks(
    results: list[dict[str, Any]],
) -> None:
    assert [r["sp"] for r in results] == [(3, 12), (3, 12)]  # 4 global samples a step


@pytest.mark.distributed
def test_overridden_counts_are_summed_across_ranks(results: list[dict[str, Any]]) -> None:
    assert [r["tok"] for r in results] == [(3, 12), (3, 12)]  # 3 + 1 tokens a step


@pytest.mark.distributed
def test_rank_zero_clock_stops_and_saves_every_rank_at_the_same_step(
    results: list[dict[str, Any]],
) -> None:
    assert [r["sec"] for r in results] == [(4, 4000.0), (4, 4000.0)]
    assert (
        results[0]["saved"]
        == results[1]["saved"]
        == [
            "epoch_0_train_step_2",
            "epoch_0_train_step_4",
        ]
    )
