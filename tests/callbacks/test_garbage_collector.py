"""GarbageCollector collects on schedule and restores automatic GC."""

from __future__ import annotations

import gc
from unittest import mock

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import GarbageCollector, Lambda


def test_disables_gc_during_training_and_collects_every_n_steps() -> None:
    seen: list[bool] = []
    spy = Lambda(on_train_step_end=lambda state, unit: seen.append(gc.isenabled()))
    with mock.patch("gc.collect", wraps=gc.collect) as collect:
        train(ClassifierUnit(), loader(24, 4), max_epochs=1,
              callbacks=[GarbageCollector(step_interval=2), spy])  # fmt: skip
    assert seen == [False] * 6
    assert gc.isenabled()
    gens = [c.args for c in collect.call_args_list]
    assert gens.count((1,)) == 3 and gens.count(()) == 1  # steps 2, 4, 6 + epoch end


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"step_interval=0 is invalid"):
        GarbageCollector(step_interval=0)
    with pytest.raises(ValueError, match=r"generation=3 is invalid"):
        GarbageCollector(step_interval=1, generation=3)
