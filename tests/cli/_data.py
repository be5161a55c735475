"""Datasets and models the CLI tests build by class_path."""

from __future__ import annotations

import os
import signal
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from torchkit import Callback, State
from torchkit.units import SupervisedUnit
from torchkit.utils import get_global_rank


class RandomRegression(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``num_samples`` fixed random ``(x, y)`` pairs, drawn from their own generator.

    Args:
        num_samples: how many pairs.
        input_dim: the width of ``x``.
        seed: the generator's seed (the data never depends on the global RNG).
    """

    def __init__(self, num_samples: int = 64, input_dim: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, input_dim, generator=g)
        self.y = self.x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(num_samples, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class MLP(torch.nn.Sequential):
    """A two-layer MLP (the module of the equivalence tests).

    Args:
        input_dim: the input width.
        hidden: the hidden width.
    """

    def __init__(self, input_dim: int = 4, hidden: int = 8) -> None:
        super().__init__(
            torch.nn.Linear(input_dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )


class RandomRegressionLoader(DataLoader[tuple[torch.Tensor, torch.Tensor]]):
    """A ``DataLoader`` over ``RandomRegression`` with plain arguments.

    (jsonargparse 4.53 drops the ``init_args`` of a dataset nested in ``DataLoader``, whose
    ``dataset`` parameter is the generic ``Dataset[T]``; a loader class avoids the nesting.)

    Args:
        num_samples: how many pairs.
        input_dim: the width of ``x``.
        seed: the data generator's seed.
        batch_size: the batch size.
        shuffle: reshuffle every epoch (draws from the global torch RNG).
    """

    def __init__(
        self,
        num_samples: int = 64,
        input_dim: int = 4,
        seed: int = 0,
        batch_size: int = 16,
        shuffle: bool = False,
    ) -> None:
        super().__init__(
            RandomRegression(num_samples, input_dim, seed), batch_size=batch_size, shuffle=shuffle
        )


CAPTURED: dict[str, dict[str, Any]] = {}
"""What ``Capture`` saw, by tag: ``initial``/``final`` state dicts and step counts."""


class Capture(Callback):
    """Records the module's weights at train start and end (in-process, or to ``path``).

    Args:
        tag: the key in ``CAPTURED``.
        path: also ``torch.save`` the final record there (suffixed with the rank).
    """

    def __init__(self, tag: str = "run", path: str | None = None) -> None:
        self.tag, self.path = tag, path

    def on_train_start(self, state: State, unit: Any) -> None:
        CAPTURED.setdefault(self.tag, {})["initial"] = _weights(unit)

    def on_train_end(self, state: State, unit: Any) -> None:
        record = CAPTURED.setdefault(self.tag, {})
        record["final"] = _weights(unit)
        record["steps"] = unit.train_progress.num_steps_completed
        if self.path is not None:
            torch.save(record, f"{self.path}.rank{get_global_rank()}")


def _weights(unit: Any) -> dict[str, torch.Tensor]:
    module = getattr(unit.module, "module", unit.module)  # unwrap DDP
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class KillAt(Callback):
    """SIGKILLs this process after train step ``step``, once (a marker file remembers).

    Args:
        step: the global step after which to die.
        marker: a file created just before the kill; when it exists, nothing happens.
    """

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if unit.train_progress.num_steps_completed == self.step and not os.path.exists(self.marker):
            with open(self.marker, "w") as f:
                f.write("killed")
            os.kill(os.getpid(), signal.SIGKILL)


try:
    from torchdata.stateful_dataloader import StatefulDataLoader
except ImportError:  # pragma: no cover - torchdata is in the dev extra
    StatefulDataLoader = DataLoader  # type: ignore[misc,assignment]


class StatefulRegressionLoader(StatefulDataLoader):  # type: ignore[misc]
    """``RandomRegressionLoader`` on torchdata's ``StatefulDataLoader`` (exact mid-epoch resume).

    Args:
        num_samples: how many pairs.
        input_dim: the width of ``x``.
        seed: the data generator's seed.
        batch_size: the batch size.
        shuffle: reshuffle every epoch.
    """

    def __init__(
        self,
        num_samples: int = 64,
        input_dim: int = 4,
        seed: int = 0,
        batch_size: int = 16,
        shuffle: bool = False,
    ) -> None:
        super().__init__(
            RandomRegression(num_samples, input_dim, seed), batch_size=batch_size, shuffle=shuffle
        )


class TestedRegression(SupervisedUnit):
    """A ``SupervisedUnit`` with its own ``test_step``: the summed loss goes to ``CAPTURED``."""

    def test_step(self, state: State, data: tuple[torch.Tensor, torch.Tensor]) -> None:
        loss, _ = self.compute_loss(state, data)
        record = CAPTURED.setdefault("test", {"batches": 0, "loss": 0.0})
        record["batches"] += 1
        record["loss"] += float(loss)
        record["train_steps"] = self.train_progress.num_steps_completed
