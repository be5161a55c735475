"""How a ``MultiDataLoader`` iterates its loaders: TNT's strategy dataclasses, validated."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class StoppingMechanism(str, Enum):
    """When a multi-loader epoch ends (TNT's names; compares equal to its string value).

    * ``ALL_DATASETS_EXHAUSTED``: when every loader ran out; finished loaders are skipped.
    * ``SMALLEST_DATASET_EXHAUSTED``: as soon as one loader runs out.
    * ``RESTART_UNTIL_ALL_DATASETS_EXHAUSTED``: finished loaders restart until every loader
      has run out at least once.
    * ``WRAP_AROUND_UNTIL_KILLED``: loaders restart forever (``RandomizedBatchSampler`` only);
      bound the epoch with ``max_steps_per_epoch``.

    Example:
        >>> StoppingMechanism("SMALLEST_DATASET_EXHAUSTED") == "SMALLEST_DATASET_EXHAUSTED"
        True
    """

    ALL_DATASETS_EXHAUSTED = "ALL_DATASETS_EXHAUSTED"
    SMALLEST_DATASET_EXHAUSTED = "SMALLEST_DATASET_EXHAUSTED"
    RESTART_UNTIL_ALL_DATASETS_EXHAUSTED = "RESTART_UNTIL_ALL_DATASETS_EXHAUSTED"
    WRAP_AROUND_UNTIL_KILLED = "WRAP_AROUND_UNTIL_KILLED"

    def __str__(self) -> str:
        return self.value


def _mechanism(value: Any, allowed: Sequence[StoppingMechanism]) -> StoppingMechanism:
    try:
        mech = StoppingMechanism(value)
    except ValueError:
        mech = None
    if mech is None or mech not in allowed:
        names = ", ".join(m.value for m in allowed)
        raise ValueError(
            f"stopping_mechanism={value!r} is invalid: expected one of {names}. Pass a "
            "torchkit.utils.data.StoppingMechanism member."
        )
    return mech


def _order(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(n, str) for n in value) or not value:
        raise ValueError(
            f"iteration_order={value!r} is invalid: expected a non-empty list of loader names. "
            "Pass e.g. iteration_order=['a', 'b'], or None for the dict's order."
        )
    return list(value)


@dataclass
class DataIterationStrategy:
    """Base class of the strategies; a custom ``MultiIterator`` may take a plain instance."""

    def check_loaders(self, names: Sequence[str]) -> None:
        """Raise ``ValueError`` when the strategy names loaders that ``names`` lacks."""


_FINITE = (
    StoppingMechanism.ALL_DATASETS_EXHAUSTED,
    StoppingMechanism.SMALLEST_DATASET_EXHAUSTED,
    StoppingMechanism.RESTART_UNTIL_ALL_DATASETS_EXHAUSTED,
)


def _check_order_names(order: list[str] | None, names: Sequence[str], *, every: bool) -> None:
    if order is None:
        return
    unknown = sorted(set(order) - set(names))
    if unknown:
        raise ValueError(
            f"iteration_order={order!r} is invalid: {unknown} are not loader names (the "
            f"loaders are {list(names)}). Name only loaders passed to the MultiDataLoader."
        )
    missing = [n for n in names if n not in order]
    if every and missing:
        raise ValueError(
            f"iteration_order={order!r} is invalid: it leaves out {missing}, which would then "
            "never be read. List every loader at least once."
        )


@dataclass
class RoundRobin(DataIterationStrategy):
    """One loader's batch per step, taking the loaders in turn.

    Args:
        stopping_mechanism: ``ALL_DATASETS_EXHAUSTED`` (finished loaders are skipped) or
            ``SMALLEST_DATASET_EXHAUSTED``.
        iteration_order: the turn order (names may repeat); default: the dict's order.

    Raises:
        ValueError: another stopping mechanism, or an order that is not a list of names.

    Example:
        >>> RoundRobin(iteration_order=["b", "a"]).stopping_mechanism
        <StoppingMechanism.ALL_DATASETS_EXHAUSTED: 'ALL_DATASETS_EXHAUSTED'>
    """

    stopping_mechanism: StoppingMechanism = StoppingMechanism.ALL_DATASETS_EXHAUSTED
    iteration_order: list[str] | None = None

    def __post_init__(self) -> None:
        self.stopping_mechanism = _mechanism(self.stopping_mechanism, _FINITE[:2])
        self.iteration_order = _order(self.iteration_order)

    def check_loaders(self, names: Sequence[str]) -> None:
        _check_order_names(self.iteration_order, names, every=True)


@dataclass
class AllDatasetBatches(DataIterationStrategy):
    """One batch from every loader per step, as ``{name: batch}``.

    Args:
        stopping_mechanism: ``ALL_DATASETS_EXHAUSTED`` (finished loaders drop out of the
            dict), ``SMALLEST_DATASET_EXHAUSTED`` or ``RESTART_UNTIL_ALL_DATASETS_EXHAUSTED``.

    Raises:
        ValueError: ``WRAP_AROUND_UNTIL_KILLED`` or an unknown mechanism.

    Example:
        >>> AllDatasetBatches("RESTART_UNTIL_ALL_DATASETS_EXHAUSTED").stopping_mechanism.value
        'RESTART_UNTIL_ALL_DATASETS_EXHAUSTED'
    """

    stopping_mechanism: StoppingMechanism = StoppingMechanism.ALL_DATASETS_EXHAUSTED

    def __post_init__(self) -> None:
        self.stopping_mechanism = _mechanism(self.stopping_mechanism, _FINITE)


@dataclass
class RandomizedBatchSampler(DataIterationStrategy):
    """One batch per step from a loader drawn at random, with probability proportional to
    its weight.

    The draws come from the ``MultiDataLoader``'s own ``torch.Generator`` seeded with
    ``seed``, so every rank draws the same loaders without any collective, and the generator
    is checkpointed with the loader.

    Args:
        weights: ``{name: weight}`` for every loader (default: equal weights).
        stopping_mechanism: any ``StoppingMechanism``.
        enforce_same_loader_across_ranks: accepted for TNT compatibility; the ranks already
            agree when they share ``seed`` (and the loaders' lengths), so nothing is broadcast.
        seed: seed of the draws; use the same one on every rank.

    Raises:
        ValueError: a weight that is negative or not finite, all weights zero, an unknown
            mechanism.

    Example:
        >>> RandomizedBatchSampler(weights={"a": 1, "b": 3}, seed=7).seed
        7
    """

    weights: dict[str, float] | None = None
    stopping_mechanism: StoppingMechanism = StoppingMechanism.ALL_DATASETS_EXHAUSTED
    enforce_same_loader_across_ranks: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.stopping_mechanism = _mechanism(self.stopping_mechanism, list(StoppingMechanism))
        if self.weights is not None:
            if not isinstance(self.weights, Mapping) or not self.weights:
                raise ValueError(
                    f"weights={self.weights!r} is invalid: expected a non-empty dict "
                    "{loader name: weight}. Pass e.g. weights={'a': 1.0, 'b': 3.0}."
                )
            bad = {k: v for k, v in self.weights.items() if not _is_weight(v)}
            if bad or not any(float(v) > 0 for v in self.weights.values()):
                raise ValueError(
                    f"weights={self.weights!r} is invalid: expected finite, non-negative "
                    "numbers, at least one positive. Fix or drop the offending entries."
                )
            self.weights = {k: float(v) for k, v in self.weights.items()}
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed={self.seed!r} is invalid: expected an int. Pass e.g. seed=0.")

    def check_loaders(self, names: Sequence[str]) -> None:
        if self.weights is None:
            return
        missing = [n for n in names if n not in self.weights]
        unknown = sorted(set(self.weights) - set(names))
        if missing or unknown:
            raise ValueError(
                f"weights={self.weights!r} is invalid: expected one weight per loader "
                f"{list(names)}; missing {missing}, unknown {unknown}. Give every loader a "
                "weight, and only those."
            )


def _is_weight(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and v >= 0


@dataclass
class InOrder(DataIterationStrategy):
    """Each loader to its end, one after the other.

    Args:
        iteration_order: the order (names may repeat, loaders may be left out); default: the
            dict's order.

    Raises:
        ValueError: an order that is not a list of names.

    Example:
        >>> InOrder(["b", "a", "b"]).iteration_order
        ['b', 'a', 'b']
    """

    iteration_order: list[str] | None = None

    def __post_init__(self) -> None:
        self.iteration_order = _order(self.iteration_order)

    def check_loaders(self, names: Sequence[str]) -> None:
        _check_order_names(self.iteration_order, names, every=False)


def num_batches(strategy: DataIterationStrategy, lens: Mapping[str, int]) -> int:
    """The batches one epoch yields, from every loader's length.

    Raises:
        TypeError: the count depends on random draws or is infinite.
    """
    mech = getattr(strategy, "stopping_mechanism", None)
    names = list(lens)
    if isinstance(strategy, InOrder):
        return sum(lens[n] for n in strategy.iteration_order or names)
    if isinstance(strategy, AllDatasetBatches):
        if mech == StoppingMechanism.SMALLEST_DATASET_EXHAUSTED:
            return min(lens.values())
        return max(lens.values())
    if isinstance(strategy, RoundRobin):
        order = strategy.iteration_order or names
        if mech == StoppingMechanism.ALL_DATASETS_EXHAUSTED:
            return sum(lens.values())
        return _round_robin_smallest(order, lens)
    if isinstance(strategy, RandomizedBatchSampler) and mech == _FINITE[0]:
        return sum(lens.values())
    raise TypeError(
        f"A MultiDataLoader with {strategy} has no length: the number of batches depends on "
        "random draws or is unbounded."
    )


def _round_robin_smallest(order: Sequence[str], lens: Mapping[str, int]) -> int:
    """A loader appearing k times in ``order`` with L batches is found exhausted at its
    (L+1)-th turn: in round L // k, at its (L % k)-th slot. The epoch stops at the earliest
    such (round, slot); every turn before it yields one batch."""
    slots: dict[str, list[int]] = {}
    for i, n in enumerate(order):
        slots.setdefault(n, []).append(i)
    stop = min((lens[n] // len(s), s[lens[n] % len(s)]) for n, s in slots.items())
    return stop[0] * len(order) + stop[1]
