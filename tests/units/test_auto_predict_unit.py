"""AutoPredictUnit with predict()."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.units.test_auto_unit import mlp
from torchkit import AutoPredictUnit, predict
from torchkit.loop.state import State


class Collect(AutoPredictUnit[torch.Tensor]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outputs: list[torch.Tensor] = []
        self.steps: list[int] = []

    def on_predict_step_end(
        self, state: State, data: torch.Tensor, step: int, outputs: Any
    ) -> None:
        self.outputs.append(outputs)
        self.steps.append(step)


@pytest.mark.parametrize("prefetch", [True, False])
def test_predict_runs_module_on_each_batch(prefetch: bool) -> None:
    xs = [torch.randn(3, 8) for _ in range(3)]
    unit = Collect(module=mlp(), device="cpu", enable_prefetch=prefetch)
    predict(unit, xs)
    ref = mlp().eval()
    assert unit.steps == [0, 1, 2]
    for x, out in zip(xs, unit.outputs):
        torch.testing.assert_close(out, ref(x))
        assert out.is_inference()


def test_predict_bf16_autocast() -> None:
    unit = Collect(module=mlp(), device="cpu", precision="bf16")
    predict(unit, [torch.randn(2, 8)])
    assert unit.outputs[0].dtype == torch.bfloat16


def test_predict_rejects_bad_precision() -> None:
    with pytest.raises(ValueError, match="precision='half' is invalid"):
        AutoPredictUnit(module=mlp(), device="cpu", precision="half")
