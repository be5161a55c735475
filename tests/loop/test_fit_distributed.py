"""fit on 2 gloo ranks with a DistributedSampler: disjoint shards, set_epoch, a joint stop."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from torchkit import EvalUnit, State, TrainUnit, fit
from torchkit.callbacks import Lambda
from torchkit.utils import get_global_rank, spawn_multi_process, sync_bool

N = 16  # samples; each rank gets 8 per epoch, 4 batches of 2


@pytest.fixture(autouse=True, scope="module")
def _warm_optimizer_imports() -> None:
    # The first optimizer imports torch._dynamo (seconds). Do it once in the parent so the
    # forked ranks inherit it instead of importing it in parallel on a 2-core machine.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


class RecordingDistributedSampler(DistributedSampler):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)
        super().set_epoch(epoch)


Batch = list[torch.Tensor]


class ShardUnit(TrainUnit[Batch], EvalUnit[Batch]):
    """Records the sample ids it trains and evaluates on, per epoch."""

    def __init__(self, *, ddp: bool) -> None:
        super().__init__()
        torch.manual_seed(get_global_rank())  # different init per rank: DDP must broadcast
        net = torch.nn.Linear(1, 1)
        self.net = DistributedDataParallel(net) if ddp else net
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.train_seen: list[list[int]] = []
        self.eval_seen: list[int] = []

    def on_train_epoch_start(self, state: State) -> None:
        self.train_seen.append([])

    def train_step(self, state: State, data: Batch) -> torch.Tensor:
        ids, x = data
        self.train_seen[-1].extend(ids.tolist())
        loss = (self.net(x) - 1.0).pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.opt.zero_grad()
        return loss.detach()

    def eval_step(self, state: State, data: Batch) -> torch.Tensor:
        ids, x = data
        self.eval_seen.extend(ids.tolist())
        return self.net(x).sum()


def _run_fit(ddp: bool, stop_at: int | None) -> dict[str, Any]:
    ids = torch.arange(N)
    ds = TensorDataset(ids, ids.float().unsqueeze(1) / N)
    train_sampler = RecordingDistributedSampler(ds, shuffle=True, seed=0)
    eval_sampler = RecordingDistributedSampler(ds, shuffle=False)
    unit = ShardUnit(ddp=ddp)
    rank = get_global_rank()
    callbacks = []
    if stop_at is not None:
        # only rank 0 wants to stop; the ranks agree through sync_bool and stop together
        def vote(state: State, u: Any) -> None:
            wants = rank == 0 and u.train_progress.num_steps_completed == stop_at
            if sync_bool(wants, coherence_mode="any"):
                state.stop()

        callbacks.append(Lambda(on_train_step_end=vote))
    fit(
        unit,
        DataLoader(ds, batch_size=2, sampler=train_sampler),
        DataLoader(ds, batch_size=4, sampler=eval_sampler),
        max_epochs=2,
        callbacks=callbacks,
    )
    return {
        "train_seen": unit.train_seen,
        "eval_seen": unit.eval_seen,
        "train_set_epoch": train_sampler.epochs,
        "eval_set_epoch": eval_sampler.epochs,
        "train_progress": unit.train_progress.state_dict(),
        "eval_progress": unit.eval_progress.state_dict(),
        "weights": [p.detach().clone() for p in unit.net.parameters()],
    }


@pytest.mark.distributed
@pytest.mark.parametrize("ddp", [False, True], ids=["plain", "ddp"])
def test_fit_with_distributed_sampler_on_two_ranks(ddp: bool) -> None:
    r0, r1 = spawn_multi_process(2, "gloo", _run_fit, ddp, None)
    for epoch in range(2):
        a, b = r0["train_seen"][epoch], r1["train_seen"][epoch]
        assert len(a) == len(b) == N // 2
        assert set(a).isdisjoint(b)  # different shards
        assert sorted(a + b) == list(range(N))  # together, the whole dataset
    # set_epoch reshuffles: epoch 1's order differs from epoch 0's
    assert r0["train_seen"][0] + r1["train_seen"][0] != r0["train_seen"][1] + r1["train_seen"][1]
    for r in (r0, r1):
        assert r["train_set_epoch"] == [0, 1]
        assert r["eval_set_epoch"] == [0, 1]
    assert set(r0["eval_seen"]).isdisjoint(r1["eval_seen"])
    assert sorted(set(r0["eval_seen"]) | set(r1["eval_seen"])) == list(range(N))
    # both ranks stop together with the same counters
    assert r0["train_progress"] == r1["train_progress"]
    assert r0["train_progress"]["num_steps_completed"] == 8
    assert r0["train_progress"]["num_epochs_completed"] == 2
    assert r0["eval_progress"] == r1["eval_progress"]
    assert r0["eval_progress"]["num_epochs_completed"] == 2
    same = all(torch.equal(p, q) for p, q in zip(r0["weights"], r1["weights"]))
    # DDP averages gradients, so its replicas stay identical; plain modules drift apart
    assert same is ddp


@pytest.mark.distributed
def test_ranks_agree_on_stop() -> None:
    r0, r1 = spawn_multi_process(2, "gloo", _run_fit, True, 3)
    assert r0["train_progress"] == r1["train_progress"]
    assert r0["train_progress"]["num_steps_completed"] == 3
    assert r0["train_progress"]["num_epochs_completed"] == 1  # the stopped epoch still closes
    # the epoch-end eval still runs after the stop, with 0 steps, on both ranks (TNT)
    assert r0["eval_progress"] == r1["eval_progress"]
    assert r0["eval_progress"]["num_epochs_completed"] == 1
    assert r0["eval_progress"]["num_steps_completed"] == 0
    assert r0["train_set_epoch"] == r1["train_set_epoch"] == [0]
