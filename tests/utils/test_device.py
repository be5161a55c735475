"""copy_data_to_device keeps container types and nesting."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict
from typing import Any, NamedTuple

import pytest
import torch

from torchkit.utils import copy_data_to_device

# The "meta" device lets a CPU-only machine check that every tensor really moved.
META = torch.device("meta")


class Pair(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


@dataclasses.dataclass
class Batch:
    inputs: torch.Tensor
    extras: dict[str, Any]
    label: str = "b"


class MyList(list):  # type: ignore[type-arg]
    pass


def _all_on(data: Any, device: torch.device) -> bool:
    if isinstance(data, torch.Tensor):
        return data.device == device
    if isinstance(data, dict):
        return all(_all_on(v, device) for v in data.values())
    if isinstance(data, (list, tuple)):
        return all(_all_on(v, device) for v in data)
    if dataclasses.is_dataclass(data):
        return all(_all_on(getattr(data, f.name), device) for f in dataclasses.fields(data))
    return True


@pytest.mark.parametrize(
    "data",
    [
        torch.ones(2),
        [torch.ones(1), torch.zeros(2)],
        (torch.ones(1), torch.zeros(2)),
        {"a": torch.ones(1), "b": [torch.zeros(1)]},
        OrderedDict(a=torch.ones(1), b=torch.zeros(1)),
        defaultdict(list, {"a": torch.ones(1)}),
        Pair(torch.ones(1), torch.zeros(1)),
        Batch(torch.ones(2), {"mask": torch.ones(1)}),
        MyList([torch.ones(1)]),
    ],
    ids=["tensor", "list", "tuple", "dict", "ordereddict", "defaultdict", "namedtuple",
         "dataclass", "list_subclass"],
)  # fmt: skip
def test_keeps_container_type_and_moves_every_tensor(data: Any) -> None:
    out = copy_data_to_device(data, META)
    assert type(out) is type(data)
    assert _all_on(out, META)
    assert _all_on(data, torch.device("cpu"))  # the input is not modified


def test_nested_structure_is_kept() -> None:
    data = {"outer": [Pair(torch.ones(1), torch.zeros(1)), (torch.ones(2), {"k": torch.ones(3)})]}
    out = copy_data_to_device(data, "meta")
    assert type(out["outer"]) is list
    assert type(out["outer"][0]) is Pair
    assert type(out["outer"][1]) is tuple
    assert out["outer"][1][1]["k"].shape == (3,)
    assert out["outer"][1][1]["k"].device == META


def test_defaultdict_keeps_its_factory() -> None:
    out = copy_data_to_device(defaultdict(list, {"a": torch.ones(1)}), META)
    assert out.default_factory is list
    assert out["missing"] == []


def test_dataclass_non_tensor_fields_kept() -> None:
    out = copy_data_to_device(Batch(torch.ones(1), {"n": 3}, label="z"), META)
    assert out.label == "z"
    assert out.extras == {"n": 3}
    assert out.inputs.device == META


def test_non_tensor_leaves_returned_unchanged() -> None:
    data = [1, "s", None, 2.5]
    assert copy_data_to_device(data, "cpu") == data


def test_cpu_to_cpu_keeps_values() -> None:
    t = torch.arange(4.0)
    out = copy_data_to_device({"t": t}, torch.device("cpu"))
    assert torch.equal(out["t"], t)


def test_objects_with_to_are_moved() -> None:
    class Holder:
        def __init__(self) -> None:
            self.device: Any = None

        def to(self, device: torch.device, non_blocking: bool = False) -> Holder:
            self.device = device
            return self

    h = copy_data_to_device(Holder(), META)
    assert h.device == META
