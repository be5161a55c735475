"""HFAutoPredictUnit: logits, generated ids equal to a direct ``generate``, decoded text."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from tests.integrations.hf.tiny import lm_batch, tiny_gpt2, tiny_tokenizer
from torchkit import predict
from torchkit.callbacks import Lambda
from torchkit.integrations.hf import HFAutoPredictUnit

GREEDY = {"max_new_tokens": 5, "do_sample": False}


def run(unit: HFAutoPredictUnit, batches: list[dict[str, Any]]) -> list[Any]:
    outs: list[Any] = []
    keep = Lambda(on_predict_step_end=lambda s, u: outs.append(s.predict_state.step_output))
    predict(unit, batches, callbacks=[keep])
    return outs


def prompts() -> dict[str, torch.Tensor]:
    batch = lm_batch([6, 6, 6], seq_len=6, seed=3)  # unpadded prompts: B=3, T=6
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def test_generate_gives_prompt_plus_new_tokens_equal_to_direct_generate() -> None:
    model = tiny_gpt2()
    reference = copy.deepcopy(model).eval()
    batch = prompts()
    with torch.no_grad():
        expected = reference.generate(**batch, **GREEDY)
    unit = HFAutoPredictUnit(module=model, generate=GREEDY, device="cpu")
    first = run(unit, [{**batch, "idx": torch.arange(3), "labels": batch["input_ids"]}])[0]
    assert first.shape == (3, 6 + 5)
    assert torch.equal(first, expected)
    assert torch.equal(run(unit, [batch])[0], first)  # greedy: identical across runs


def test_generated_ids_are_decoded_with_the_tokenizer() -> None:
    tokenizer = tiny_tokenizer()
    model = tiny_gpt2()
    batch = prompts()
    with torch.no_grad():
        ids = copy.deepcopy(model).eval().generate(**batch, **GREEDY)
    unit = HFAutoPredictUnit(module=model, generate=GREEDY, tokenizer=tokenizer, device="cpu")
    texts = run(unit, [batch])[0]
    assert texts == tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert len(texts) == 3 and all(len(t.split()) == 11 for t in texts)


def test_without_generate_the_step_returns_the_logits() -> None:
    model = tiny_gpt2()
    batch = prompts()
    with torch.no_grad():
        expected = copy.deepcopy(model).eval()(**batch).logits
    out = run(HFAutoPredictUnit(module=model, device="cpu"), [{**batch, "idx": 0}])[0]
    assert torch.equal(out, expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"module": torch.nn.Linear(2, 2)}, ValueError, r"module=Linear instance is invalid"),
        ({"generate": "greedy"}, ValueError, r"generate='greedy' is invalid: expected False"),
        ({"tokenizer": object()}, TypeError, r"tokenizer=object instance is invalid"),
        ({"label_key": 3}, ValueError, r"label_key=3 is invalid"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HFAutoPredictUnit(**{"module": tiny_gpt2(), "device": "cpu", **kwargs})


def test_a_tokenizer_without_generate_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tokenizer is given but generate=False"):
        HFAutoPredictUnit(module=tiny_gpt2(), tokenizer=tiny_tokenizer(), device="cpu")
