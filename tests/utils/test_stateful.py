"""The Stateful protocol and MultiStateful."""

from __future__ import annotations

import torch

from torchkit import Progress
from torchkit.utils import MultiStateful, Stateful


def test_stateful_protocol_matches_torch_objects_and_progress() -> None:
    net = torch.nn.Linear(1, 1)
    assert isinstance(net, Stateful)
    assert isinstance(torch.optim.SGD(net.parameters(), lr=0.1), Stateful)
    assert isinstance(Progress(), Stateful)
    assert not isinstance(3, Stateful)
    assert not isinstance({"state_dict": 1}, Stateful)


def test_multi_stateful_round_trip() -> None:
    a, b = Progress(1, 2, 3), torch.nn.Linear(2, 1)
    src = MultiStateful({"progress": a, "net": b})
    sd = src.state_dict()
    assert set(sd) == {"progress", "net"}
    c, d = Progress(), torch.nn.Linear(2, 1)
    MultiStateful({"progress": c, "net": d}).load_state_dict(sd)
    assert c == a
    assert torch.equal(d.weight, b.weight)
    assert isinstance(src, Stateful)
