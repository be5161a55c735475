"""Environment helpers: rank/world size from the environment, device selection."""

from __future__ import annotations

import os

import pytest
import torch

from torchkit.utils import env, get_device_from_env, init_from_env


def test_defaults_without_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert (env.env_rank(), env.env_local_rank(), env.env_world_size()) == (0, 0, 1)


def test_reads_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (env.env_rank(), env.env_local_rank(), env.env_world_size()) == (3, 1, 4)


def test_bad_variable_names_it_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "zero")
    with pytest.raises(ValueError, match=r"RANK='zero' is invalid: expected an integer.*torchrun"):
        env.env_rank()


def test_is_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert not env.is_torchrun_env()
    for name, value in (
        ("RANK", "0"),
        ("WORLD_SIZE", "1"),
        ("MASTER_ADDR", "x"),
        ("MASTER_PORT", "1"),
    ):
        monkeypatch.setenv(name, value)  # fmt: skip
    assert env.is_torchrun_env()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_device_from_env_is_cpu_without_cuda() -> None:
    assert get_device_from_env() == torch.device("cpu")
    assert init_from_env() == torch.device("cpu")
    assert init_from_env(device_type="cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda() -> None:
    with pytest.raises(ValueError, match=r"device_type='cuda' is invalid.*device_type='cpu'"):
        init_from_env(device_type="cuda")


def test_unknown_device_type() -> None:
    with pytest.raises(ValueError, match=r"device_type='tpu' is invalid: expected 'cpu', 'cuda'"):
        init_from_env(device_type="tpu")


def test_init_from_env_single_process_creates_no_process_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29999")
    init_from_env(device_type="cpu")
    assert not torch.distributed.is_initialized()


def test_set_process_group_env_writes_torchrun_variables() -> None:
    # the autouse fixture restores os.environ afterwards
    env.set_process_group_env(rank=1, world_size=2, master_addr="127.0.0.1", master_port=1234)
    assert os.environ["RANK"] == "1"
    assert os.environ["LOCAL_RANK"] == "1"
    assert os.environ["WORLD_SIZE"] == "2"
    assert os.environ["MASTER_PORT"] == "1234"
