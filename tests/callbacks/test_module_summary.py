"""ModuleSummary: counts, sizes and FLOPs per submodule."""

from __future__ import annotations

import pytest
import torch

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import ModuleSummary
from torchkit.callbacks.module_summary import summarize


def test_rows_with_counts_sizes_and_flops() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net[2].weight.requires_grad_(False)
    rows = summarize("net", net, max_depth=1, example_input=torch.zeros(3, 4))
    by_name = {r.name: r for r in rows}
    assert [r.name for r in rows] == ["net", "net.0", "net.1", "net.2"]
    assert by_name["net"].num_parameters == 4 * 8 + 8 + 8 * 2 + 2
    assert by_name["net.2"].num_trainable == 2
    assert by_name["net.0"].size_mib == pytest.approx((32 + 8) * 4 / 2**20)
    assert by_name["net.0"].flops == 2 * 3 * 4 * 8
    assert by_name["net"].flops == 2 * 3 * 4 * 8 + 2 * 3 * 8 * 2


def test_callback_summarises_tracked_modules_once() -> None:
    texts: list[str] = []
    ms = ModuleSummary(max_depth=0, process_fn=texts.append)
    train(ClassifierUnit(), loader(8, 4), max_epochs=2, callbacks=[ms])
    assert len(texts) == 1 and "# Params" in texts[0] and "10" in texts[0]
    assert [r.num_parameters for r in ms.summaries["module"]] == [10]


def test_bad_depth() -> None:
    with pytest.raises(ValueError, match=r"max_depth=-1 is invalid"):
        ModuleSummary(max_depth=-1)
