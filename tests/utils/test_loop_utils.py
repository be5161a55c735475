"""estimated_steps_* helpers (TNT-compatible)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from torchkit.utils import estimated_steps_in_epoch, estimated_steps_in_fit, estimated_steps_in_loop


class Unsized:
    def __iter__(self) -> Iterator[int]:
        return iter(range(3))


@pytest.mark.parametrize(
    ("loader", "done", "max_steps", "per_epoch", "expected"),
    [(range(10), 0, None, None, 10), (range(10), 0, 4, None, 4), (range(10), 0, None, 3, 3),
     (range(10), 8, 10, None, 2), (range(10), 12, 10, None, 0), (Unsized(), 0, None, None,
     float("inf")), (Unsized(), 0, None, 5, 5), (Unsized(), 2, 7, None, 5)],
)  # fmt: skip
def test_estimated_steps_in_epoch(
    loader: object, done: int, max_steps: int | None, per_epoch: int | None, expected: float
) -> None:
    got = estimated_steps_in_epoch(
        loader,  # type: ignore[arg-type]
        num_steps_completed=done,
        max_steps=max_steps,
        max_steps_per_epoch=per_epoch,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("loader", "max_steps", "per_epoch", "epochs", "expected"),
    [(range(10), None, None, 2, 20), (range(10), 15, None, 2, 15), (range(10), None, 3, 2, 6),
     (range(10), 100, None, None, 100), (range(10), None, None, None, None),
     (Unsized(), None, None, 2, None), (Unsized(), 7, None, 2, 7)],
)  # fmt: skip
def test_estimated_steps_in_loop(
    loader: object,
    max_steps: int | None,
    per_epoch: int | None,
    epochs: int | None,
    expected: int | None,
) -> None:
    got = estimated_steps_in_loop(
        loader,  # type: ignore[arg-type]
        max_steps=max_steps, max_steps_per_epoch=per_epoch, epochs=epochs,
    )  # fmt: skip
    assert got == expected


def test_estimated_steps_in_loop_matches_a_real_run() -> None:
    from torchkit import train
    from torchkit.testing import DummyTrainUnit, generate_random_dataloader

    dl = generate_random_dataloader(10, 2, 2)  # 5 batches
    unit = DummyTrainUnit(2)
    train(unit, dl, max_epochs=3, max_steps=13, max_steps_per_epoch=4)
    expected = estimated_steps_in_loop(dl, max_steps=13, max_steps_per_epoch=4, epochs=3)
    assert unit.train_progress.num_steps_completed == expected == 12


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({}, 10 * 2 + 2 * 4), ({"eval_every_n_steps": 5, "eval_every_n_epochs": None}, 20 + 4 * 4),
     ({"max_eval_steps_per_epoch": 1}, 20 + 2), ({"eval_every_n_epochs": None}, 20),
     ({"max_train_steps_per_epoch": 3}, 6 + 2 * 4)],
)  # fmt: skip
def test_estimated_steps_in_fit(kwargs: dict[str, int | None], expected: int) -> None:
    args: dict[str, object] = {
        "train_dataloader": range(10), "eval_dataloader": range(4), "epochs": 2,
        "max_steps": None, "max_train_steps_per_epoch": None, "max_eval_steps_per_epoch": None,
        "eval_every_n_steps": None, "eval_every_n_epochs": 1,
    }  # fmt: skip
    args.update(kwargs)
    assert estimated_steps_in_fit(**args) == expected  # type: ignore[arg-type]


def test_estimated_steps_in_fit_unbounded() -> None:
    assert estimated_steps_in_fit(
        train_dataloader=Unsized(), eval_dataloader=range(2), epochs=2, max_steps=None,
        max_train_steps_per_epoch=None, max_eval_steps_per_epoch=None,
        eval_every_n_steps=None, eval_every_n_epochs=1,
    ) is None  # fmt: skip
