"""``MultiDataLoader`` strategies: batch sequences, lengths, laziness and bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from torchkit.utils.data import (
    AllDatasetBatches,
    DataIterationStrategy,
    InOrder,
    MultiDataLoader,
    RandomizedBatchSampler,
    RoundRobin,
    StoppingMechanism,
)

SM = StoppingMechanism


def _ab() -> dict[str, DataLoader[Any]]:
    """a: 1 batch, b: 3 batches (wave2.md §3.1)."""
    return {"a": DataLoader(range(4), batch_size=4), "b": DataLoader(range(15), batch_size=5)}


def _seq(mdl: MultiDataLoader) -> list[dict[str, list[int]]]:
    return [{k: v.tolist() for k, v in batch.items()} for batch in mdl]


A0, B0, B1, B2 = [0, 1, 2, 3], [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]


def test_round_robin_all_datasets_exhausted() -> None:
    mdl = MultiDataLoader(_ab(), RoundRobin(SM.ALL_DATASETS_EXHAUSTED))
    assert _seq(mdl) == [{"a": A0}, {"b": B0}, {"b": B1}, {"b": B2}]
    assert len(mdl) == 4


def test_round_robin_smallest_dataset_exhausted() -> None:
    mdl = MultiDataLoader(_ab(), RoundRobin(SM.SMALLEST_DATASET_EXHAUSTED))
    assert _seq(mdl) == [{"a": A0}, {"b": B0}]
    assert len(mdl) == 2


def test_all_dataset_batches_all_datasets_exhausted() -> None:
    mdl = MultiDataLoader(_ab(), AllDatasetBatches(SM.ALL_DATASETS_EXHAUSTED))
    assert _seq(mdl) == [{"a": A0, "b": B0}, {"b": B1}, {"b": B2}]
    assert len(mdl) == 3


def test_all_dataset_batches_restart_until_all_datasets_exhausted() -> None:
    mdl = MultiDataLoader(_ab(), AllDatasetBatches(SM.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED))
    assert _seq(mdl) == [{"a": A0, "b": B0}, {"a": A0, "b": B1}, {"a": A0, "b": B2}]
    assert len(mdl) == 3


def test_all_dataset_batches_smallest_dataset_exhausted() -> None:
    mdl = MultiDataLoader(_ab(), AllDatasetBatches(SM.SMALLEST_DATASET_EXHAUSTED))
    assert _seq(mdl) == [{"a": A0, "b": B0}]
    assert len(mdl) == 1


def test_in_order() -> None:
    mdl = MultiDataLoader(_ab(), InOrder())
    assert _seq(mdl) == [{"a": A0}, {"b": B0}, {"b": B1}, {"b": B2}]
    assert len(mdl) == 4


def test_in_order_with_repetitions() -> None:
    mdl = MultiDataLoader(_ab(), InOrder(["b", "a", "b"]))
    assert [next(iter(d)) for d in mdl] == ["b", "b", "b", "a", "b", "b", "b"]
    assert len(mdl) == 7


def test_randomized_batch_sampler_reads_every_batch_in_a_seeded_order() -> None:
    runs = [_seq(MultiDataLoader(_ab(), RandomizedBatchSampler(seed=5))) for _ in range(2)]
    assert runs[0] == runs[1]  # same seed, same draws: what keeps ranks in agreement
    assert sorted(str(d) for d in runs[0]) == sorted(
        str(d) for d in [{"a": A0}, {"b": B0}, {"b": B1}, {"b": B2}]
    )
    assert len(MultiDataLoader(_ab(), RandomizedBatchSampler())) == 4


def test_randomized_batch_sampler_draws_follow_the_weights() -> None:
    loaders = {"x": DataLoader(range(1000)), "y": DataLoader(range(1000))}
    strategy = RandomizedBatchSampler(
        weights={"x": 1.0, "y": 3.0}, stopping_mechanism="WRAP_AROUND_UNTIL_KILLED"
    )
    it = iter(MultiDataLoader(loaders, strategy))
    picks = [next(iter(next(it))) for _ in range(2000)]
    assert 0.70 < picks.count("y") / len(picks) < 0.80


def test_randomized_batch_sampler_epochs_draw_different_orders() -> None:
    mdl = MultiDataLoader(_ab(), RandomizedBatchSampler(seed=0))
    orders = {tuple(next(iter(d)) for d in mdl) for _ in range(8)}
    assert len(orders) > 1  # the generator goes on across epochs; it is not re-seeded


@pytest.mark.parametrize(
    "mech", [SM.SMALLEST_DATASET_EXHAUSTED, SM.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED]
)
def test_randomized_lengths_are_undefined(mech: StoppingMechanism) -> None:
    mdl = MultiDataLoader(_ab(), RandomizedBatchSampler(stopping_mechanism=mech))
    with pytest.raises(TypeError, match="no length"):
        len(mdl)


@pytest.mark.parametrize(
    ("order", "expected"),
    [(["a", "b"], 2), (["b", "a"], 3), (["a", "b", "b"], 3), (["b", "a", "b"], 4)],
)
def test_round_robin_smallest_length_formula_matches_iteration(
    order: list[str], expected: int
) -> None:
    mdl = MultiDataLoader(_ab(), RoundRobin(SM.SMALLEST_DATASET_EXHAUSTED, order))
    assert len(mdl) == len(_seq(mdl)) == expected


def test_unsized_child_means_no_length() -> None:
    mdl = MultiDataLoader({"a": DataLoader(range(4)), "g": iter(range(3))}, RoundRobin())
    with pytest.raises(TypeError, match="loader 'g' has none"):
        len(mdl)


class CountingIterable:
    def __init__(self, n: int) -> None:
        self.n, self.iter_calls = n, 0

    def __iter__(self) -> Iterator[int]:
        self.iter_calls += 1
        return iter(range(self.n))


def test_construction_iterates_nothing() -> None:
    child = CountingIterable(3)
    mdl = MultiDataLoader({"c": child, "d": CountingIterable(2)}, RoundRobin())
    assert child.iter_calls == 0
    assert [b["c"] for b in mdl if "c" in b] == [0, 1, 2]
    assert child.iter_calls == 1


def test_one_shot_generator_child_yields_all_its_items() -> None:
    gen = (i for i in range(5))
    mdl = MultiDataLoader({"g": gen, "a": DataLoader(range(2))}, InOrder())
    assert [b["g"] for b in mdl if "g" in b] == [0, 1, 2, 3, 4]


def test_unsized_empty_child_raises_at_first_read() -> None:
    mdl = MultiDataLoader({"a": DataLoader(range(2)), "e": CountingIterable(0)}, RoundRobin())
    it = iter(mdl)
    assert next(it) == {"a": torch.tensor([0])}
    with pytest.raises(ValueError, match="Dataloader 'e' contains no data"):
        next(it)


def test_sized_empty_child_raises_at_construction() -> None:
    with pytest.raises(ValueError, match=r"Dataloader 'e' contains no data \(its len\(\) is 0\)"):
        MultiDataLoader({"a": DataLoader(range(2)), "e": DataLoader([])}, RoundRobin())


@pytest.mark.parametrize("empty", [CountingIterable(0), DataLoader([])], ids=["unsized", "sized"])
def test_ignore_empty_data_skips_empty_children(
    empty: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        mdl = MultiDataLoader(
            {"a": DataLoader(range(2)), "e": empty},
            RoundRobin(SM.SMALLEST_DATASET_EXHAUSTED),
            ignore_empty_data=True,
        )
        assert [list(b) for b in mdl] == [["a"], ["a"]]
    assert "'e' contains no data" in caplog.text


@pytest.mark.parametrize(
    ("strategy", "match"),
    [
        (lambda: RoundRobin(iteration_order=["a", "z"]), r"\['z'\] are not loader names"),
        (lambda: RoundRobin(iteration_order=["a"]), r"it leaves out \['b'\]"),
        (lambda: InOrder(["q"]), r"\['q'\] are not loader names"),
        (lambda: RandomizedBatchSampler(weights={"a": 1.0}), r"missing \['b'\]"),
        (lambda: RandomizedBatchSampler(weights={"a": 1, "b": 1, "c": 1}), r"unknown \['c'\]"),
    ],
)
def test_strategy_that_does_not_match_the_loaders_raises(strategy: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiDataLoader(_ab(), strategy())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: RoundRobin("WRAP_AROUND_UNTIL_KILLED"), "stopping_mechanism='WRAP_AROUND"),
        (lambda: AllDatasetBatches("sometimes"), "stopping_mechanism='sometimes' is invalid"),
        (lambda: RandomizedBatchSampler(weights={"a": -1.0}), "non-negative"),
        (lambda: RandomizedBatchSampler(weights={"a": 0.0}), "at least one positive"),
        (lambda: RandomizedBatchSampler(seed=1.5), "seed=1.5 is invalid"),  # type: ignore[arg-type]
        (lambda: InOrder([]), "iteration_order=\\[\\] is invalid"),
    ],
)
def test_bad_strategy_arguments_raise(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_strategy_raises_value_error() -> None:
    with pytest.raises(ValueError, match="iteration_strategy=DataIterationStrategy"):
        MultiDataLoader(_ab(), DataIterationStrategy())


def test_bad_loader_mapping_raises_type_error() -> None:
    with pytest.raises(TypeError, match="expected a non-empty dict"):
        MultiDataLoader([DataLoader(range(2))], RoundRobin())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a MultiIterator subclass"):
        MultiDataLoader(_ab(), RoundRobin(), iterator_cls=object)  # type: ignore[arg-type]


def test_set_epoch_reaches_nested_multi_dataloaders() -> None:
    seen: list[int] = []

    class Sampler(torch.utils.data.SequentialSampler):  # type: ignore[type-arg]
        def set_epoch(self, epoch: int) -> None:
            seen.append(epoch)

    inner = MultiDataLoader({"x": DataLoader(range(2), sampler=Sampler(range(2)))}, InOrder())
    MultiDataLoader({"inner": inner, "y": DataLoader(range(2))}, RoundRobin()).set_epoch(4)
    assert seen == [4]
