"""Train an MLP on scikit-learn's handwritten digits with ``AutoUnit`` and ``fit``.

The data ships inside scikit-learn, so nothing is downloaded. The run shows what a real job
uses: torchmetrics accuracy, a progress bar, TensorBoard and CSV logs, early stopping, a run
summary, and atomic checkpoints it can resume from::

    python examples/digits.py                      # train; logs and checkpoints in runs/digits
    python examples/digits.py --resume             # continue from the latest checkpoint
    tensorboard --logdir runs/digits/tensorboard   # look at the curves

Early stopping and the best checkpoint watch a validation split; the held-out test split is
used once, by ``fit``'s test phase after training, and its accuracy is printed at the end
(>= 95 % in well under a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import torchkit
from torchkit import AutoUnit, State
from torchkit.callbacks import (
    DistributedCheckpointSaver,
    EarlyStopping,
    LearningRateMonitor,
    MetricsLogger,
    RunSummary,
    TQDMProgressBar,
)
from torchkit.checkpoint import BestCheckpointConfig
from torchkit.loggers import CSVLogger, TensorBoardLogger

Batch = tuple[torch.Tensor, torch.Tensor]


def load_digits_split(seed: int = 0) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """Train / validation / test splits (72 / 8 / 20 %, stratified) of the 1,797 8x8 digit
    images, scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_rest, x_te, y_rest, y_te = train_test_split(
        x / 16.0, y, test_size=0.2, random_state=seed, stratify=y
    )
    x_tr, x_val, y_tr, y_val = train_test_split(
        x_rest, y_rest, test_size=0.1, random_state=seed, stratify=y_rest
    )

    def to_ds(a: Any, b: Any) -> TensorDataset:
        return TensorDataset(
            torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.long)
        )

    return to_ds(x_tr, y_tr), to_ds(x_val, y_val), to_ds(x_te, y_te)


class DigitsUnit(AutoUnit[Batch]):
    """Cross-entropy on an MLP; AdamW with a cosine schedule; accuracy via torchmetrics."""

    def __init__(self, *, epochs: int, lr: float = 3e-3) -> None:
        self.epochs, self.lr = epochs, lr  # read by configure_optimizers_and_lr_scheduler
        module = torch.nn.Sequential(
            torch.nn.Linear(64, 128),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(128, 10),
        )
        super().__init__(module=module, device="cpu", step_lr_interval="epoch")
        from torchmetrics.classification import MulticlassAccuracy

        self.train_metrics = MulticlassAccuracy(num_classes=10)
        self.eval_metrics = MulticlassAccuracy(num_classes=10)
        self.test_metrics = MulticlassAccuracy(num_classes=10, average="micro")  # fraction right

    def compute_loss(self, state: State, data: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = data
        logits = self.module(x)
        return torch.nn.functional.cross_entropy(logits, y), logits

    def configure_optimizers_and_lr_scheduler(self, module: torch.nn.Module) -> Any:
        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=1e-4)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/digits")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--no-progress-bar", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torchkit.utils.seed(args.seed)
    out = Path(args.output_dir)
    train_ds, val_ds, test_ds = load_digits_split(args.seed)
    train_dl = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True)
    val_dl = DataLoader(val_ds, batch_size=256)
    test_dl = DataLoader(test_ds, batch_size=256)

    unit = DigitsUnit(epochs=args.epochs)
    checkpoint_dir = str(out / "checkpoints")
    if args.resume and DistributedCheckpointSaver.restore_from_latest(
        checkpoint_dir, unit, train_dataloader=train_dl
    ):
        print(f"resumed after epoch {unit.train_progress.num_epochs_completed}")

    # a resumed run continues the CSV history; a fresh run starts it again
    csv_log = CSVLogger(str(out / "metrics.csv"), overwrite=not args.resume)
    loggers = [TensorBoardLogger(str(out / "tensorboard")), csv_log]
    callbacks: list[torchkit.Callback] = [
        MetricsLogger(loggers, every_n_steps=10),
        LearningRateMonitor(loggers),
        EarlyStopping(metric="-eval/loss", patience=5, min_delta=1e-4),
        DistributedCheckpointSaver(
            checkpoint_dir,
            save_every_n_eval_epochs=1,
            keep_last_n_checkpoints=2,
            best_checkpoint_config=BestCheckpointConfig("eval/accuracy", "max"),
        ),
        RunSummary(loggers),
    ]
    if not args.no_progress_bar:
        callbacks.insert(0, TQDMProgressBar(refresh_rate=10))
    # the test split is seen once, after training (a preempted run skips it; --resume tests)
    state = torchkit.fit(
        unit, train_dl, val_dl, max_epochs=args.epochs, test_dataloader=test_dl,
        callbacks=callbacks,
    )  # fmt: skip
    for logger in loggers:
        logger.close()
    if state.preempted:
        print("preempted: a checkpoint was saved; rerun with --resume to continue")
        return float("nan")
    accuracy = state.metrics["test/accuracy"]
    print(f"held-out test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
