"""Tiny config-built transformers models and synthetic batches (no files, no hub)."""

from __future__ import annotations

from typing import Any

import torch

VOCAB = 101
PAD = 0


def tiny_gpt2(seed: int = 0) -> Any:
    """A 2-layer GPT-2 with 32 hidden units, no dropout (deterministic gradients)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=64,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
    )  # fmt: skip
    return GPT2LMHeadModel(config)


def tiny_bert(seed: int = 0, num_labels: int = 3) -> Any:
    """A 2-layer BERT sequence classifier with 32 hidden units."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=PAD,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def lm_batch(lengths: list[int], seq_len: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded LM batch: row i has ``lengths[i]`` real tokens, the rest is -100 / mask 0."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(lengths), seq_len), generator=g)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids.masked_fill(mask == 0, PAD)
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def concat(*batches: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def max_grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


def reference_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Gradients of the model's own (mean over tokens) loss on one batch."""
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    return grads(model)


def frozen_sgd(params: Any) -> torch.optim.Optimizer:
    """lr 0: the step leaves the weights, so the window's normalised gradients can be read."""
    return torch.optim.SGD(params, lr=0.0)


def tiny_tokenizer() -> Any:
    """A word-level fast tokenizer over the tiny models' vocabulary: ``w3 w4 ...``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": PAD, "[BOS]": 1, "[EOS]": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[PAD]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]"
    )


def tiny_t5(seed: int = 0) -> Any:
    """A 2-layer T5 encoder-decoder with 32 hidden units, no dropout."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
        dropout_rate=0.0, pad_token_id=PAD, eos_token_id=2, decoder_start_token_id=PAD,
    )  # fmt: skip
    return T5ForConditionalGeneration(config)
