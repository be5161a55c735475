"""torch.compile in the auto units: checked options, per-block compile, the recompile budget,
compiled autograd and the reduce-overhead step protocol (all on CPU; compile is kept small)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from tests.units.test_auto_unit import Batch, MSEUnit, batches
from torchkit import fit, predict, train
from torchkit.callbacks import Lambda
from torchkit.loop.state import State
from torchkit.strategies import TorchCompileParams

EAGER = "eager"


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.proj(x))


class Net(nn.Module):
    """A user-defined module with repeated blocks (built-in classes: see the tests of
    ``nn.Sequential`` and ``nn.TransformerEncoderLayer`` below)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Any:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def loader(n: int, batch_size: int = 4) -> Any:
    g = torch.Generator().manual_seed(2)
    data = torch.utils.data.TensorDataset(
        torch.randn(n, 8, generator=g), torch.randn(n, 1, generator=g)
    )
    return torch.utils.data.DataLoader(data, batch_size=batch_size, drop_last=True)


# ---- configuration errors, raised before the module is changed -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "fast"}, ValueError, r"mode='fast' is invalid: expected None or one of"),
        ({"mode": "default", "options": {"max_autotune": True}}, ValueError,
         r"torch.compile takes one of them"),
        ({"recursive_module_types": [3]}, TypeError, r"recursive_module_types=\[3\] is invalid"),
        ({"recompile_warning_threshold": 0}, ValueError, r"recompile_warning_threshold=0 is inv"),
    ],
)  # fmt: skip
def test_bad_compile_params(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        TorchCompileParams(**kwargs)


def test_an_unknown_inductor_option_fails_before_the_module_is_touched() -> None:
    net = Net()
    params = TorchCompileParams(options={"max_autotun": True})
    with pytest.raises(ValueError, match=r"unknown inductor option\(s\) \['max_autotun'\]. See "
                       r"torch._inductor.list_options\(\) \(did you mean 'max_autotun' -> "
                       r"'max_autotune'\?\)"):  # fmt: skip
        MSEUnit(module=net, device="cpu", torch_compile_params=params)
    assert net._compiled_call_impl is None


# ---- per-block compile ------------------------------------------------------------------------


@pytest.mark.parametrize("types", [[Block], ["Block"]], ids=["class", "name"])
def test_recursive_module_types_compile_each_block_in_place(types: list[Any]) -> None:
    params = TorchCompileParams(backend=EAGER, recursive_module_types=types)
    unit = MSEUnit(module=Net(), device="cpu", torch_compile_params=params)
    net = unit.module
    assert net._compiled_call_impl is None
    assert all(b._compiled_call_impl is not None for b in net.blocks)
    assert net.head._compiled_call_impl is None
    assert list(net.state_dict()) == list(Net().state_dict())  # no _orig_mod. prefixes
    train(unit, loader(8), max_epochs=1)
    assert unit.num_compiled_graphs == 2  # one per block (guards hold the instance)


def _sequential() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))


def test_a_module_of_torchs_own_classes_is_compiled_not_run_eagerly() -> None:
    # nn.Module.compile alone leaves an nn.Sequential of built-in layers eager: dynamo skips
    # every frame of it, silently
    counters = torch._dynamo.utils.counters
    counters.clear()
    plain = _sequential()
    plain.compile(backend=EAGER)
    plain(torch.randn(4, 8))
    assert counters["stats"]["unique_graphs"] == 0
    torch._dynamo.reset()

    unit = MSEUnit(
        module=_sequential(), device="cpu", torch_compile_params=TorchCompileParams(EAGER)
    )
    assert list(unit.module.state_dict()) == list(_sequential().state_dict())  # no prefixes
    eager = MSEUnit(module=_sequential(), device="cpu")
    train(unit, loader(8), max_epochs=1)
    train(eager, loader(8), max_epochs=1)
    assert unit.num_compiled_graphs >= 1
    for a, b in zip(unit.module.parameters(), eager.module.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList(
            [nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True) for _ in range(2)]
        )
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x[:, None, :].expand(-1, 3, -1)
        for layer in self.layers:
            h = layer(h)
        return self.head(h.mean(1))


def test_recursive_compile_of_a_built_in_block_traces_each_block() -> None:
    params = TorchCompileParams(EAGER, recursive_module_types=[nn.TransformerEncoderLayer])
    unit = MSEUnit(module=Encoder(), device="cpu", torch_compile_params=params)
    assert unit.module._compiled_call_impl is None
    train(unit, loader(8), max_epochs=1)
    assert unit.num_compiled_graphs >= 2  # one per layer at least: none before the fix


def test_recursive_module_types_that_match_nothing_say_so() -> None:
    params = TorchCompileParams(backend=EAGER, recursive_module_types=[nn.Conv2d])
    with pytest.raises(ValueError, match=r"no submodule of Net has one of these types"):
        MSEUnit(module=Net(), device="cpu", torch_compile_params=params)


