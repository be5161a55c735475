"""Rank helpers that work with or without a process group, small collectives, and a launcher."""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_mod
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from torchkit.utils import env

T = TypeVar("T")

DEFAULT_SPAWN_TIMEOUT_S = 600.0


def _pg_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_global_rank() -> int:
    """This process's rank: from the process group, else ``RANK``, else 0.

    Example:
        >>> get_global_rank()
        0
    """
    return dist.get_rank() if _pg_ready() else env.env_rank()


def get_local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``, else 0)."""
    return env.env_local_rank()


def get_world_size() -> int:
    """Number of processes: from the process group, else ``WORLD_SIZE``, else 1.

    Example:
        >>> get_world_size()
        1
    """
    return dist.get_world_size() if _pg_ready() else env.env_world_size()


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if _pg_ready():
        dist.barrier()


def _collective_device() -> torch.device:
    if _pg_ready() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sync_bool(val: bool, pg: Any = None, coherence_mode: str | int | float = "any") -> bool:
    """Agree on a boolean across the ranks of ``pg`` (TNT's signature).

    Args:
        val: this rank's vote.
        pg: the process group (``None``: the default group).
        coherence_mode: ``"any"`` (true if any rank votes true), ``"all"``, ``"rank_zero"``
            (the group's first rank decides), an ``int`` (true if at least that many ranks
            vote true) or a ``float`` in [0, 1] (at least that fraction of the ranks).

    Raises:
        ValueError: an unknown ``coherence_mode`` or one out of range.
        TypeError: ``coherence_mode`` of another type.

    Example:
        >>> sync_bool(True), sync_bool(False, coherence_mode=1)
        (True, False)
    """
    _check_coherence(coherence_mode)
    if not _pg_ready() or dist.get_world_size(pg) == 1:
        return _decide(int(bool(val)), 1, coherence_mode)
    # note: CPU-GPU sync point (only called at decision points, never per step by default)
    flag = torch.tensor([1 if val else 0], dtype=torch.int32, device=_collective_device())
    if coherence_mode == "rank_zero":
        src = 0 if pg is None else dist.get_global_rank(pg, 0)
        dist.broadcast(flag, src=src, group=pg)
        return bool(flag.item())
    dist.all_reduce(flag, op=dist.ReduceOp.SUM, group=pg)
    return _decide(int(flag.item()), dist.get_world_size(pg), coherence_mode)


def _check_coherence(mode: Any) -> None:
    if isinstance(mode, str):
        if mode not in ("any", "all", "rank_zero"):
            raise ValueError(
                f"coherence_mode={mode!r} is invalid: expected 'any', 'all' or 'rank_zero' "
                "(or an int count / a float fraction of ranks)."
            )
        return
    if isinstance(mode, bool) or not isinstance(mode, (int, float)):
        raise TypeError(
            f"coherence_mode={mode!r} is invalid: expected 'any', 'all', 'rank_zero', an int "
            "or a float."
        )
    if mode < 0 or (isinstance(mode, float) and mode > 1):
        raise ValueError(
            f"coherence_mode={mode!r} is invalid: expected an int >= 0 or a float in [0, 1]."
        )


def _decide(votes: int, world: int, mode: str | int | float) -> bool:
    if mode in ("any", "rank_zero"):
        return votes > 0
    if mode == "all":
        return votes == world
    if isinstance(mode, float):
        return votes / world >= mode
    return votes >= int(mode)


def all_gather_tensors(result: torch.Tensor, group: Any = None) -> list[torch.Tensor]:
    """Gather ``result`` from every rank of ``group`` (``None``: the default group); the
    first dimension may differ between ranks (TNT's signature).

    Example:
        >>> import torch
        >>> [t.tolist() for t in all_gather_tensors(torch.tensor([1, 2]))]
        [[1, 2]]
    """
    tensor = result
    if not _pg_ready() or dist.get_world_size(group) == 1:
        return [tensor]
    world = dist.get_world_size(group)
    local_len = torch.tensor([tensor.shape[0] if tensor.dim() > 0 else 1], device=tensor.device)
    lens = [torch.zeros_like(local_len) for _ in range(world)]
    dist.all_gather(lens, local_len, group=group)
    sizes = [int(n.item()) for n in lens]
    flat = tensor.reshape(-1) if tensor.dim() == 0 else tensor
    max_len = max(sizes)
    if flat.shape[0] < max_len:
        pad = flat.new_zeros((max_len - flat.shape[0], *flat.shape[1:]))
        flat = torch.cat([flat, pad])
    out = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(out, flat.contiguous(), group=group)
    parts = [o[:n] for o, n in zip(out, sizes)]
    if tensor.dim() == 0:
        return [r.reshape(()) for r in parts]
    return parts


def get_free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_multi_process(
    world_size: int, backend: str, method: Callable[..., T], *args: Any, **kwargs: Any
) -> list[T]:
    """Run ``method(*args, **kwargs)`` on ``world_size`` processes joined by a process group.

    The processes rendezvous on 127.0.0.1, each with ``RANK``/``WORLD_SIZE`` set, and the
    default process group initialised with ``backend`` before ``method`` runs and destroyed
    after. Processes are forked when CUDA is not initialised (about 4x faster), else spawned;
    forked ranks run with one intra-op thread, since the OpenMP pool they inherit is dead.

    Args:
        world_size: number of processes (>= 1).
        backend: process-group backend, e.g. ``"gloo"``.
        method: the function to run on every rank; its return value must be picklable.
        *args: positional arguments for ``method``.
        **kwargs: keyword arguments for ``method``.

    Returns:
        The return values, indexed by rank.

    Raises:
        RuntimeError: a rank raised (the message includes its traceback) or died.
        TimeoutError: the ranks did not finish within ``DEFAULT_SPAWN_TIMEOUT_S`` seconds.

    Example:
        >>> from torchkit.utils import get_global_rank
        >>> spawn_multi_process(2, "gloo", get_global_rank)
        [0, 1]
    """
    return launch_processes(world_size, backend, method, args, kwargs)


def launch_processes(
    world_size: int,
    backend: str,
    method: Callable[..., T],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_SPAWN_TIMEOUT_S,
    start_method: str | None = None,
) -> list[T]:
    """``spawn_multi_process`` with an explicit timeout and start method."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(
            f"world_size={world_size!r} is invalid: expected an int >= 1. Use 2 for a pair of "
            "CPU processes on gloo."
        )
    if start_method is None:
        is_init: Any = torch.cuda.is_initialized
        cuda_live = torch.cuda.is_available() and bool(is_init())
        start_method = "spawn" if cuda_live else "fork"
    ctx: Any = multiprocessing.get_context(start_method)
    results: queue_mod.Queue[tuple[int, bool, bytes]] = ctx.Queue()
    port = get_free_port()
    procs = [
        ctx.Process(
            target=_child,
            args=(
                rank,
                world_size,
                backend,
                port,
                method,
                args,
                kwargs or {},
                results,
                start_method == "fork",
            ),
            daemon=False,
        )
        for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    try:
        return _collect(procs, results, world_size, timeout_s)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=5)


def _collect(
    procs: list[Any], results: queue_mod.Queue[tuple[int, bool, bytes]], world: int, timeout: float
) -> list[Any]:
    out: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while len(out) < world:
        try:
            rank, ok, payload = results.get(timeout=0.05)
        except queue_mod.Empty:
            dead = [
                i
                for i, p in enumerate(procs)
                if not p.is_alive() and p.exitcode != 0 and i not in out
            ]
            if dead:
                # give a failing rank's message a moment to arrive before reporting the exit
                time.sleep(0.2)
                if results.empty():
                    codes = {i: procs[i].exitcode for i in dead}
                    raise RuntimeError(
                        f"spawn_multi_process: rank(s) {dead} died without a result "
                        f"(exit codes {codes})."
                    ) from None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"spawn_multi_process: ranks did not finish within {timeout:.0f}s; "
                    f"finished ranks: {sorted(out)}."
                ) from None
            continue
        if not ok:
            raise RuntimeError(f"spawn_multi_process: rank {rank} raised:\n{payload.decode()}")
        out[rank] = pickle.loads(payload)
    return [out[r] for r in range(world)]


def _child(
    rank: int,
    world_size: int,
    backend: str,
    port: int,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    results: Any,
    forked: bool,
) -> None:
    env.set_process_group_env(
        rank=rank, world_size=world_size, master_addr="127.0.0.1", master_port=port
    )
    if forked:
        # A forked child inherits the parent's OpenMP thread pool without its threads: the
        # first parallel op would wait on them forever once the parent has run one. With a
        # single intra-op thread no parallel region is entered.
        torch.set_num_threads(1)
    try:
        dist.init_process_group(
            backend=backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
        )
        try:
            value = method(*args, **kwargs)
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
        results.put((rank, True, pickle.dumps(value)))
    except BaseException as exc:  # report any failure, including KeyboardInterrupt
        text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        results.put((rank, False, text.encode()))
    finally:
        results.close()
        results.join_thread()
