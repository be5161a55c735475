"""DistributedCheckpointSaver: async saves, and FSDP2 across 2 gloo ranks."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.checkpoint.test_storage_and_restore import FailingFileSystem
from tests.checkpoint.units import FitUnit, batches, names
from torchkit import train
from torchkit.callbacks import DistributedCheckpointSaver, Lambda
from torchkit.checkpoint import CheckpointSaveError, get_latest_checkpoint_path
from torchkit.utils import spawn_multi_process


def test_async_save_matches_sync_and_evicts_after_commit(tmp_path: Path) -> None:
    results = {}
    for mode in (False, True):
        unit = FitUnit()
        saver = DistributedCheckpointSaver(
            str(tmp_path / str(mode)), save_every_n_train_steps=2, keep_last_n_checkpoints=1,
            async_checkpoint=mode,
        )  # fmt: skip
        train(unit, batches(4), max_steps=6, callbacks=[saver])
        assert names(saver.retained_checkpoints) == ["epoch_1_train_step_6"]
        assert names(unit.saved_ids) == [
            "epoch_0_train_step_2",
            "epoch_0_train_step_4",
            "epoch_1_train_step_6",
        ]
        fresh = FitUnit(seed=8)
        DistributedCheckpointSaver.restore(saver.retained_checkpoints[0], fresh)
        results[mode] = [p.clone() for p in fresh.net.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(results[False], results[True]))


def test_async_snapshot_is_isolated_from_later_steps(tmp_path: Path) -> None:
    unit = FitUnit()
    saver = DistributedCheckpointSaver(
        str(tmp_path), save_every_n_train_steps=2, async_checkpoint=True
    )
    at_two: list[torch.Tensor] = []

    def keep(state: Any, u: Any) -> None:
        if u.train_progress.num_steps_completed == 2:
            at_two.extend(p.detach().clone() for p in u.net.parameters())

    record = Lambda(on_train_step_end=keep)
    train(unit, batches(4), max_steps=3, callbacks=[saver, record])
    fresh = FitUnit(seed=2)
    DistributedCheckpointSaver.restore(str(tmp_path / "epoch_0_train_step_2"), fresh)
    assert all(torch.equal(a, b) for a, b in zip(at_two, fresh.net.parameters()))


def test_async_failure_surfaces_and_keeps_older_checkpoints() -> None:
    root = f"failingfs://af-{uuid.uuid4().hex}"
    saver = DistributedCheckpointSaver(root, save_every_n_train_steps=2, async_checkpoint=True)

    def arm(state: Any, u: Any) -> None:
        # armed after the step-4 save started, which first awaited (committed) step 2's
        FailingFileSystem.armed = u.train_progress.num_steps_completed >= 5

    try:
        with pytest.raises(CheckpointSaveError, match="No space left"):
            train(
                FitUnit(), batches(4), max_steps=8, callbacks=[Lambda(on_train_step_end=arm), saver]
            )
    finally:
        FailingFileSystem.armed = False
    latest = get_latest_checkpoint_path(root)
    assert latest is not None
    assert latest.endswith(
        ("epoch_0_train_step_2", "epoch_0_train_step_4")
    )  # 4: if it won the race


def _fsdp2_save_restore(dirpath: str) -> bool:
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import fully_shard  # type: ignore[no-redef]
    from torch.distributed.tensor import DTensor

    def make(seed: int) -> FitUnit:
        unit = FitUnit(hidden=8, seed=seed)
        fully_shard(unit.net[0])
        fully_shard(unit.net)
        unit.opt = torch.optim.AdamW(unit.net.parameters(), lr=1e-2)
        unit.sched = torch.optim.lr_scheduler.LambdaLR(unit.opt, lambda s: 0.95**s)
        return unit

    def full(unit: FitUnit) -> dict[str, torch.Tensor]:
        return {
            k: (v.full_tensor() if isinstance(v, DTensor) else v).clone()
            for k, v in unit.net.state_dict().items()
        }

    def full_opt(unit: FitUnit) -> list[torch.Tensor]:
        return [
            v.full_tensor() if isinstance(v, DTensor) else v
            for st in unit.opt.state.values()
            for v in st.values()
        ]

    data = batches(4, seed=torch.distributed.get_rank())
    unit = make(0)
    saver = DistributedCheckpointSaver(dirpath, save_every_n_train_steps=2, preemption_signals=())
    train(unit, data, max_steps=2, callbacks=[saver])
    fresh = make(1)
    assert DistributedCheckpointSaver.restore_from_latest(dirpath, fresh)
    a, b = full(unit), full(fresh)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(x, y) for x, y in zip(full_opt(unit), full_opt(fresh)))
    assert fresh.sched.last_epoch == unit.sched.last_epoch == 2
    rng = torch.get_rng_state()  # as restored: the state after step 2
    train(unit, data, max_steps=4, callbacks=[])
    torch.set_rng_state(rng)
    train(fresh, data, max_steps=4, callbacks=[])
    a, b = full(unit), full(fresh)
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_fsdp2_two_ranks_save_restore_and_continue_identically(tmp_path: Path) -> None:
    assert spawn_multi_process(2, "gloo", _fsdp2_save_restore, str(tmp_path)) == [True, True]
