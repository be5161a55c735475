"""Rank helpers without a process group, collectives and spawn_multi_process on 2 gloo ranks."""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.distributed as dist

from torchkit.utils import (
    all_gather_tensors,
    barrier,
    get_global_rank,
    get_local_rank,
    get_world_size,
    launch_processes,
    spawn_multi_process,
    sync_bool,
)

# -- without a process group ------------------------------------------------------------------


def test_rank_helpers_without_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert not dist.is_initialized()
    assert (get_global_rank(), get_local_rank(), get_world_size()) == (0, 0, 1)


def test_rank_helpers_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (get_global_rank(), get_local_rank(), get_world_size()) == (2, 0, 4)


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("mode", ["any", "all", "rank_zero"])
def test_collectives_are_identity_without_process_group(value: bool, mode: str) -> None:
    assert sync_bool(value, coherence_mode=mode) is value
    t = torch.arange(3)
    gathered = all_gather_tensors(t)
    assert len(gathered) == 1 and torch.equal(gathered[0], t)
    barrier()  # a no-op


def test_sync_bool_bad_mode() -> None:
    with pytest.raises(ValueError, match=r"coherence_mode='most' is invalid: expected 'any'"):
        sync_bool(True, coherence_mode="most")


@pytest.mark.parametrize("bad", [0, -1, True, 1.0])
def test_spawn_rejects_bad_world_size(bad: object) -> None:
    with pytest.raises(ValueError, match=r"world_size=.* is invalid: expected an int >= 1"):
        spawn_multi_process(bad, "gloo", get_global_rank)  # type: ignore[arg-type]


# -- on two gloo ranks (module-level functions for the child processes) -------------------------


def _rank_info(offset: int, *, scale: int = 1) -> tuple[int, int, int, str]:
    return (
        (dist.get_rank() + offset) * scale,
        get_global_rank(),
        get_world_size(),
        os.environ["MASTER_ADDR"],
    )


def _collectives() -> dict[str, object]:
    rank = get_global_rank()
    out: dict[str, object] = {
        "any": sync_bool(rank == 1, coherence_mode="any"),
        "all": sync_bool(rank == 1, coherence_mode="all"),
        "all_true": sync_bool(True, coherence_mode="all"),
        "rank_zero": sync_bool(rank == 0, coherence_mode="rank_zero"),
        "none": sync_bool(False),
    }
    # uneven first dimensions: rank 0 has 1 row, rank 1 has 3 rows
    local = torch.full((rank * 2 + 1, 2), float(rank))
    out["gathered"] = [t.tolist() for t in all_gather_tensors(local)]
    out["scalar"] = [t.item() for t in all_gather_tensors(torch.tensor(rank + 10))]
    out["empty"] = [t.shape[0] for t in all_gather_tensors(torch.zeros(rank, 1))]
    # barrier: rank 1 waits before writing its timestamp; rank 0 must pass the barrier after it
    if rank == 1:
        time.sleep(0.3)
    before = time.monotonic()
    barrier()
    out["waited"] = time.monotonic() - before
    return out


def _raise_on_rank_one() -> int:
    if get_global_rank() == 1:
        raise ValueError("rank one is broken: bad shard 17")
    return 0


@pytest.mark.distributed
def test_spawn_returns_per_rank_results() -> None:
    results = spawn_multi_process(2, "gloo", _rank_info, 5, scale=2)
    assert results == [(10, 0, 2, "127.0.0.1"), (12, 1, 2, "127.0.0.1")]
    assert not dist.is_initialized()  # the parent never joins the group


@pytest.mark.distributed
def test_collectives_on_two_ranks() -> None:
    r0, r1 = spawn_multi_process(2, "gloo", _collectives)
    for r in (r0, r1):
        assert r["any"] is True
        assert r["all"] is False
        assert r["all_true"] is True
        assert r["rank_zero"] is True  # rank 0's vote, broadcast
        assert r["none"] is False
        assert r["gathered"] == [[[0.0, 0.0]], [[1.0, 1.0]] * 3]
        assert r["scalar"] == [10, 11]
        assert r["empty"] == [0, 1]
    assert r0["waited"] > 0.2  # type: ignore[operator]  # rank 0 waited for rank 1 at the barrier


@pytest.mark.distributed
def test_spawn_surfaces_a_rank_exception_with_its_message() -> None:
    with pytest.raises(
        RuntimeError, match=r"rank 1 raised:\nValueError: rank one is broken: bad shard 17"
    ):
        spawn_multi_process(2, "gloo", _raise_on_rank_one)


def _sleep_forever() -> None:
    time.sleep(60)


@pytest.mark.distributed
def test_launch_processes_times_out() -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within"):
        launch_processes(2, "gloo", _sleep_forever, timeout_s=2.0)
    assert time.monotonic() - start < 20


def _hard_exit() -> None:
    os._exit(3)


@pytest.mark.distributed
def test_a_rank_that_dies_is_reported() -> None:
    with pytest.raises(RuntimeError, match=r"died without a result.*exit codes"):
        launch_processes(1, "gloo", _hard_exit, timeout_s=30.0)


def _matmul_sum() -> float:
    x = torch.ones(256, 256)
    return float((x @ x).sum())


@pytest.mark.distributed
def test_forked_ranks_do_not_hang_after_the_parent_used_openmp() -> None:
    # A forked child inherits a dead OpenMP pool; the launcher must keep it out of parallel ops.
    a = torch.randn(512, 512)
    (a @ a).sum()
    out = launch_processes(2, "gloo", _matmul_sum, timeout_s=60, start_method="fork")
    assert out == [256.0**3, 256.0**3]