# ---- recompiles ---------------------------------------------------------------------------------


class FitUnit(MSEUnit):
    def predict_step(self, state: State, data: Any) -> Any:
        return super().predict_step(state, data[0])


def test_recompile_budget_train_eval_predict() -> None:
    unit = FitUnit(module=Net(), device="cpu", torch_compile_params=TorchCompileParams(EAGER))
    config = torch._dynamo.config
    checked = []

    def no_recompiles_from_epoch_2(state: State, u: Any) -> None:
        if u.train_progress.num_epochs_completed == 1:  # train and eval graphs exist now
            config.error_on_recompile = True
            checked.append(True)

    try:
        fit(unit, loader(16), loader(8), max_epochs=3,
            callbacks=[Lambda(on_train_epoch_start=no_recompiles_from_epoch_2)])  # fmt: skip
    finally:
        config.error_on_recompile = False
    assert checked and unit.train_progress.num_steps_completed == 12
    assert unit.num_compiled_graphs == 2  # one per (grad mode, training flag)
    predict(unit, loader(8))
    assert unit.num_compiled_graphs <= 3


def test_recompiles_past_the_threshold_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    params = TorchCompileParams(EAGER, recompile_warning_threshold=1)
    unit = MSEUnit(module=Net(), device="cpu", torch_compile_params=params)
    with caplog.at_level(logging.WARNING):
        # batch sizes 4 then 2 (no drop_last): a dynamic-shape recompile in each epoch
        train(unit, torch.utils.data.DataLoader(loader(6).dataset, batch_size=4), max_epochs=3)
    warnings = [r.message for r in caplog.records if "graphs since this unit" in r.message]
    assert len(warnings) == 1 and "built 2 graphs" in warnings[0]


# ---- compiled autograd --------------------------------------------------------------------------


def test_compiled_autograd_gradients_equal_eager() -> None:
    ca = pytest.importorskip("torch._dynamo.compiled_autograd")
    if not hasattr(ca, "_enable"):
        pytest.skip("this torch has no torch._dynamo.compiled_autograd._enable")
    from torch._dynamo.utils import counters

    data = batches(1)
    grads = []
    for params in (None, TorchCompileParams(backend="aot_eager", compiled_autograd=True)):
        unit = MSEUnit(
            module=Net(),
            device="cpu",
            torch_compile_params=params,
            zero_grad_at_train_step_start=True,
        )  # fmt: skip  (grads kept after step)
        train(unit, data, max_epochs=1)
        grads.append([p.grad.clone() for p in unit.module.parameters()])
    for eager, compiled in zip(*grads, strict=True):
        torch.testing.assert_close(compiled, eager, atol=1e-6, rtol=0)
    assert counters["compiled_autograd"]["captures"] >= 1  # the backward really was compiled


# ---- reduce-overhead protocol ---------------------------------------------------------------


class LossKeeper(MSEUnit):
    def __init__(self, **kwargs: Any) -> None:
        self.raw_losses: list[torch.Tensor] = []
        self.graphs_at_step: list[int] = []
        super().__init__(**kwargs)

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        self.graphs_at_step.append(self.num_compiled_graphs)
        loss, out = super().compute_loss(state, data)
        self.raw_losses.append(loss)
        return loss, out


def test_reduce_overhead_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    marks: list[int] = []
    real = torch.compiler.cudagraph_mark_step_begin
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin",
                        lambda: (marks.append(1), real())[1])  # fmt: skip
    # the eager backend ignores the mode (a warning from torch); AutoUnit's protocol runs
    params = TorchCompileParams(EAGER, mode="reduce-overhead")
    unit = LossKeeper(module=Net(), device="cpu", torch_compile_params=params,
                      gradient_accumulation_steps=2)  # fmt: skip
    fit(unit, loader(32), loader(8), max_epochs=1)  # 8 micro-batches = 4 optimizer steps
    assert len(marks) == 8 + 2  # every micro-batch forward, train and eval
    # optimizer steps 1-2 (micro-batches 1-4) ran eagerly: nothing compiled before the 5th
    assert unit.graphs_at_step[:5] == [0] * 5 and unit.num_compiled_graphs == 2
    # grads zeroed in place, not dropped
    assert all(p.grad is not None and not p.grad.any() for p in unit.module.parameters())
    # the loss handed out owns its memory (a CUDA-graph replay would overwrite the original)
    for raw, kept in zip(unit.raw_losses[:8], unit.results, strict=True):  # train steps
        assert kept.loss.untyped_storage().data_ptr() != raw.untyped_storage().data_ptr()
        assert torch.equal(kept.loss, raw.detach())
