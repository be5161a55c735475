"""Exact resume with AutoUnit: its one-batch look-ahead must not shift the restored loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.units._streams import RecordingStreams
from torchkit import AutoUnit, State, train
from torchkit.callbacks import DistributedCheckpointSaver, Lambda
from torchkit.units._prefetch import BatchPrefetcher
from torchkit.utils import copy_data_to_device

pytest.importorskip("torchdata")
from torchdata.stateful_dataloader import StatefulDataLoader

Batch = tuple[torch.Tensor, torch.Tensor]


class _Crash(Exception):
    pass


class DropoutUnit(AutoUnit[Batch]):
    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        out = self.module(x)
        return torch.nn.functional.mse_loss(out, y), out

    def configure_optimizers_and_lr_scheduler(self, module: torch.nn.Module) -> Any:
        opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.9**s)


def _unit(enable_prefetch: bool) -> DropoutUnit:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    return DropoutUnit(
        module=net, device="cpu", step_lr_interval="step", enable_prefetch=enable_prefetch
    )


def _loader() -> StatefulDataLoader:
    g = torch.Generator().manual_seed(1)
    ds = torch.utils.data.TensorDataset(
        torch.randn(40, 4, generator=g), torch.randn(40, 1, generator=g)
    )
    return StatefulDataLoader(ds, batch_size=4, shuffle=True)


class SideStreamUnit(DropoutUnit):
    """The prefetcher's CUDA path (pin, copy with the side stream current, record, event,
    wait) on a CPU, through stand-in streams."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._train_prefetcher = BatchPrefetcher(
            self.move_data_to_device, self.device, enabled=True,
            loader_of=lambda state: state.train_state.dataloader, streams=RecordingStreams(),
        )  # fmt: skip

    def move_data_to_device(self, state: State, data: Batch, non_blocking: bool) -> Batch:
        return copy_data_to_device(data, self.device, non_blocking=non_blocking)


def _side_stream_unit(enable_prefetch: bool) -> DropoutUnit:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    return SideStreamUnit(module=net, device="cpu", step_lr_interval="step")


@pytest.mark.parametrize("enable_prefetch", [True, False])
def test_auto_unit_resume_mid_epoch_is_bit_identical(tmp_path: Path, enable_prefetch: bool) -> None:
    _check_resume(tmp_path, _unit, enable_prefetch)


def test_resume_is_bit_identical_on_the_side_stream_prefetch_path(tmp_path: Path) -> None:
    _check_resume(tmp_path, _side_stream_unit, True)


def _check_resume(
    tmp_path: Path, make_unit: Callable[[bool], DropoutUnit], enable_prefetch: bool
) -> None:
    torch.manual_seed(123)
    reference = make_unit(enable_prefetch)
    train(reference, _loader(), max_epochs=2)
    expected_draw = torch.rand(3)

    def crash(state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == 13:  # mid epoch 2, right after a save
            raise _Crash

    torch.manual_seed(123)
    first = make_unit(enable_prefetch)
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_train_steps=13)
    with pytest.raises(_Crash):
        train(first, _loader(), max_epochs=2, callbacks=[saver, Lambda(on_train_step_end=crash)])

    torch.manual_seed(999)  # the restore must bring back every RNG, not rely on this
    resumed = make_unit(enable_prefetch)
    loader = _loader()
    assert DistributedCheckpointSaver.restore_from_latest(
        str(tmp_path), resumed, train_dataloader=loader
    )
    assert resumed.train_progress.num_steps_completed == 13
    train(resumed, loader, max_epochs=2)

    for a, b in zip(reference.module.parameters(), resumed.module.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]
    assert torch.equal(torch.rand(3), expected_draw)
