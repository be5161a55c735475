"""AutoUnit: non-finite policy, bad input, metrics, entry points and prefetch state."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tests.units.test_auto_unit import Batch, MSEUnit, assert_same_params, batches, mlp
from torchkit import AutoUnit, evaluate, fit, train
from torchkit.loop.state import State
from torchkit.strategies import FSDP2Strategy, SWAParams


def poisoned(n: int, bad: int) -> list[Batch]:
    data = batches(n)
    x, y = data[bad]
    data[bad] = (x, torch.full_like(y, float("nan")))
    return data


def test_non_finite_policy_raise_names_the_step() -> None:
    unit = MSEUnit(module=mlp(), device="cpu", non_finite_policy="raise")
    with pytest.raises(RuntimeError, match=r"Non-finite gradients .* at train step 2 "):
        train(unit, poisoned(4, bad=2), max_epochs=1)
    assert unit.num_optimizer_steps == 2


def test_non_finite_policy_skip_drops_the_update() -> None:
    def sched(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    data = poisoned(5, bad=2)  # k=2: windows [0, 1], [2, 3] (poisoned), [4]
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        non_finite_policy="skip",
        gradient_accumulation_steps=2,
        sched_fn=sched,
        step_lr_interval="step",
    )
    train(unit, data, max_epochs=1)
    assert unit.num_non_finite_skips == 1
    assert unit.num_optimizer_steps == 2
    assert unit.optimizer is not None and unit.optimizer.param_groups[0]["lr"] == 0.025
    ref = mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    sched_ref = sched(opt)
    for window in ([data[0], data[1]], [data[4]]):  # the poisoned window left no trace
        x = torch.cat([b[0] for b in window])
        y = torch.cat([b[1] for b in window])
        nn.functional.mse_loss(ref(x), y).backward()
        opt.step()
        sched_ref.step()
        opt.zero_grad()
    assert_same_params(unit.module, ref)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"gradient_accumulation_steps": 0},
            ValueError,
            "gradient_accumulation_steps must be >= 1, got 0",
        ),
        ({"gradient_accumulation_steps": 1.5}, TypeError, "gradient_accumulation_steps=1.5"),
        ({"precision": "fp8"}, ValueError, r"precision='fp8' is invalid.*'bf16'"),
        ({"precision": torch.int8}, ValueError, "precision=torch.int8 is invalid"),
        ({"strategy": "horovod"}, ValueError, r"strategy='horovod' is invalid.*'ddp'"),
        ({"strategy": 3}, TypeError, "strategy=3 is invalid"),
        ({"strategy": "ddp"}, RuntimeError, r"strategy='ddp' needs .*process group.*torchrun"),
        ({"strategy": "fsdp2"}, RuntimeError, r"strategy='fsdp2'.*torchrun --nproc_per_node"),
        (
            {"precision": "fp16", "device": "meta"},
            RuntimeError,
            r"precision='fp16' is not supported on device=meta",
        ),
        ({"step_lr_interval": "batch"}, ValueError, r"step_lr_interval='batch' is invalid"),
        ({"clip_grad_norm": 0.0}, ValueError, r"clip_grad_norm=0.0 is invalid"),
        ({"non_finite_policy": "ignore"}, ValueError, r"non_finite_policy='ignore' is invalid"),
        ({"device": "gpu:x"}, ValueError, r"device='gpu:x' is invalid"),
        (
            {"swa_params": SWAParams(0, 1), "strategy": "fsdp2"},
            ValueError,
            r"swa_params=.* is invalid with strategy='fsdp2'.*DDPStrategy",
        ),
        (
            {"swa_params": SWAParams(0, 1), "strategy": FSDP2Strategy()},
            ValueError,
            r"swa_params=.* is invalid with strategy=.*FSDP2Strategy.*cannot be copied",
        ),
        (
            {"swa_params": SWAParams(0, 1), "strategy": "fsdp"},
            ValueError,
            r"swa_params=.* is invalid with strategy='fsdp'",
        ),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    module = mlp()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(exc, match=match):
        MSEUnit(module=module, **{"device": "cpu", **kwargs})
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_non_module_is_rejected() -> None:
    with pytest.raises(TypeError, match="module=str instance is invalid"):
        MSEUnit(module="net", device="cpu")  # type: ignore[arg-type]


class VectorLoss(MSEUnit):
    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return (out - y).pow(2), out


def test_non_scalar_loss_raises_before_any_weight_change() -> None:
    unit = VectorLoss(module=mlp(), device="cpu")
    before = [p.detach().clone() for p in unit.module.parameters()]
    with pytest.raises(ValueError, match=r"scalar loss.*shape \(4, 1\)"):
        train(unit, batches(2), max_epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(before, unit.module.parameters()))
    assert all(p.grad is None for p in unit.module.parameters())


class NoTuple(MSEUnit):
    def compute_loss(self, state: State, data: Batch) -> Any:
        return super().compute_loss(state, data)[0]


def test_compute_loss_must_return_a_tuple() -> None:
    with pytest.raises(TypeError, match=r"compute_loss returned Tensor: expected a tuple"):
        train(NoTuple(module=mlp(), device="cpu"), batches(1), max_epochs=1)


class EvalOnly(AutoUnit[Batch]):
    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.module(data[0])
        return nn.functional.mse_loss(out, data[1]), out


def test_evaluate_with_training_false_builds_no_optimizer() -> None:
    unit = EvalOnly(module=mlp(), device="cpu", training=False)
    assert unit.optimizer is None and "optimizer" not in unit.app_state()
    evaluate(unit, batches(3))
    assert unit.eval_progress.num_steps_completed == 3
    with pytest.raises(RuntimeError, match="training=False"):
        train(unit, batches(1), max_epochs=1)


def test_training_without_configure_optimizers_says_what_to_do() -> None:
    with pytest.raises(NotImplementedError, match="configure_optimizers_and_lr_scheduler"):
        EvalOnly(module=mlp(), device="cpu")


class FitUnit(MSEUnit):
    def __init__(self, **kwargs: Any) -> None:
        self.eval_losses: list[torch.Tensor] = []
        self.eval_modes: list[bool] = []
        super().__init__(**kwargs)

    def on_eval_step_end(
        self, state: State, data: Batch, step: int, loss: torch.Tensor, outputs: Any
    ) -> None:
        self.eval_losses.append(loss)
        self.eval_modes.append(self.module.training)


def test_fit_trains_and_evaluates() -> None:
    unit = FitUnit(module=mlp(), device="cpu", gradient_accumulation_steps=2)
    fit(unit, batches(4), batches(2, seed=5), max_epochs=2)
    assert unit.num_optimizer_steps == 4
    assert unit.eval_progress.num_epochs_completed == 2
    assert len(unit.eval_losses) == 4 and unit.eval_modes == [False] * 4
    assert not unit.eval_losses[0].requires_grad


def test_metrics_are_moved_and_updated_not_computed() -> None:
    from torchmetrics import MeanSquaredError

    unit = FitUnit(module=mlp(), device="cpu")
    unit.train_metrics = MeanSquaredError()
    unit.eval_metrics = MeanSquaredError()
    assert "train_metrics" in unit.tracked_metrics()
    fit(unit, batches(3), batches(2, seed=5), max_epochs=1)
    assert int(unit.train_metrics.total) == 12  # 3 batches of 4, never reset by the unit
    assert int(unit.eval_metrics.total) == 8


def test_metrics_with_unknown_batch_layout_ask_for_an_override() -> None:
    from torchmetrics import MeanSquaredError

    class ObjBatch(MSEUnit):
        def compute_loss(self, state: State, data: Any) -> Any:
            return super().compute_loss(state, (data.x, data.y))

    class B:
        def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
            self.x, self.y = x, y

    unit = ObjBatch(module=mlp(), device="cpu")
    unit.train_metrics = MeanSquaredError()
    with pytest.raises(TypeError, match="Override update_metrics"):
        train(unit, [B(*batches(1)[0])], max_epochs=1)


def test_dict_batch_metric_target() -> None:
    from torchkit.units._auto_helpers import metric_target

    y = torch.ones(2)
    assert metric_target({"x": 1, "labels": y}) is y
    assert metric_target((0, y)) is y


def test_consumed_dataloader_state_excludes_the_read_ahead() -> None:
    torchdata = pytest.importorskip("torchdata.stateful_dataloader")
    ds = torch.utils.data.TensorDataset(torch.randn(12, 8), torch.randn(12, 1))

    def loader() -> Any:
        return torchdata.StatefulDataLoader(ds, batch_size=2)

    unit = MSEUnit(module=mlp(), device="cpu")
    train(unit, loader(), max_steps=3)
    ref = loader()
    it = iter(ref)
    for _ in range(3):
        next(it)
    # the state after 3 consumed batches, not 4 (the look-ahead)
    fresh = loader()
    fresh.load_state_dict(unit.consumed_dataloader_state)
    nxt = next(iter(fresh))
    torch.testing.assert_close(nxt[0], next(it)[0])
