"""EmptyCudaCache runs on its schedule (a no-op without CUDA)."""

from __future__ import annotations

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import fit
from torchkit.callbacks import EmptyCudaCache


def test_runs_every_n_steps_in_train_and_eval() -> None:
    cb = EmptyCudaCache(step_interval=2)
    fit(ClassifierUnit(), loader(16, 4), loader(8, 4), max_epochs=1, callbacks=[cb])
    assert cb.num_calls == 2 + 1  # train steps 2, 4; eval step 2


def test_bad_interval() -> None:
    with pytest.raises(ValueError, match=r"step_interval=-2 is invalid"):
        EmptyCudaCache(step_interval=-2)
