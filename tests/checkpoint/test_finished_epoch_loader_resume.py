"""A StatefulDataLoader restored from an epoch-end checkpoint shuffles its next epoch exactly
as the uninterrupted run, whether its sampler has its own generator or seeds a private one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from torchkit import TrainUnit, train
from torchkit.callbacks import DistributedCheckpointSaver


class Recorder(TrainUnit[torch.Tensor]):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[int]] = []

    def train_step(self, state: Any, data: torch.Tensor) -> None:
        self.seen.append(data.tolist())


@pytest.mark.parametrize("own_generator", [False, True])
def test_epoch_end_resume_reshuffles_like_the_uninterrupted_run(
    tmp_path: Path, own_generator: bool
) -> None:
    def loader() -> StatefulDataLoader:
        torch.manual_seed(0)  # torchdata seeds the sampler's private generator from it
        gen = torch.Generator().manual_seed(3) if own_generator else None
        return StatefulDataLoader(torch.arange(8), batch_size=2, shuffle=True, generator=gen)

    full = Recorder()
    train(full, loader(), max_epochs=3)
    ckpt = str(tmp_path / "ckpt")
    train(Recorder(), loader(), max_epochs=1,
          callbacks=[DistributedCheckpointSaver(ckpt, save_every_n_epochs=1)])  # fmt: skip
    resumed, dl = Recorder(), loader()
    assert DistributedCheckpointSaver.restore_from_latest(ckpt, resumed, train_dataloader=dl)
    train(resumed, dl, max_epochs=3)
    assert resumed.seen == full.seen[4:]
