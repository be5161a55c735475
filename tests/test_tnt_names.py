"""TNT names at the matching torchkit locations, and what each one does."""

from __future__ import annotations

import pytest
import torch

from torchkit.loop.state import _check_loop_condition
from torchkit.units import (
    EvalUnit,
    PredictUnit,
    TestUnit,
    TEvalUnit,
    TPredictUnit,
    TrainUnit,
    TTestUnit,
    TTrainUnit,
)
from torchkit.utils import sync_bool
from torchkit.utils.lr_scheduler import TLRScheduler
from torchkit.utils.version import is_torch_version_geq


def test_check_loop_condition_raises_for_bad_limits_and_returns_none() -> None:
    assert _check_loop_condition("max_epochs", None) is None
    assert _check_loop_condition("max_epochs", 0) is None
    with pytest.raises(ValueError, match=r"Invalid value provided for max_epochs: -1"):
        _check_loop_condition("max_epochs", -1)


def test_unit_type_aliases() -> None:
    assert TTrainUnit.__origin__ is TrainUnit  # type: ignore[attr-defined]
    assert TEvalUnit.__origin__ is EvalUnit  # type: ignore[attr-defined]
    assert TPredictUnit.__origin__ is PredictUnit  # type: ignore[attr-defined]
    assert TTestUnit.__origin__ is TestUnit  # type: ignore[attr-defined]


def test_tlr_scheduler_is_the_scheduler_base_class() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    assert isinstance(torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), TLRScheduler)
    assert TLRScheduler is torch.optim.lr_scheduler.LRScheduler


def test_is_torch_version_geq() -> None:
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    assert is_torch_version_geq(f"{major}.{minor}.0")
    assert is_torch_version_geq("2.4")
    assert not is_torch_version_geq(f"{major}.{minor + 1}.0")
    with pytest.raises(TypeError, match=r"version=2.4 is invalid: expected a version string"):
        is_torch_version_geq(2.4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("val", "mode", "expected"),
    [(True, 1, True), (False, 1, False), (True, 0.5, True), (False, 0.0, True), (True, 2, False)],
)
def test_sync_bool_count_and_fraction_modes_on_one_rank(
    val: bool, mode: float, expected: bool
) -> None:
    assert sync_bool(val, None, mode) is expected


@pytest.mark.parametrize(
    ("mode", "exc", "match"),
    [("most", ValueError, r"coherence_mode='most' is invalid"),
     (1.5, ValueError, r"coherence_mode=1.5 is invalid: expected an int >= 0 or a float"),
     (None, TypeError, r"coherence_mode=None is invalid")],
)  # fmt: skip
def test_sync_bool_rejects_bad_modes(mode: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        sync_bool(True, coherence_mode=mode)  # type: ignore[arg-type]
