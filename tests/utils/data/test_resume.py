"""Exact resume of ``MultiDataLoader`` at every batch, with shuffling StatefulDataLoaders."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from torchkit.utils.data import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    MultiDataLoader,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)

SM = StoppingMechanism
EPOCHS = 2

STRATEGIES: dict[str, DataIterationStrategy] = {
    "rr_all": RoundRobin(),
    "rr_smallest": RoundRobin(SM.SMALLEST_DATASET_EXHAUSTED, iteration_order=["b", "a"]),
    "adb_all": AllDatasetBatches(),
    "adb_smallest": AllDatasetBatches(SM.SMALLEST_DATASET_EXHAUSTED),
    "adb_restart": AllDatasetBatches(SM.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED),
    "rbs_all": RandomizedBatchSampler(weights={"a": 1.0, "b": 2.0}, seed=3),
    "rbs_smallest": RandomizedBatchSampler(stopping_mechanism=SM.SMALLEST_DATASET_EXHAUSTED),
    "rbs_restart": RandomizedBatchSampler(
        stopping_mechanism=SM.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED
    ),
    "in_order": InOrder(["b", "a", "b"]),
}  # fmt: skip


def _loaders(own_generator: bool) -> dict[str, Any]:
    def make(n: int, seed: int) -> StatefulDataLoader:
        gen = torch.Generator().manual_seed(seed) if own_generator else None
        return StatefulDataLoader(torch.arange(n) + 100 * seed, batch_size=2, shuffle=True,
                                  generator=gen)  # fmt: skip

    return {"a": make(4, 1), "b": make(10, 2)}  # 2 and 5 batches


class Run:
    """Drives a MultiDataLoader epoch by epoch as the loop does, recording batches."""

    def __init__(self, mdl: MultiDataLoader, epoch: int = 0, resumed: bool = False) -> None:
        self.mdl, self.epoch = mdl, epoch
        if resumed:  # the loop keeps a resumed epoch's iter() from moving the global RNG
            rng = torch.get_rng_state()
            self.it = iter(mdl)
            torch.set_rng_state(rng)
        else:
            self.it = iter(mdl)

    def take(self, k: int | None) -> list[tuple[int, str, torch.Tensor]]:
        out: list[tuple[int, str, torch.Tensor]] = []
        while (k is None or len(out) < k) and self.epoch < EPOCHS:
            try:
                batch = next(self.it)
            except StopIteration:
                self.epoch += 1
                if self.epoch < EPOCHS:
                    self.mdl.set_epoch(self.epoch)
                    self.it = iter(self.mdl)
                continue
            out += [(self.epoch, name, t) for name, t in sorted(batch.items())]
        return out


def _same(x: list[tuple[int, str, torch.Tensor]], y: list[tuple[int, str, torch.Tensor]]) -> bool:
    return len(x) == len(y) and all(
        a[:2] == b[:2] and torch.equal(a[2], b[2]) for a, b in zip(x, y)
    )


@pytest.mark.parametrize("own_generator", [True, False], ids=["own_gen", "global_rng"])
@pytest.mark.parametrize("key", list(STRATEGIES))
def test_resume_at_every_step_gives_the_uninterrupted_tail(key: str, own_generator: bool) -> None:
    strategy = STRATEGIES[key]
    torch.manual_seed(0)
    full = Run(MultiDataLoader(_loaders(own_generator), strategy)).take(None)
    n_steps = 0
    torch.manual_seed(0)
    probe = Run(MultiDataLoader(_loaders(own_generator), strategy))
    while probe.take(1):
        n_steps += 1
    for k in range(n_steps):
        torch.manual_seed(0)
        first = Run(MultiDataLoader(_loaders(own_generator), strategy))
        head = first.take(k)
        # what a checkpoint holds: the loader state, the epoch, the global RNG
        blob = pickle.dumps((first.mdl.state_dict(), first.epoch, torch.get_rng_state()))
        # a re-run of the script: fresh loaders built as before, then a scrambled global RNG
        # that only the checkpoint's RNG state puts right
        state, epoch, rng = pickle.loads(blob)
        torch.manual_seed(0)
        resumed = MultiDataLoader(_loaders(own_generator), strategy)
        torch.manual_seed(1234)
        resumed.load_state_dict(state)
        torch.set_rng_state(rng)
        resumed.set_epoch(epoch)
        tail = Run(resumed, epoch, resumed=True).take(None)
        assert _same(head + tail, full), f"{key}: resume after batch {k} diverged"


def test_resume_reads_no_child_that_is_finished() -> None:
    mdl = MultiDataLoader(_loaders(True), RoundRobin())
    it = iter(mdl)
    for _ in range(5):  # a0 b0 a1 b1 (a ends at its next turn) b2
        next(it)
    state = mdl.state_dict()
    assert state["iterator_state"]["exhausted"] == ["a"]
    assert state["iterator_state"]["active"] == ["b"]


def test_renamed_loader_on_restore_raises_value_error_naming_it() -> None:
    mdl = MultiDataLoader(_loaders(True), RoundRobin())
    it = iter(mdl)
    next(it)
    state = mdl.state_dict()
    renamed = {"a": DataLoader(range(4)), "z": DataLoader(range(4))}
    other = MultiDataLoader(renamed, RoundRobin())
    box: list[BaseException] = []

    def restore() -> None:
        try:
            other.load_state_dict(state)
        except BaseException as exc:
            box.append(exc)

    worker = threading.Thread(target=restore, daemon=True)
    worker.start()
    worker.join(timeout=1.0)  # TNT's restore loops forever on `name in itertools.cycle(...)`
    assert not worker.is_alive(), "load_state_dict hung"
    assert len(box) == 1 and isinstance(box[0], ValueError)
    assert "'b'" in str(box[0]) and "'z'" in str(box[0])


@pytest.mark.parametrize(
    ("names", "match"),
    [(["a"], r"\['b'\] are not among"), (["a", "b", "c"], r"\['c'\] are not in")],
)
def test_missing_or_extra_loader_on_restore_raises(names: list[str], match: str) -> None:
    state = MultiDataLoader(_loaders(True), RoundRobin()).state_dict()
    other = MultiDataLoader({n: DataLoader(range(4)) for n in names}, RoundRobin())
    with pytest.raises(ValueError, match=match):
        other.load_state_dict(state)


def test_restore_with_another_strategy_raises() -> None:
    state = MultiDataLoader(_loaders(True), RoundRobin()).state_dict()
    with pytest.raises(ValueError, match="saved with strategy 'RoundRobin'"):
        MultiDataLoader(_loaders(True), InOrder()).load_state_dict(state)


def test_restore_of_a_foreign_state_raises() -> None:
    with pytest.raises(ValueError, match=r"expected a dict from MultiDataLoader\.state_dict"):
        MultiDataLoader(_loaders(True), InOrder()).load_state_dict({"a": {}})
