"""AutoUnit on a CUDA device: side-stream prefetch, no host sync on non-logging steps,
compile, reduce-overhead and MFU from the device table (skipped without CUDA)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from benchmarks.gpu_gpt2 import SyncDebugProbe
from tests.strategies.test_compile import Net
from tests.units.test_auto_unit import MSEUnit
from torchkit import fit, train
from torchkit.callbacks import MetricsLogger, ThroughputLogger, TQDMProgressBar
from torchkit.loggers import InMemoryLogger
from torchkit.loop.state import State
from torchkit.strategies import TorchCompileParams
from torchkit.units._prefetch import CudaStreams

pytestmark = pytest.mark.gpu


def loader(n: int = 64, batch_size: int = 8, pin: bool = True) -> Any:
    g = torch.Generator().manual_seed(3)
    ds = torch.utils.data.TensorDataset(
        torch.randn(n, 8, generator=g), torch.randn(n, 1, generator=g)
    )
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, pin_memory=pin, drop_last=True)


class DictUnit(MSEUnit):
    """Nested batches: {"x": x, "y": [y]}, checked on the compute stream."""

    def __init__(self, **kwargs: Any) -> None:
        self.devices: list[set[str]] = []
        super().__init__(**kwargs)

    def move_data_to_device(self, state: State, data: Any, non_blocking: bool) -> Any:
        x, y = data
        return super().move_data_to_device(state, {"x": x, "y": [y]}, non_blocking)

    def compute_loss(self, state: State, data: Any) -> Any:
        self.devices.append({data["x"].device.type, data["y"][0].device.type})
        return super().compute_loss(state, (data["x"], data["y"][0]))


def test_prefetch_copies_every_leaf_on_the_side_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[torch.cuda.Stream] = []
    real = torch.Tensor.record_stream
    monkeypatch.setattr(torch.Tensor, "record_stream",
                        lambda self, s: (recorded.append(s), real(self, s))[1])  # fmt: skip
    losses = []
    for prefetch in (True, False):
        unit = DictUnit(module=Net().cuda(), device="cuda", enable_prefetch=prefetch)
        if prefetch:
            streams = unit._train_prefetcher._streams
            assert isinstance(streams, CudaStreams) and streams.side != torch.cuda.current_stream()
        train(unit, loader(), max_epochs=1)
        assert unit.devices == [{"cuda"}] * 8
        losses.append(torch.stack([r.loss for r in unit.results]).cpu())
    assert len(recorded) == 2 * 8  # x and y of every batch, on the compute stream
    assert all(s == torch.cuda.current_stream() for s in recorded)
    assert torch.equal(losses[0], losses[1])


def test_no_host_sync_on_non_logging_steps_with_logging_callbacks() -> None:
    unit = MSEUnit(module=Net(), device="cuda", clip_grad_norm=1.0, precision="bf16")
    callbacks = [
        SyncDebugProbe("error", every_n_steps=10),  # first: it switches before the others
        TQDMProgressBar(refresh_rate=10, file=io.StringIO()),
        MetricsLogger(InMemoryLogger(), every_n_steps=10),
        ThroughputLogger(
            InMemoryLogger(), every_n_steps=10, items_per_batch=8, flops_per_step=10**9
        ),
    ]
    try:
        train(unit, loader(n=8 * 25), max_epochs=1, callbacks=callbacks)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert unit.num_optimizer_steps == 25


def test_compiled_on_cuda_matches_eager_without_recompiles() -> None:
    results = []
    for params in (None, TorchCompileParams()):
        unit = MSEUnit(module=Net(), device="cuda", torch_compile_params=params)
        fit(unit, loader(), loader(n=16), max_epochs=2)
        results.append(torch.stack([r.loss for r in unit.results]).cpu())
        if params is not None:
            assert unit.num_compiled_graphs <= 2  # train and eval
    torch.testing.assert_close(results[1], results[0], atol=1e-5, rtol=1e-4)


def test_reduce_overhead_with_accumulation_keeps_every_loss() -> None:
    losses = []
    for params in (None, TorchCompileParams(mode="reduce-overhead")):
        unit = MSEUnit(module=Net(), device="cuda", torch_compile_params=params,
                       gradient_accumulation_steps=2)  # fmt: skip
        fit(unit, loader(n=96), loader(n=16), max_epochs=2)
        # read only now: an output overwritten by a later replay would differ from eager
        losses.append(torch.stack([r.loss for r in unit.results]).cpu())
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-4)


def test_mfu_peak_comes_from_the_device_table() -> None:
    from torchkit.callbacks.throughput_logger import _device_peak
    from torchkit.utils.flops import _card_of

    name = torch.cuda.get_device_name()
    if _card_of(name) is None:
        pytest.skip(f"{name!r} is not in the peak table")
    unit = MSEUnit(module=Net(), device="cuda", precision="bf16")
    peak = _device_peak(unit)
    assert peak is not None and 1e14 < peak <= 1.1e15
