"""The GPU benchmark script: its GPT-2 has the shape the MFU figures assume, and its whole
CPU-side logic runs (a tiny model on the CPU, compile backend "eager")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.gpt2_model import GPT, GPTConfig
from benchmarks.gpu_gpt2 import main
from torchkit.utils import transformer_flops_per_token


def test_the_benchmark_model_is_gpt2_small() -> None:
    with torch.device("meta"):
        model = GPT(GPTConfig())
    n = model.num_params()
    assert n == 123_689_472  # without position embeddings, tied head
    assert round(transformer_flops_per_token(n, 12, 12, 64, 1024) / 1e6, 1) == 855.4


@pytest.mark.slow
def test_tiny_run_on_cpu_writes_the_report(tmp_path: Path) -> None:
    variants = ["raw_eager", "auto_eager", "raw_compiled", "auto_compiled_logging",
                "d2_prefetch_on", "auto_accum4x4", "auto_reduce_overhead"]  # fmt: skip
    argv = ["--device", "cpu", "--tiny", "--out", str(tmp_path), "--rounds", "1", "--steps",
            "2", "--only", *variants]  # fmt: skip
    report = main(argv)
    assert list(report["variants"]) == variants
    for name, res in report["variants"].items():
        assert res["status"] == "ok", (name, res["status"])
        assert res["ms_per_step"] > 0 and res["tokens_per_s"] > 0
        assert res["graphs_in_rounds"] == 0  # nothing recompiles once warmed up
    # AutoUnit runs the same numerics as the raw loop (first losses, same seed and data)
    assert report["variants"]["auto_eager"]["loss_parity_max_rel"] < 1e-3
    assert report["variants"]["auto_accum4x4"]["loss_parity_max_rel"] < 1e-3
    assert set(report["bars"]) >= {"auto_eager_ratio>=0.99", "small_overhead_us<=20"}
    saved = json.loads((tmp_path / "gpu_gpt2.json").read_text())
    assert saved["meta"]["settings"]["cfg"]["n_layer"] == 2
    assert "| auto_reduce_overhead |" in (tmp_path / "gpu_gpt2.md").read_text()
