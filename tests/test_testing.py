"""Public test helpers: random data, dummy units, and the process launcher re-export."""

from __future__ import annotations

import torch

import torchkit.utils
from torchkit import evaluate, fit, predict, train
from torchkit.testing import (
    DummyEvalUnit,
    DummyFitUnit,
    DummyPredictUnit,
    DummyTrainUnit,
    RandomDataset,
    generate_random_dataloader,
    generate_random_dataset,
    spawn_multi_process,
)


def test_random_dataset_is_deterministic_per_seed() -> None:
    a, b, c = RandomDataset(6, 3, seed=1), RandomDataset(6, 3, seed=1), RandomDataset(6, 3, seed=2)
    assert len(a) == 6
    x, y = a[0]
    assert x.shape == (3,) and y.shape == () and int(y) in (0, 1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)


def test_random_dataset_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    RandomDataset(4, 2)
    assert torch.equal(torch.rand(1), expected)


def test_generate_random_dataloader_shapes_and_kwargs() -> None:
    dl = generate_random_dataloader(10, 4, 3, drop_last=True)
    assert len(dl) == 3
    x, y = next(iter(dl))
    assert x.shape == (3, 4) and y.shape == (3,)
    assert len(generate_random_dataset(5, 2)) == 5


def test_dummy_train_unit_learns_and_counts() -> None:
    unit = DummyTrainUnit(input_dim=4, lr=0.5)
    dl = generate_random_dataloader(32, 4, 8)
    x, y = next(iter(dl))

    def loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(unit.module(x), y))

    train(unit, dl, max_epochs=1)
    first = loss()
    train(unit, dl, max_epochs=20)
    assert loss() < first
    assert unit.train_progress.num_steps_completed == 20 * 4


def test_dummy_eval_predict_and_fit_units() -> None:
    dl = generate_random_dataloader(8, 2, 4)
    ev, pr, ft = DummyEvalUnit(2), DummyPredictUnit(2), DummyFitUnit(2)
    evaluate(ev, dl)
    predict(pr, dl)
    fit(ft, dl, dl, max_epochs=2)
    assert ev.eval_progress.num_steps_completed == 2
    assert pr.predict_progress.num_steps_completed == 2
    assert (ft.train_progress.num_steps_completed, ft.eval_progress.num_epochs_completed) == (4, 2)


def test_spawn_multi_process_is_re_exported() -> None:
    assert spawn_multi_process is torchkit.utils.spawn_multi_process
