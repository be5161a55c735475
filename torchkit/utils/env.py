"""The one module that reads environment variables (rank, world size, device) and sets up a run."""

from __future__ import annotations

import os

import torch


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"Environment variable {name}={value!r} is invalid: expected an integer. "
            "Unset it or launch with torchrun, which sets it correctly."
        ) from None


def env_rank() -> int:
    """Global rank from ``RANK`` (0 when unset)."""
    return _env_int("RANK", 0)


def env_local_rank() -> int:
    """Local rank from ``LOCAL_RANK`` (0 when unset)."""
    return _env_int("LOCAL_RANK", 0)


def env_world_size() -> int:
    """World size from ``WORLD_SIZE`` (1 when unset)."""
    return _env_int("WORLD_SIZE", 1)


def is_torchrun_env() -> bool:
    """True when the variables torchrun sets for a process group are present."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def get_device_from_env() -> torch.device:
    """The device this process should use: ``cuda:LOCAL_RANK`` when CUDA exists, else ``cpu``.

    Example:
        >>> get_device_from_env().type in {"cpu", "cuda", "mps"}
        True
    """
    if torch.cuda.is_available():
        return torch.device("cuda", env_local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


def init_from_env(
    *, device_type: str | None = None, pg_backend: str | None = None, pg_timeout_s: float = 1800.0
) -> torch.device:
    """Set up the device and, under torchrun, the default process group.

    Args:
        device_type: ``"cpu"`` or ``"cuda"``; inferred from the machine when ``None``.
        pg_backend: process-group backend; ``nccl`` on CUDA and ``gloo`` otherwise when ``None``.
        pg_timeout_s: collective timeout in seconds.

    Returns:
        The device to use in this process.

    Raises:
        ValueError: ``device_type`` is not ``"cpu"`` or ``"cuda"``, or CUDA is not available.

    Example:
        >>> init_from_env(device_type="cpu")
        device(type='cpu')
    """
    import datetime

    if device_type is None:
        device = get_device_from_env()
    elif device_type == "cpu":
        device = torch.device("cpu")
    elif device_type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "device_type='cuda' is invalid: CUDA is not available on this machine. "
                "Use device_type='cpu' or run on a machine with a GPU."
            )
        device = torch.device("cuda", env_local_rank() % torch.cuda.device_count())
    else:
        raise ValueError(
            f"device_type={device_type!r} is invalid: expected 'cpu', 'cuda' or None. "
            "Pass None to pick the device automatically."
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if is_torchrun_env() and env_world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = pg_backend or ("nccl" if device.type == "cuda" else "gloo")
            dist.init_process_group(
                backend=backend, timeout=datetime.timedelta(seconds=pg_timeout_s)
            )
    return device


def set_process_group_env(
    *, rank: int, world_size: int, master_addr: str, master_port: int
) -> None:
    """Write torchrun's variables into *this* process (used only by processes torchkit spawns)."""
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "MASTER_ADDR": master_addr,
            "MASTER_PORT": str(master_port),
        }
    )
