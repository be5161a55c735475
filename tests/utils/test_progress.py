"""torchkit.utils.progress: TNT's module path for the step estimates and Progress."""

from __future__ import annotations

from unittest.mock import patch

import pytest

from torchkit.utils.progress import estimated_steps_in_fit

_FIT = {
    "train_dataloader": [0], "eval_dataloader": [0], "max_steps": None,
    "max_train_steps_per_epoch": None, "max_eval_steps_per_epoch": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("epochs", "every_n_steps", "every_n_epochs", "expected"),
    [
        (4, 10, 2, 100 + 20 * (100 // 10 + 4 // 2)),  # 340: both intervals count
        (3, None, 2, 100 + 20),
        (3, 49, None, 100 + 20 * 2),
        (3, None, None, 100),
    ],
)
def test_fit_estimate_counts_evals_from_both_intervals_through_the_patchable_loop_estimate(
    epochs: int, every_n_steps: int | None, every_n_epochs: int | None, expected: int
) -> None:
    # 100 train steps, 20 steps per eval epoch, whatever the loaders: the estimate must call
    # estimated_steps_in_loop through the module (train first, then one eval epoch)
    with patch("torchkit.utils.progress.estimated_steps_in_loop", side_effect=[100, 20]) as est:
        got = estimated_steps_in_fit(
            epochs=epochs, eval_every_n_steps=every_n_steps, eval_every_n_epochs=every_n_epochs,
            **_FIT,
        )  # fmt: skip
    assert got == expected
    assert est.call_args_list[0].kwargs["epochs"] == epochs
    if every_n_steps or every_n_epochs:
        assert est.call_args_list[1].kwargs == {
            "max_steps": None, "max_steps_per_epoch": None, "epochs": 1
        }  # fmt: skip


@pytest.mark.parametrize("side_effect", [[100, None], [None, 20]])
def test_fit_estimate_is_none_when_a_part_is_unknown(side_effect: list[int | None]) -> None:
    with patch("torchkit.utils.progress.estimated_steps_in_loop", side_effect=side_effect):
        got = estimated_steps_in_fit(epochs=4, eval_every_n_steps=10, eval_every_n_epochs=2, **_FIT)
    assert got is None


def test_progress_and_the_old_import_paths() -> None:
    from torchkit.loop.progress import Progress
    from torchkit.utils import estimated_steps_in_fit as from_utils
    from torchkit.utils import progress
    from torchkit.utils.loop_utils import estimated_steps_in_loop

    assert progress.Progress is Progress
    assert from_utils is estimated_steps_in_fit
    assert estimated_steps_in_loop is progress.estimated_steps_in_loop
