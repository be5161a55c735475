"""Training-loop stall of one checkpoint of a ~100 MB model: sync DCP save vs async DCP save
(snapshot only) vs a plain ``torch.save``. Prints one JSON line (medians, seconds)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from typing import Any

import torch

from torchkit import TrainUnit
from torchkit.callbacks import DistributedCheckpointSaver
from torchkit.checkpoint import CheckpointName


class Unit(TrainUnit[Any]):
    def __init__(self) -> None:
        super().__init__()
        # 6 x 2048 x 2048 fp32 weights ~ 100 MB
        self.net = torch.nn.Sequential(*[torch.nn.Linear(2048, 2048) for _ in range(6)])

    def train_step(self, state: Any, data: Any) -> None:
        return None


def _stall(saver: DistributedCheckpointSaver, unit: Unit, i: int) -> float:
    t0 = time.perf_counter()
    saver._checkpoint_impl(
        None, unit, checkpoint_id=f"{saver.dirpath}/epoch_0_train_step_{i}",  # type: ignore[arg-type]
        name=CheckpointName(0, i), extra={}, overrides={},
    )  # fmt: skip
    stall = time.perf_counter() - t0
    saver._wait_for_pending()
    return stall


def main(repeats: int = 3) -> None:
    torch.set_num_threads(2)
    unit = Unit()
    unit.on_checkpoint_save = lambda state, cid: None  # type: ignore[method-assign]
    mb = sum(p.numel() * p.element_size() for p in unit.net.parameters()) / 2**20
    out: dict[str, Any] = {"model_mb": round(mb, 1)}
    with tempfile.TemporaryDirectory() as root:
        for label, is_async in (("sync_dcp_s", False), ("async_dcp_stall_s", True)):
            saver = DistributedCheckpointSaver(f"{root}/{label}", async_checkpoint=is_async)
            out[label] = statistics.median(_stall(saver, unit, i) for i in range(repeats))
        times = []
        for i in range(repeats):
            t0 = time.perf_counter()
            torch.save(unit.net.state_dict(), f"{root}/plain_{i}.pt")
            times.append(time.perf_counter() - t0)
        out["torch_save_s"] = statistics.median(times)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
