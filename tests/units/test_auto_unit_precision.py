"""AutoUnit precision (bf16 / fp16) and torch.compile."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from torch import nn

from tests.units.test_auto_unit import Batch, MSEUnit, batches, mlp
from torchkit import train
from torchkit.loop.state import State
from torchkit.strategies import GradScalerPrecision, TorchCompileParams
from torchkit.strategies.precision import Precision


class DtypeRecorder(MSEUnit):
    def __init__(self, **kwargs: Any) -> None:
        self.dtypes: list[torch.dtype] = []
        super().__init__(**kwargs)

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        self.dtypes.append(out.dtype)
        return nn.functional.mse_loss(out.float(), y), out


def test_bf16_autocast_on_cpu() -> None:
    unit = DtypeRecorder(module=mlp(), device="cpu", precision="bf16")
    before = [p.detach().clone() for p in unit.module.parameters()]
    train(unit, batches(2), max_epochs=1)
    assert unit.dtypes == [torch.bfloat16, torch.bfloat16]
    # fp32 master weights, updated
    assert all(p.dtype == torch.float32 for p in unit.module.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, unit.module.parameters()))
    assert "grad_scaler" not in unit.app_state()


def test_precision_accepts_dtype() -> None:
    unit = DtypeRecorder(module=mlp(), device="cpu", precision=torch.bfloat16)
    train(unit, batches(1), max_epochs=1)
    assert unit.dtypes == [torch.bfloat16]


def test_fp16_with_grad_scaler_on_cpu() -> None:
    unit = DtypeRecorder(module=mlp(), device="cpu", precision="fp16", clip_grad_norm=1.0)
    assert isinstance(unit.precision, GradScalerPrecision)
    assert unit.app_state()["grad_scaler"] is unit.grad_scaler
    train(unit, batches(3), max_epochs=1)
    assert unit.dtypes == [torch.float16] * 3
    assert all(torch.isfinite(p).all() for p in unit.module.parameters())
    norms = [r.total_grad_norm for r in unit.results]
    # clipping reads the unscaled norm: far below the 2**16 loss scale
    assert all(n is not None and 0 < float(n) < 100 for n in norms)


def test_fp16_scaler_skip_also_skips_lr_scheduler() -> None:
    def sched(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    unit = MSEUnit(
        module=mlp(), device="cpu", precision="fp16", sched_fn=sched, step_lr_interval="step"
    )
    x, y = batches(1)[0]
    bad = (x, torch.full_like(y, float("inf")))
    train(unit, [bad], max_epochs=1)
    assert unit.num_optimizer_steps == 0
    assert unit.optimizer is not None and unit.optimizer.param_groups[0]["lr"] == 0.1
    assert unit.grad_scaler.get_scale() < 2.0**16  # the scaler backed off


@pytest.mark.gpu
def test_fp16_grad_scaler_on_cuda() -> None:
    unit = DtypeRecorder(module=mlp(), device="cuda", precision="fp16", clip_grad_norm=1.0)
    train(unit, batches(4), max_epochs=1)
    assert unit.dtypes == [torch.float16] * 4
    assert unit.num_optimizer_steps == 4
    assert all(p.device.type == "cuda" for p in unit.module.parameters())
    norm = unit.results[-1].total_grad_norm
    assert norm is not None and float(norm) < 100


@pytest.mark.gpu
def test_no_host_sync_on_cuda() -> None:
    unit = MSEUnit(module=mlp(), device="cuda", clip_grad_norm=1.0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        train(unit, batches(20), max_epochs=1)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert unit.num_optimizer_steps == 20


@pytest.mark.parametrize(
    "backend",
    ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow, id="inductor")],
)
def test_torch_compile_matches_eager(backend: str) -> None:
    data = batches(3)
    eager = MSEUnit(module=mlp(), device="cpu")
    train(eager, data, max_epochs=1)
    compiled = MSEUnit(
        module=mlp(), device="cpu", torch_compile_params=TorchCompileParams(backend=backend)
    )
    train(compiled, data, max_epochs=1)
    for a, b in zip(eager.results, compiled.results):
        # inductor may fuse/reorder float ops: equal to fp32 rounding, not bit for bit
        torch.testing.assert_close(a.loss, b.loss, atol=1e-6, rtol=1e-5)
    # compiled in place: parameter names are the user's
    assert [n for n, _ in compiled.module.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]


def test_detect_anomaly_is_forced_off_under_compile(caplog: pytest.LogCaptureFixture) -> None:
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        detect_anomaly=True,
        torch_compile_params=TorchCompileParams(backend="eager"),
    )
    assert "detect_anomaly=True is turned off" in caplog.text
    assert isinstance(unit._anomaly, contextlib.nullcontext)


class AnomalyProbe(MSEUnit):
    def __init__(self, **kwargs: Any) -> None:
        self.seen: list[bool] = []
        super().__init__(**kwargs)

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.append(torch.is_anomaly_enabled())
        return super().compute_loss(state, data)


@pytest.mark.parametrize("flag", [True, False])
def test_detect_anomaly_wraps_the_step(flag: bool) -> None:
    unit = AnomalyProbe(module=mlp(), device="cpu", detect_anomaly=flag)
    train(unit, batches(2), max_epochs=1)
    assert unit.seen == [flag, flag]
    assert not torch.is_anomaly_enabled()
    assert unit.num_optimizer_steps == 2


class HalvingStep(Precision):
    """A user precision whose ``step`` halves the gradients first (and counts its calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        self.steps += 1
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(0.5)
        optimizer.step()
        return True


def test_plain_update_fast_path_is_taken_only_for_the_plain_precision() -> None:
    from torchkit.strategies.precision import AutocastPrecision

    assert Precision().has_plain_update
    assert AutocastPrecision("cpu", torch.bfloat16).has_plain_update
    assert not GradScalerPrecision("cpu").has_plain_update
    assert not HalvingStep().has_plain_update


def test_a_custom_precision_step_is_honoured() -> None:
    prec = HalvingStep()

    def sgd_at(lr: float) -> Any:
        return lambda m: torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)

    unit = MSEUnit(module=mlp(), device="cpu", precision=prec, opt_fn=sgd_at(0.1))
    # halving every gradient is halving the lr (SGD with momentum is linear in the gradient)
    ref = MSEUnit(module=mlp(), device="cpu", opt_fn=sgd_at(0.05))
    data = batches(3)
    train(unit, data, max_epochs=1)
    train(ref, data, max_epochs=1)
    assert prec.steps == 3
    for a, b in zip(unit.module.parameters(), ref.module.parameters()):
        torch.testing.assert_close(a, b)
