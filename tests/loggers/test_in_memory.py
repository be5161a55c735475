"""InMemoryLogger keeps ``{step: {name: value}}``."""

from __future__ import annotations

import torch

from torchkit.loggers import InMemoryLogger, MetricLogger


def test_log_buffer_layout() -> None:
    lg = InMemoryLogger()
    assert isinstance(lg, MetricLogger)
    lg.log("a", torch.tensor(1.5), step=2)
    lg.log_dict({"b": 2, "a": 3.0}, step=2)
    lg.log("a", 4.0, step=5)
    lg.close()
    assert lg.log_buffer == {2: {"a": 3.0, "b": 2.0}, 5: {"a": 4.0}}
