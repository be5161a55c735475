"""Two training stages on scikit-learn's digits with ``run_stages``: pretrain, then fine-tune.

Stage 1 pretrains an MLP trunk on an easier task (is the digit even or odd?). Stage 2 builds
a new unit, a fresh 10-class head on that trunk, takes the trunk's weights from stage 1's
final checkpoint (``handoff="modules"``: a new optimizer and schedule) and fine-tunes it
on the real labels with evaluation. Run it again and it resumes: finished stages are skipped,
an interrupted one continues from its latest checkpoint::

    python examples/digits_stages.py                  # runs/digits_stages: stages.json,
    python examples/digits_stages.py                  # stages/00_pretrain/, ... -> skips

Each stage keeps its metric history in ``stages/<i>_<name>/metrics/metrics.csv``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import torchkit
from torchkit import AutoUnit, State
from torchkit.stages import Stage, run_stages

Batch = tuple[torch.Tensor, torch.Tensor]


def load_digits_split(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """80/20 stratified split of the 1,797 8x8 digit images, scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=seed, stratify=y
    )

    def to_ds(a: Any, b: Any) -> TensorDataset:
        return TensorDataset(
            torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.long)
        )

    return to_ds(x_tr, y_tr), to_ds(x_te, y_te)


def parity(ds: TensorDataset) -> TensorDataset:
    """The pretraining task: the same images labelled even (0) or odd (1)."""
    x, y = ds.tensors
    return TensorDataset(x, y % 2)


class ClassifierUnit(AutoUnit[Batch]):
    """Cross-entropy on ``trunk -> head``; the trunk may come from an earlier stage."""

    def __init__(self, trunk: torch.nn.Module, num_classes: int, *, epochs: int, lr: float):
        self.epochs, self.lr = epochs, lr
        head = torch.nn.Linear(128, num_classes)
        # named submodules: stage 2's `trunk.*` keys match stage 1's checkpoint, its head
        # (a different name and shape) keeps its fresh initialisation
        layers = OrderedDict([("trunk", trunk), (f"head{num_classes}", head)])
        super().__init__(module=torch.nn.Sequential(layers), device="cpu",
                         step_lr_interval="epoch")  # fmt: skip

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        logits = self.module(x)
        return torch.nn.functional.cross_entropy(logits, y), logits

    def configure_optimizers_and_lr_scheduler(self, module: torch.nn.Module) -> Any:
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=1e-4)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)


def make_trunk() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.1))


@torch.no_grad()
def held_out_accuracy(unit: ClassifierUnit, loader: DataLoader[Batch]) -> float:
    """Accuracy of the fine-tuned module on ``loader``."""
    unit.module.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((unit.module(x).argmax(dim=1) == y).sum())
        total += len(y)
    return correct / total


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/digits_stages")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torchkit.utils.seed(args.seed)
    train_ds, test_ds = load_digits_split(args.seed)
    test_dl = DataLoader(test_ds, batch_size=256)
    stages = [
        Stage(
            "pretrain",
            lambda prev: ClassifierUnit(make_trunk(), 2, epochs=args.pretrain_epochs, lr=3e-3),
            DataLoader(parity(train_ds), batch_size=32, shuffle=True),
            max_epochs=args.pretrain_epochs,
        ),
        Stage(
            "finetune",
            # a new unit on a new trunk object: handoff="modules" loads stage 1's trunk weights
            lambda prev: ClassifierUnit(make_trunk(), 10, epochs=args.finetune_epochs, lr=2e-3),
            DataLoader(train_ds, batch_size=32, shuffle=True),
            test_dl,
            max_epochs=args.finetune_epochs,
            handoff="modules",
        ),
    ]
    results = run_stages(stages, dirpath=args.output_dir)
    manifest = json.loads((Path(args.output_dir) / "stages.json").read_text())
    for result, entry in zip(results, manifest["stages"]):
        how = "skipped (done earlier)" if result.state is None else "ran"
        print(f"stage {result.name}: {how}; status {entry['status']}")
    accuracy = held_out_accuracy(results[-1].unit, test_dl)
    print(f"held-out accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
