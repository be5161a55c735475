"""FLOP helpers: the transformer formula, measured counts and the dense peak table."""

from __future__ import annotations

import logging

import pytest
import torch

from torchkit.utils import measure_flops, peak_flops_for, transformer_flops_per_token
from torchkit.utils.flops import _DENSE_PEAKS


def _gpt2_small_params(vocab: int = 50304, d: int = 768, layers: int = 12) -> int:
    """GPT-2 small without position embeddings (tied head): 123.69 M."""
    block = (
        2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    )
    return vocab * d + layers * block + 2 * d


def test_gpt2_small_flops_per_token() -> None:
    n = _gpt2_small_params()
    assert round(n / 1e6, 2) == 123.69
    flops = transformer_flops_per_token(n, n_layers=12, n_heads=12, head_dim=64, seq_len=1024)
    assert round(6 * n / 1e6, 1) == 742.1
    assert round((flops - 6 * n) / 1e6, 1) == 113.2
    assert round(flops / 1e6, 1) == 855.4


def test_untied_embeddings_are_a_lookup() -> None:
    n = _gpt2_small_params() + 50304 * 768  # a separate input table adds params, not FLOPs
    tied = transformer_flops_per_token(_gpt2_small_params(), 12, 12, 64, 1024)
    untied = transformer_flops_per_token(n, 12, 12, 64, 1024, tied_embeddings=False,
                                         vocab_size=50304)  # fmt: skip
    assert untied == tied


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_layers": 0}, r"n_layers=0 is invalid: expected an int >= 1"),
        ({"seq_len": 2.0}, r"seq_len=2.0 is invalid"),
        ({"tied_embeddings": False}, r"vocab_size=None is invalid"),
    ],
)
def test_bad_transformer_sizes(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"n_params": 10, "n_layers": 1, "n_heads": 1, "head_dim": 1,
                               "seq_len": 1} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match=match):
        transformer_flops_per_token(**args)  # type: ignore[arg-type]


def test_measure_flops_counts_forward_and_backward_once() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(8, 16, bias=False), torch.nn.ReLU(), torch.nn.Linear(16, 4, bias=False)
    )
    forward = 2 * 5 * (8 * 16 + 16 * 4)
    # backward: weight grads of both layers, input grad of the second (the batch needs none)
    assert measure_flops(mlp, torch.ones(5, 8)) == 2 * forward + 2 * 5 * 16 * 4
    assert measure_flops(mlp, torch.ones(5, 8), backward=False) == forward
    assert all(p.grad is None for p in mlp.parameters())  # .grad untouched


def test_measure_flops_on_the_meta_device_and_dict_batches() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(8, 8, bias=False)

        def forward(self, x: torch.Tensor, scale: float = 1.0) -> dict[str, torch.Tensor]:
            return {"logits": self.proj(x) * scale}

    with torch.device("meta"):
        net = Net()
        batch = {"x": torch.empty(3, 8)}
    assert measure_flops(net, batch) == 2 * (2 * 3 * 8 * 8)


def test_measure_flops_without_a_grad_output_says_so() -> None:
    net = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match=r"backward=True is invalid: no floating output"):
        measure_flops(net, torch.ones(1, 2))


@pytest.mark.parametrize(
    ("name", "dtype", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.4e12),
        ("NVIDIA H100 80GB HBM3", "tf32", 494.7e12),
        ("NVIDIA H100 PCIe", "bf16", 756e12),
        ("NVIDIA H100 PCIe", "tf32", 378e12),
        ("NVIDIA H100 NVL", "bf16", 835e12),
        ("NVIDIA H200", "bf16", 989.4e12),
        ("NVIDIA H200", torch.float16, 989.4e12),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312e12),
        ("NVIDIA A100 80GB PCIe", "tf32", 156e12),
        ("NVIDIA A10", "bf16", 125e12),
    ],
)
def test_device_name_table(name: str, dtype: str | torch.dtype, peak: float) -> None:
    assert peak_flops_for(name, dtype) == peak


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 4090", "NVIDIA H100", "NVIDIA A10G"])
def test_an_unknown_device_gives_none_and_a_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert peak_flops_for(name, "bf16") is None
    assert len(caplog.records) == 1 and "pass peak_flops" in caplog.records[0].message.lower()


def test_fp32_counts_as_tf32_when_tf32_matmuls_are_allowed() -> None:
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32 matmuls allowed
        assert peak_flops_for("NVIDIA H200", torch.float32) == 494.7e12
        torch.set_float32_matmul_precision("highest")
        assert peak_flops_for("NVIDIA H200", torch.float32) == 66.9e12
    finally:
        torch.set_float32_matmul_precision(before)


def test_hopper_bf16_peaks_are_dense() -> None:
    # sparse (2:4) datasheet figures are about 2e15; a dense Hopper peak is below 1.1e15
    hopper = {k: v for k, v in _DENSE_PEAKS.items() if k.startswith(("H100", "H200"))}
    assert len(hopper) == 4
    assert all(v["bf16"] <= 1.1e15 for v in hopper.values())


def test_bad_dtype() -> None:
    with pytest.raises(ValueError, match=r"dtype='fp8' is invalid"):
        peak_flops_for("NVIDIA H200", "fp8")
    with pytest.raises(ValueError, match=r"dtype=torch.int8 is invalid"):
        peak_flops_for("NVIDIA H200", torch.int8)
