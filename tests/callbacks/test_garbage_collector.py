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
    assert gens.count((1,)) == 6 and gens.count(()) == 3  # every step; full at steps 2, 4, 6


def test_fit_counts_train_and_eval_steps_together_as_tnt() -> None:
    from torchkit import fit

    with mock.patch("gc.collect", wraps=gc.collect) as collect:
        fit(ClassifierUnit(), loader(16, 4), loader(12, 4), max_epochs=2,
            callbacks=[GarbageCollector(step_interval=5)])  # fmt: skip
    gens = [c.args for c in collect.call_args_list]
    # 8 train + 6 eval steps, a cheap collection after each; full ones when the combined
    # count (train 1-4, eval 5-7, train 8-11, eval 12-14) hits 5 and 10
    assert gens.count((1,)) == 14 and gens.count(()) == 2
    assert gc.isenabled()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"step_interval=0 is invalid"):
        GarbageCollector(step_interval=0)
    with pytest.raises(ValueError, match=r"generation=3 is invalid"):
        GarbageCollector(1, generation=3)
