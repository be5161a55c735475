"""AutoUnit equivalence with hand-written reference loops (CPU, fp32, atol 1e-6)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from torchkit import AutoUnit, TrainStepResults, train
from torchkit.loop.state import State
from torchkit.strategies import SWAParams

ATOL = 1e-6
Batch = tuple[torch.Tensor, torch.Tensor]
OptFn = Callable[[nn.Module], torch.optim.Optimizer]
SchedFn = Callable[[torch.optim.Optimizer], Any]


def mlp(seed: int = 0, *, batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(8, 16)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Tanh(), nn.Linear(16, 1)]
    return nn.Sequential(*layers)


def batches(n: int, size: int = 4, seed: int = 1) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 8, generator=g), torch.randn(size, 1, generator=g)) for _ in range(n)
    ]


def sgd(module: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)


class MSEUnit(AutoUnit[Batch]):
    """MSE regression; records what the hooks saw."""

    def __init__(
        self, *, opt_fn: OptFn = sgd, sched_fn: SchedFn | None = None, **kwargs: Any
    ) -> None:
        self.opt_fn = opt_fn
        self.sched_fn = sched_fn
        self.results: list[TrainStepResults] = []
        self.lrs: list[float] = []
        self.steps_seen: list[int] = []
        self.opt_steps_at_hook: list[int] = []
        super().__init__(**kwargs)

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(self, module: nn.Module) -> Any:
        opt = self.opt_fn(module)
        return opt, (self.sched_fn(opt) if self.sched_fn else None)

    def on_train_step_end(
        self, state: State, data: Batch, step: int, results: TrainStepResults
    ) -> None:
        self.results.append(results)
        self.steps_seen.append(step)
        self.opt_steps_at_hook.append(self.num_optimizer_steps)
        assert self.optimizer is not None
        self.lrs.append(self.optimizer.param_groups[0]["lr"])


def reference_windows(
    model: nn.Module, windows: list[list[Batch]], opt_fn: OptFn = sgd, **kw: Any
) -> tuple[nn.Module, list[torch.Tensor]]:
    """One optimizer step per window on the concatenated window (the mean over its items)."""
    opt = opt_fn(model)
    norms = []
    for window in windows:
        x = torch.cat([b[0] for b in window])
        y = torch.cat([b[1] for b in window])
        nn.functional.mse_loss(model(x), y).backward()
        if "clip_grad_norm" in kw:
            norms.append(nn.utils.clip_grad_norm_(model.parameters(), kw["clip_grad_norm"]))
        if "clip_grad_value" in kw:
            nn.utils.clip_grad_value_(model.parameters(), kw["clip_grad_value"])
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, norms


def assert_same_params(a: nn.Module, b: nn.Module, atol: float = ATOL) -> None:
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=atol, rtol=0, msg=name)


def test_plain_step_matches_reference() -> None:
    data = batches(3)
    unit = MSEUnit(module=mlp(), device="cpu")
    state = train(unit, data, max_epochs=1)
    ref, _ = reference_windows(mlp(), [[b] for b in data])
    assert_same_params(unit.module, ref)
    assert unit.train_progress.num_steps_completed == 3
    assert unit.num_optimizer_steps == 3
    assert unit.steps_seen == [0, 1, 2]
    first = unit.results[0].loss
    assert not first.requires_grad and first.device.type == "cpu"
    torch.testing.assert_close(first, nn.functional.mse_loss(mlp()(data[0][0]), data[0][1]))
    assert unit.results[0].total_grad_norm is None
    assert state.train_state is not None and state.train_state.step_output is None


def test_accumulation_k4_equals_one_step_on_concatenated_batch() -> None:
    data = batches(4)
    unit = MSEUnit(module=mlp(), device="cpu", gradient_accumulation_steps=4)
    train(unit, data, max_epochs=1)
    ref, _ = reference_windows(mlp(), [data])
    assert_same_params(unit.module, ref)
    assert unit.train_progress.num_steps_completed == 4  # progress counts micro-batches
    assert unit.num_optimizer_steps == 1
    # the reported loss is the micro-batch loss, not divided by k
    torch.testing.assert_close(
        unit.results[0].loss, nn.functional.mse_loss(mlp()(data[0][0]), data[0][1])
    )


@pytest.mark.parametrize(
    ("n_batches", "limits", "prefetch", "windows"),
    [
        (6, {}, True, [[0, 1, 2, 3], [4, 5]]),  # data ran out: found by the look-ahead
        (6, {}, False, [[0, 1, 2, 3], [4, 5]]),  # no look-ahead: flushed at epoch end
        (6, {"max_steps_per_epoch": 5}, True, [[0, 1, 2, 3], [4]]),
        (6, {"max_steps": 5}, True, [[0, 1, 2, 3], [4]]),
    ],
    ids=["data-ran-out", "no-prefetch", "max_steps_per_epoch", "max_steps"],
)
def test_partial_last_window_is_normalised_by_its_real_length(
    n_batches: int, limits: dict[str, int], prefetch: bool, windows: list[list[int]]
) -> None:
    data = batches(n_batches)
    unit = MSEUnit(
        module=mlp(), device="cpu", gradient_accumulation_steps=4, enable_prefetch=prefetch
    )
    train(unit, data, max_epochs=1, **limits)  # type: ignore[arg-type]
    ref, _ = reference_windows(mlp(), [[data[i] for i in w] for w in windows])
    assert_same_params(unit.module, ref)
    assert unit.num_optimizer_steps == len(windows)
    if prefetch:  # the flush happened inside the last step, before on_train_step_end
        assert unit.opt_steps_at_hook[-1] == len(windows)


def test_windows_restart_each_epoch() -> None:
    data = batches(3)
    unit = MSEUnit(module=mlp(), device="cpu", gradient_accumulation_steps=2)
    train(unit, data, max_epochs=2)
    w = [[data[0], data[1]], [data[2]]]
    ref, _ = reference_windows(mlp(), w + w)
    assert_same_params(unit.module, ref)
    assert unit.num_optimizer_steps == 4


class CountWeightedUnit(MSEUnit):
    """Sequences with padding: only the first ``lengths[i]`` items of a batch count."""

    def __init__(self, *, as_tensor: bool, **kwargs: Any) -> None:
        self.as_tensor = as_tensor
        super().__init__(**kwargs)

    def compute_loss(self, state: State, data: Any) -> tuple[Any, ...]:
        x, y, n = data
        out = self.module(x)
        per_item = (out - y).pow(2).sum(dim=1)
        mask = torch.arange(x.shape[0]) < n
        num_items = torch.tensor(n) if self.as_tensor else int(n)
        return (per_item * mask).sum(), out, num_items


@pytest.mark.parametrize("as_tensor", [False, True], ids=["int-count", "tensor-count"])
def test_count_weighted_accumulation_equals_big_batch_item_mean(as_tensor: bool) -> None:
    lengths = [1, 4, 2, 3, 4]  # k=3: windows [1, 4, 2] and a partial [3, 4]
    data = [(x, y, n) for (x, y), n in zip(batches(5), lengths)]
    unit = CountWeightedUnit(
        as_tensor=as_tensor, module=mlp(), device="cpu", gradient_accumulation_steps=3
    )
    train(unit, data, max_epochs=1)
    ref = mlp()
    opt = sgd(ref)
    for window in (data[:3], data[3:]):
        x = torch.cat([b[0][: b[2]] for b in window])
        y = torch.cat([b[1][: b[2]] for b in window])
        (ref(x) - y).pow(2).sum(dim=1).mean().backward()
        opt.step()
        opt.zero_grad()
    assert_same_params(unit.module, ref)


def test_clip_grad_norm_returns_total_norm_and_clips() -> None:
    data = batches(4)
    unit = MSEUnit(module=mlp(), device="cpu", gradient_accumulation_steps=2, clip_grad_norm=0.05)
    train(unit, data, max_epochs=1)
    windows = [data[:2], data[2:]]
    ref, norms = reference_windows(mlp(), windows, clip_grad_norm=0.05)
    assert_same_params(unit.module, ref)
    got = [r.total_grad_norm for r in unit.results]
    assert got[0] is None and got[2] is None  # non-update steps
    assert norms[0] > 0.05  # the test really clips
    torch.testing.assert_close(got[1], norms[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(got[3], norms[1], atol=ATOL, rtol=0)


def test_clip_grad_value_matches_reference() -> None:
    data = batches(3)
    unit = MSEUnit(module=mlp(), device="cpu", clip_grad_value=0.01)
    train(unit, data, max_epochs=1)
    ref, _ = reference_windows(mlp(), [[b] for b in data], clip_grad_value=0.01)
    assert_same_params(unit.module, ref)
    assert all(r.total_grad_norm is None for r in unit.results)


def step_lr(opt: torch.optim.Optimizer) -> Any:
    return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)


def test_per_step_lr_schedule_counts_optimizer_steps() -> None:
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        sched_fn=step_lr,
        step_lr_interval="step",
        gradient_accumulation_steps=2,
    )
    train(unit, batches(6), max_epochs=1)
    # the LR halves after each optimizer step (every 2nd micro-batch), before the hook
    assert unit.lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.0125], abs=1e-12)


def test_per_epoch_lr_schedule() -> None:
    unit = MSEUnit(module=mlp(), device="cpu", sched_fn=step_lr, step_lr_interval="epoch")
    train(unit, batches(2), max_epochs=3)
    assert unit.lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], abs=1e-12)
    assert unit.optimizer is not None
    assert unit.optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


@pytest.mark.parametrize("method", ["ema", "swa"])
def test_swa_and_ema_average_parameters_and_batchnorm_buffers(method: str) -> None:
    data = batches(6, size=8)
    params = SWAParams(
        warmup_steps_or_epochs=2,
        step_or_epoch_update_freq=2,
        averaging_method=method,  # type: ignore[arg-type]
        ema_decay=0.8,
    )
    unit = MSEUnit(
        module=mlp(batchnorm=True), device="cpu", swa_params=params, step_lr_interval="step"
    )
    train(unit, data, max_epochs=1)
    ref = mlp(batchnorm=True)
    ref.train()
    avg_fn = torch.optim.swa_utils.get_ema_multi_avg_fn(0.8) if method == "ema" else None
    avg = torch.optim.swa_utils.AveragedModel(ref, multi_avg_fn=avg_fn, use_buffers=True)
    opt = sgd(ref)
    for i, (x, y) in enumerate(data, start=1):
        nn.functional.mse_loss(ref(x), y).backward()
        opt.step()
        opt.zero_grad()
        if i > 2 and (i - 2) % 2 == 0:
            avg.update_parameters(ref)
    assert unit.swa_model is not None
    assert "swa_model" in unit.tracked_modules()
    sd_unit, sd_ref = unit.swa_model.state_dict(), avg.state_dict()
    assert any("running_mean" in k for k in sd_ref)
    for key, value in sd_ref.items():
        torch.testing.assert_close(sd_unit[key], value, atol=ATOL, rtol=0, msg=key)
    assert int(sd_unit["n_averaged"]) == 2


def test_swalr_replaces_scheduler_after_warmup() -> None:
    from torchkit.strategies import SWALRParams

    params = SWAParams(
        warmup_steps_or_epochs=1,
        step_or_epoch_update_freq=1,
        swalr_params=SWALRParams(anneal_steps_or_epochs=1, swa_lrs=0.02),
    )
    unit = MSEUnit(module=mlp(), device="cpu", swa_params=params, step_lr_interval="step")
    train(unit, batches(3), max_epochs=1)
    assert unit.swa_scheduler is not None
    assert unit.lrs[-1] == pytest.approx(0.02)


def test_zero_grad_at_train_step_start_gives_same_result() -> None:
    data = batches(4)
    unit = MSEUnit(
        module=mlp(),
        device="cpu",
        gradient_accumulation_steps=2,
        zero_grad_at_train_step_start=True,
    )
    train(unit, data, max_epochs=1)
    ref, _ = reference_windows(mlp(), [data[:2], data[2:]])
    assert_same_params(unit.module, ref)


def test_app_state_tracks_module_optimizer_scheduler_and_counters() -> None:
    unit = MSEUnit(module=mlp(), device="cpu", sched_fn=step_lr)
    state = unit.app_state()
    assert {"module", "optimizer", "lr_scheduler", "counters", "train_progress"} <= set(state)
    assert "grad_scaler" not in state
    train(unit, batches(2), max_epochs=1)
    assert unit.counters.state_dict() == {"num_optimizer_steps": 2, "num_non_finite_skips": 0}


def test_model_copy_helper_is_deterministic() -> None:
    a, b = mlp(), copy.deepcopy(mlp())
    assert_same_params(a, b, atol=0)


@pytest.mark.parametrize("enable_prefetch", [True, False])
def test_overridden_move_data_to_device_is_used_on_cpu(enable_prefetch: bool) -> None:
    class Doubling(MSEUnit):
        moved = 0

        def move_data_to_device(self, state: State, data: Batch, non_blocking: bool) -> Batch:
            self.moved += 1
            return data[0] * 2, data[1]

    unit = Doubling(module=mlp(), device="cpu", enable_prefetch=enable_prefetch)
    ref = MSEUnit(module=mlp(), device="cpu")
    data = batches(3)
    train(unit, data, max_epochs=1)
    train(ref, [(x * 2, y) for x, y in data], max_epochs=1)
    assert unit.moved == 3
    for a, b in zip(unit.module.parameters(), ref.module.parameters()):
        torch.testing.assert_close(a, b)
