"""Train a small BERT-style text classifier with HFAutoUnit, export it, reload it: all offline.

The model is built from a config (no download) and the data are synthetic sentences about
three topics, tokenized by a word-level tokenizer built here. Run with ``HF_HUB_OFFLINE=1``::

    HF_HUB_OFFLINE=1 python examples/hf_text_classification.py --output-dir runs/hf_example
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers imports huggingface_hub

import torch
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedTokenizerFast,
)

from torchkit import fit
from torchkit.callbacks import MetricsLogger
from torchkit.integrations.hf import HFAutoUnit, HFExport
from torchkit.loggers import InMemoryLogger, StdoutLogger
from torchkit.utils import seed

TOPICS = {
    "sports": "goal match team coach score league player stadium referee season",
    "cooking": "oven recipe flour sauce garlic bake simmer pepper butter kitchen",
    "computing": "kernel compiler memory thread cache python server network binary code",
}
FILLER = ["the", "a", "of", "and", "to", "in", "was", "with", "on", "very", "today", "this"]
LABELS = list(TOPICS)


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the example's words (built here, nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = sorted({w for text in TOPICS.values() for w in text.split()} | set(FILLER))
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({w: i + 4 for i, w in enumerate(words)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]",
    )  # fmt: skip


def sentences(n: int, rng: random.Random) -> list[tuple[str, int]]:
    """``n`` sentences of 5-10 words: 2-4 words of one topic among filler words."""
    out = []
    for _ in range(n):
        label = rng.randrange(len(LABELS))
        topic = TOPICS[LABELS[label]].split()
        words = rng.choices(FILLER, k=rng.randint(3, 6)) + rng.choices(topic, k=rng.randint(2, 4))
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


def loader(data: list[tuple[str, int]], tokenizer: Any, batch_size: int, shuffle: bool) -> Any:
    def collate(rows: list[tuple[str, int]]) -> dict[str, Any]:
        batch = dict(tokenizer([t for t, _ in rows], padding=True, return_tensors="pt"))
        batch["labels"] = torch.tensor([label for _, label in rows])
        return batch

    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, collate_fn=collate)  # type: ignore[arg-type]


def build_model(tokenizer: Any) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=32, num_labels=len(LABELS),
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
    )  # fmt: skip
    return BertForSequenceClassification(config)


def main(argv: Sequence[str] | None = None) -> float:
    """Train, evaluate, export and reload; returns the eval accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default="runs/hf_text_classification")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=480)
    args = parser.parse_args(argv)
    seed(0)
    rng = random.Random(0)
    tokenizer = make_tokenizer()
    train_loader = loader(sentences(args.train_size, rng), tokenizer, 32, shuffle=True)
    eval_loader = loader(sentences(192, rng), tokenizer, 64, shuffle=False)
    export_dir = os.path.join(args.output_dir, "model")

    unit = HFAutoUnit(
        module=build_model(tokenizer), device="cpu",
        optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3),
        metrics={"accuracy": MulticlassAccuracy(num_classes=len(LABELS))},
    )  # fmt: skip
    memory = InMemoryLogger()
    fit(unit, train_loader, eval_loader, max_epochs=args.epochs, callbacks=[
        MetricsLogger([memory, StdoutLogger()], every_n_steps=10),
        HFExport(export_dir, tokenizer=tokenizer),
    ])  # fmt: skip
    accuracy = [r["eval/accuracy"] for r in memory.log_buffer.values() if "eval/accuracy" in r]
    print(f"eval accuracy after {args.epochs} epochs: {accuracy[-1]:.3f}")

    # the export is a regular transformers folder
    model = AutoModelForSequenceClassification.from_pretrained(export_dir).eval()
    reloaded = AutoTokenizer.from_pretrained(export_dir)
    texts = ["the coach was very happy with the team today", "bake the flour with butter"]
    with torch.no_grad():
        predicted = model(**reloaded(texts, padding=True, return_tensors="pt")).logits.argmax(-1)
    for text, label in zip(texts, predicted.tolist()):
        print(f"{text!r} -> {model.config.id2label[label]}")
    return accuracy[-1]


if __name__ == "__main__":
    main()
