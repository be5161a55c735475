"""Strategies, precision classes, config dataclasses and prepare_module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkit.strategies import (
    ActivationCheckpointParams,
    AutocastPrecision,
    DDPStrategy,
    FSDP2Strategy,
    FSDPStrategy,
    GradScalerPrecision,
    NOOPStrategy,
    Precision,
    SWALRParams,
    SWAParams,
    prepare_module,
    resolve_precision,
    resolve_strategy,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        (None, NOOPStrategy),
        ("noop", NOOPStrategy),
        ("ddp", DDPStrategy),
        ("fsdp2", FSDP2Strategy),
        ("fsdp", FSDPStrategy),
    ],
)
def test_resolve_strategy_names(name: str | None, cls: type) -> None:
    assert type(resolve_strategy(name)) is cls


def test_resolve_strategy_passes_instances_through() -> None:
    s = DDPStrategy(static_graph=True)
    assert resolve_strategy(s) is s


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        (None, Precision),
        ("fp32", Precision),
        ("bf16", AutocastPrecision),
        (torch.float16, GradScalerPrecision),
    ],
)
def test_resolve_precision(value: object, cls: type) -> None:
    assert type(resolve_precision(value, CPU)) is cls  # type: ignore[arg-type]


def test_noop_clip_grad_norm_matches_torch() -> None:
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 4)
    a(x).sum().backward()
    b(x).sum().backward()
    got = NOOPStrategy().clip_grad_norm_(a, 0.1, 2.0)
    want = nn.utils.clip_grad_norm_(b.parameters(), 0.1)
    torch.testing.assert_close(got, want)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_activation_checkpointing_keeps_results() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    ac = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    ac.load_state_dict(plain.state_dict())
    params = ActivationCheckpointParams(check_fn=lambda m: isinstance(m, nn.Linear))
    ac = prepare_module(ac, "cpu", activation_checkpoint_params=params)
    assert "CheckpointWrapper" in type(ac[0]).__name__
    x = torch.randn(3, 4)
    plain(x).sum().backward()
    ac(x).sum().backward()
    for pa, pb in zip(plain.parameters(), ac.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_bad_config_values() -> None:
    with pytest.raises(ValueError, match="step_or_epoch_update_freq=0 is invalid"):
        SWAParams(warmup_steps_or_epochs=0, step_or_epoch_update_freq=0)
    with pytest.raises(ValueError, match="averaging_method='mean' is invalid"):
        SWAParams(0, 1, averaging_method="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ema_decay=1\.5 is invalid"):
        SWAParams(0, 1, ema_decay=1.5)
    with pytest.raises(ValueError, match="anneal_strategy='step' is invalid"):
        SWALRParams(1, anneal_strategy="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoint_impl='x' is invalid"):
        ActivationCheckpointParams(checkpoint_impl="x")  # type: ignore[arg-type]


def test_lit_ema_ramps_decay() -> None:
    from torchkit.strategies.swa import build_averaged_model

    m = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(m.weight)
    avg = build_averaged_model(m, SWAParams(0, 1, ema_decay=0.99, use_lit=True))
    with torch.no_grad():
        m.weight.fill_(1.0)
    avg.update_parameters(m)  # first update copies
    with torch.no_grad():
        m.weight.fill_(2.0)
    avg.update_parameters(m)  # n=1: decay = 2/11
    torch.testing.assert_close(avg.module.weight, torch.tensor([[1.0 + 9.0 / 11.0]]))
