"""``MultiDataLoader`` inside ``train``: set_epoch, interleaved pipelines, checkpoint resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader

from torchkit import State, TrainUnit, train
from torchkit.callbacks import DistributedCheckpointSaver
from torchkit.utils.data import AllDatasetBatches, MultiDataLoader, RoundRobin, StoppingMechanism


class RecordingSampler(DistributedSampler):  # type: ignore[type-arg]
    def __init__(self, n: int) -> None:
        super().__init__(range(n), num_replicas=2, rank=0, shuffle=True, seed=0)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)
        super().set_epoch(epoch)


class Recorder(TrainUnit[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str, list[int]]] = []

    def train_step(self, state: State, data: dict[str, torch.Tensor]) -> None:
        epoch = self.train_progress.num_epochs_completed
        self.seen += [(epoch, k, v.tolist()) for k, v in sorted(data.items())]


def test_train_calls_set_epoch_on_every_child_sampler() -> None:
    samplers = {"a": RecordingSampler(16), "b": RecordingSampler(16)}
    loaders = {k: DataLoader(range(16), batch_size=4, sampler=s) for k, s in samplers.items()}
    unit = Recorder()
    train(unit, MultiDataLoader(loaders, RoundRobin()), max_epochs=2)
    assert samplers["a"].epochs == [0, 1] and samplers["b"].epochs == [0, 1]
    for name in ("a", "b"):
        per_epoch = [
            [x for e, k, b in unit.seen if e == ep and k == name for x in b] for ep in (0, 1)
        ]
        assert per_epoch[0] != per_epoch[1]  # reshuffled: DDP runs see a new order each epoch


class TwoOptimizerUnit(TrainUnit[dict[str, torch.Tensor]]):
    """GAN-style interleaved pipelines: each loader's batch steps its own optimizer."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = torch.nn.Linear(2, 1)
        self.disc = torch.nn.Linear(2, 1)
        self.opt_a = torch.optim.SGD(self.gen.parameters(), lr=0.1)
        self.opt_b = torch.optim.SGD(self.disc.parameters(), lr=0.1)
        self.optimizer_steps = {"a": 0, "b": 0}

    def train_step(self, state: State, data: dict[str, torch.Tensor]) -> None:
        pipelines = {"a": (self.gen, self.opt_a), "b": (self.disc, self.opt_b)}
        for name, batch in data.items():
            module, opt = pipelines[name]
            module(batch).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            self.optimizer_steps[name] += 1


@pytest.mark.parametrize(
    ("mechanism", "steps_a"),
    [
        (StoppingMechanism.ALL_DATASETS_EXHAUSTED, 3),
        (StoppingMechanism.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED, 5),
    ],
)
def test_interleaved_pipelines_step_each_optimizer(
    mechanism: StoppingMechanism, steps_a: int
) -> None:
    loaders = {
        "a": DataLoader(torch.randn(6, 2), batch_size=2),  # 3 batches
        "b": DataLoader(torch.randn(10, 2), batch_size=2),  # 5 batches
    }
    unit = TwoOptimizerUnit()
    train(unit, MultiDataLoader(loaders, AllDatasetBatches(mechanism)), max_epochs=1)
    assert unit.train_progress.num_steps_completed == 5
    assert unit.optimizer_steps == {"a": steps_a, "b": 5}


class DropoutUnit(Recorder):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Dropout(0.5))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def train_step(self, state: State, data: dict[str, torch.Tensor]) -> None:
        super().train_step(state, data)
        for v in data.values():
            self.net(v.float().unsqueeze(1)).sum().backward()
        self.opt.step()
        self.opt.zero_grad()


def _stateful_mdl() -> MultiDataLoader:
    def make(n: int, offset: int) -> StatefulDataLoader:
        return StatefulDataLoader(torch.arange(n) + offset, batch_size=2, shuffle=True)

    torch.manual_seed(0)  # a re-run of the script builds its loaders the same way
    return MultiDataLoader({"a": make(6, 0), "b": make(10, 100)}, RoundRobin())


def _run(ckpt: str, max_steps: int, restore: bool) -> DropoutUnit:
    unit, mdl = DropoutUnit(), _stateful_mdl()
    if restore:
        assert DistributedCheckpointSaver.restore_from_latest(ckpt, unit, train_dataloader=mdl)
    else:
        torch.manual_seed(7)
    saver = DistributedCheckpointSaver(ckpt, save_every_n_train_steps=1)
    train(unit, mdl, max_steps=max_steps, callbacks=[saver])
    return unit


@pytest.mark.parametrize("stop_at", [3, 8, 11])  # mid-epoch, at the epoch end, mid-epoch 2
def test_checkpointer_resumes_a_multi_dataloader_exactly(tmp_path: Path, stop_at: int) -> None:
    full = _run(str(tmp_path / "full"), 14, restore=False)
    first = _run(str(tmp_path / "cut"), stop_at, restore=False)
    resumed = _run(str(tmp_path / "cut"), 14, restore=True)
    assert first.seen + resumed.seen == full.seen
    for p, q in zip(resumed.net.parameters(), full.net.parameters()):
        assert torch.equal(p, q)


def test_dataloader_state_is_captured_before_the_prefetch_read_ahead() -> None:
    from torchkit.units._prefetch import BatchPrefetcher

    mdl = _stateful_mdl()
    prefetcher = BatchPrefetcher(None, torch.device("cpu"), enabled=True, loader_of=lambda s: mdl)
    it: Any = iter(mdl)
    prefetcher.fetch(None, it)  # hands out batch 1, has read batch 2 ahead
    held = prefetcher.state_for_checkpoint()
    assert held is not None and held["iterator_state"]["yielded"] == {"a": 1, "b": 0}
    assert mdl.state_dict()["iterator_state"]["yielded"] == {"a": 1, "b": 1}
