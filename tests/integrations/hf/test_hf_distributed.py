"""The HF units on 2 gloo DDP ranks: exact token-sum accumulation, generate, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from tests.integrations.hf.tiny import (
    concat,
    frozen_sgd,
    grads,
    lm_batch,
    max_grad_diff,
    reference_grads,
    tiny_gpt2,
)
from torchkit import predict, train
from torchkit.callbacks import Lambda
from torchkit.integrations.hf import HFAutoPredictUnit, HFAutoUnit, HFExport
from torchkit.utils import spawn_multi_process

pytestmark = pytest.mark.distributed

# each rank gets two micro-batches; the ranks' token counts differ (13 + 8 vs 18 + 5)
LENGTHS = [[[10, 3], [6, 2]], [[9, 9], [1, 4]]]


def rank_micro_batches(rank: int) -> list[dict[str, torch.Tensor]]:
    return [lm_batch(n, seed=10 * rank + i) for i, n in enumerate(LENGTHS[rank])]


def _ddp_run(export_dir: str) -> dict[str, Any]:
    rank = dist.get_rank()
    out: dict[str, Any] = {}
    for loss in ("token_sum", "model"):
        unit = HFAutoUnit(
            module=tiny_gpt2(), loss=loss, strategy="ddp", device="cpu", optimizer=frozen_sgd,
            gradient_accumulation_steps=2, zero_grad_at_train_step_start=True,
        )  # fmt: skip
        export = [HFExport(export_dir)] if loss == "token_sum" else []
        train(unit, rank_micro_batches(rank), max_epochs=1, callbacks=export)
        out[loss] = grads(unit.strategy.unwrap(unit.module))
    prompts = lm_batch([6, 6], seq_len=6, seed=20 + rank)
    del prompts["labels"]
    generator = HFAutoPredictUnit(
        module=tiny_gpt2(), strategy="ddp", device="cpu",
        generate={"max_new_tokens": 5, "do_sample": False},
    )  # fmt: skip
    seen: list[torch.Tensor] = []
    keep = Lambda(on_predict_step_end=lambda s, u: seen.append(s.predict_state.step_output))
    predict(generator, [prompts], callbacks=[keep])
    out["generated"], out["prompts"] = seen[0], prompts
    return out


def test_ddp_token_sum_equals_the_global_batch_and_generate_runs_on_the_wrapped_model(
    tmp_path: Path,
) -> None:
    from transformers import GPT2LMHeadModel

    export_dir = str(tmp_path / "export")
    out = spawn_multi_process(2, "gloo", _ddp_run, export_dir)
    everything = concat(*rank_micro_batches(0), *rank_micro_batches(1))
    expected = reference_grads(tiny_gpt2(), everything)
    for rank in (0, 1):
        assert max_grad_diff(out[rank]["token_sum"], expected) <= 1e-6
        assert max_grad_diff(out[rank]["model"], expected) > 1e-4
    reference = tiny_gpt2().eval()
    for rank in (0, 1):
        with torch.no_grad():
            direct = reference.generate(**out[rank]["prompts"], max_new_tokens=5, do_sample=False)
        assert out[rank]["generated"].shape == (2, 11)
        assert torch.equal(out[rank]["generated"], direct)
    # rank 0 exported the DDP-wrapped model's full weights under the model's own key names
    loaded = GPT2LMHeadModel.from_pretrained(export_dir).eval()
    batch = lm_batch([10, 4], seed=7)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, reference(**batch).logits)
