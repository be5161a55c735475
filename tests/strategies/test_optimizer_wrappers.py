"""FSDPOptimizerWrapper / FSDP2OptimizerWrapper: optimizer state round-trips (TNT's names)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from torchkit.strategies import FSDP2OptimizerWrapper, FSDPOptimizerWrapper
from torchkit.utils import spawn_multi_process


def _stepped(module: torch.nn.Module) -> torch.optim.Optimizer:
    opt = torch.optim.Adam(module.parameters(), lr=0.1)
    module(torch.ones(3, 4)).sum().backward()
    opt.step()
    return opt


def _exp_avgs(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [opt.state[p]["exp_avg"].detach().clone() for g in opt.param_groups for p in g["params"]]


def test_fsdp2_wrapper_round_trips_an_unsharded_module() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    opt = _stepped(net)
    sd = FSDP2OptimizerWrapper(net, opt).state_dict()
    assert sorted(sd["state"]) == ["bias", "weight"]  # keyed by parameter name
    fresh = torch.optim.Adam(net.parameters(), lr=0.1)
    FSDP2OptimizerWrapper(net, fresh).load_state_dict(sd)
    for a, b in zip(_exp_avgs(fresh), _exp_avgs(opt), strict=True):
        torch.testing.assert_close(a, b)


def _sharded_round_trips() -> dict[str, Any]:
    from torchkit.strategies import FSDP2Strategy, FSDPStrategy

    out: dict[str, Any] = {}
    for name, strategy, wrapper in (
        ("fsdp1", FSDPStrategy(), FSDPOptimizerWrapper),
        ("fsdp2", FSDP2Strategy(), FSDP2OptimizerWrapper),
    ):
        torch.manual_seed(0)
        module = strategy.prepare(torch.nn.Sequential(torch.nn.Linear(4, 2)), torch.device("cpu"))
        opt = _stepped(module)
        sd = wrapper(module, opt).state_dict()
        fresh = torch.optim.Adam(module.parameters(), lr=0.1)
        wrapper(module, fresh).load_state_dict(sd)
        again = wrapper(module, fresh).state_dict()  # the loaded state, read back the same way
        out[name] = sorted(again["state"]) == sorted(sd["state"]) and all(
            _same(again["state"][k][s], sd["state"][k][s])
            for k in sd["state"] for s in ("exp_avg", "exp_avg_sq")
        )  # fmt: skip
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    local = [t.to_local() if hasattr(t, "to_local") else t for t in (a, b)]
    return bool(torch.equal(local[0], local[1])) and float(local[0].abs().sum()) > 0


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_sharded_wrappers_round_trip_on_two_ranks() -> None:
    results = spawn_multi_process(2, "gloo", _sharded_round_trips)
    assert results == [{"fsdp1": True, "fsdp2": True}] * 2
