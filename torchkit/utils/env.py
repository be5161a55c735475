"""The one module that reads environment variables (rank, world size, device) and sets up a run."""

from __future__ import annotations

import datetime
import os
from typing import Literal

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


_DEFAULT_PG_TIMEOUT = datetime.timedelta(minutes=30)


def init_from_env(
    *,
    device_type: str | None = None,
    dist_init_method_type: Literal["env", "tcp"] = "env",
    pg_backend: str | None = None,
    pg_timeout: datetime.timedelta = _DEFAULT_PG_TIMEOUT,
    float32_matmul_precision: str | None = None,
    pg_timeout_s: float | None = None,
) -> torch.device:
    """Set up the device and, under torchrun, the default process group (TNT's signature).

    Args:
        device_type: ``"cpu"`` or ``"cuda"``; inferred from the machine when ``None``.
        dist_init_method_type: ``"env"`` (torchrun's variables) or ``"tcp"``
            (``tcp://MASTER_ADDR:MASTER_PORT`` with ``RANK``/``WORLD_SIZE``).
        pg_backend: process-group backend; ``nccl`` on CUDA and ``gloo`` otherwise when ``None``.
        pg_timeout: collective timeout.
        float32_matmul_precision: passed to ``torch.set_float32_matmul_precision`` when given
            (TNT sets ``"high"`` by default; torchkit leaves the global setting alone).
        pg_timeout_s: the timeout in seconds (torchkit's earlier spelling; wins when given).

    Returns:
        The device to use in this process.

    Raises:
        ValueError: ``device_type`` is not ``"cpu"`` or ``"cuda"``, CUDA is not available, or
            an unknown ``dist_init_method_type``.

    Example:
        >>> init_from_env(device_type="cpu")
        device(type='cpu')
    """
    if dist_init_method_type not in ("env", "tcp"):
        raise ValueError(
            f"dist_init_method_type={dist_init_method_type!r} is invalid: expected 'env' or "
            "'tcp'. Use 'env' under torchrun."
        )
    device = _device_for(device_type)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if float32_matmul_precision is not None:
        torch.set_float32_matmul_precision(float32_matmul_precision)
    if is_torchrun_env() and env_world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = pg_backend or ("nccl" if device.type == "cuda" else "gloo")
            timeout = (
                pg_timeout if pg_timeout_s is None else datetime.timedelta(seconds=pg_timeout_s)
            )
            init_method = "env://"
            if dist_init_method_type == "tcp":
                addr, port = os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]
                init_method = f"tcp://{addr}:{port}"
            dist.init_process_group(
                backend=backend, init_method=init_method, timeout=timeout,
                rank=env_rank(), world_size=env_world_size(),
            )  # fmt: skip
    return device


def _device_for(device_type: str | None) -> torch.device:
    if device_type is None:
        return get_device_from_env()
    if device_type == "cpu":
        return torch.device("cpu")
    if device_type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "device_type='cuda' is invalid: CUDA is not available on this machine. "
                "Use device_type='cpu' or run on a machine with a GPU."
            )
        return torch.device("cuda", env_local_rank() % torch.cuda.device_count())
    raise ValueError(
        f"device_type={device_type!r} is invalid: expected 'cpu', 'cuda' or None. "
        "Pass None to pick the device automatically."
    )


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
