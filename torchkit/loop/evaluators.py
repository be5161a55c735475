"""Several named eval sets for ``fit``: ``Evaluators``, ``EvalSet`` and their schedule."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from torchkit.loop.common import check_dataloader
from torchkit.loop.progress import Progress
from torchkit.loop.state import PhaseState, State, check_every_n, check_limit

logger = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

Rule = tuple[int, str]
"""An interval as ``(n, unit)``: ``"ep"`` fires after every n-th train epoch, ``"ba"`` after
every n-th global train step."""


def _check_every(value: Any) -> Rule | None:
    """``every`` as a rule: ``None`` (follow ``fit``'s interval) or a positive int of epochs."""
    n = check_every_n("every", value)
    return None if n is None else (n, "ep")


class EvalSet:
    """One eval set: a dataloader with its own interval and step limit.

    Args:
        dataloader: the set's iterable of batches.
        every: evaluate this set after every ``every``-th train epoch. ``None`` follows
            ``fit``'s ``evaluate_every_n_steps`` / ``evaluate_every_n_epochs``.
        max_steps_per_epoch: end each of this set's evaluations after this many steps.
            ``None`` follows ``fit``'s ``max_eval_steps_per_epoch``.

    Raises:
        TypeError: ``dataloader`` is not iterable, or a limit is not a number.
        ValueError: an empty sized ``dataloader``, ``every`` < 1 or a negative
            ``max_steps_per_epoch``.

    Example:
        >>> s = EvalSet([1, 2, 3], every=2, max_steps_per_epoch=2)
        >>> s.every, s.max_steps_per_epoch
        ((2, 'ep'), 2)
    """

    __slots__ = ("_dataloader", "_every", "_max_steps_per_epoch")

    def __init__(
        self,
        dataloader: Iterable[Any],
        *,
        every: int | None = None,
        max_steps_per_epoch: int | None = None,
    ) -> None:
        check_dataloader("dataloader", dataloader)
        self._every = _check_every(every)
        self._max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
        self._dataloader = dataloader

    @property
    def dataloader(self) -> Iterable[Any]:
        return self._dataloader

    @property
    def every(self) -> Rule | None:
        """The set's own interval as ``(n, unit)``, or ``None`` to follow ``fit``'s."""
        return self._every

    @property
    def max_steps_per_epoch(self) -> int | None:
        return self._max_steps_per_epoch

    def __repr__(self) -> str:
        return (
            f"EvalSet({type(self._dataloader).__name__}, every={self._every!r}, "
            f"max_steps_per_epoch={self._max_steps_per_epoch!r})"
        )


class Evaluators(Mapping[str, EvalSet]):
    """Named eval sets for ``fit``'s ``eval_dataloader``, run in insertion order.

    A plain ``dict`` passed as ``eval_dataloader`` stays one loader (it is itself iterable, as
    in TNT); wrap several loaders in ``Evaluators`` to evaluate each one separately. Inside an
    evaluation ``state.eval_state.name`` is the set's name and metrics are published as
    ``eval/<name>/<metric>`` (``eval/val/loss``). Every set's evaluation counts in
    ``unit.eval_progress``; ``state.eval_state.set_progress[name]`` counts one set's.

    Args:
        sets: optional mapping ``{name: loader or EvalSet}`` (for names that are not Python
            identifiers); its entries come first.
        **named: ``name=loader`` or ``name=EvalSet(loader, every=..., max_steps_per_epoch=...)``.

    Raises:
        TypeError: ``sets`` is not a mapping, a name is not a ``str``, or a loader is not
            iterable.
        ValueError: no set at all, a name given twice, a name that is empty or holds
            characters other than letters, digits, ``_``, ``.`` and ``-`` (a ``/`` would make
            metric keys ambiguous), or an empty sized loader.

    Example:
        >>> from torchkit import fit
        >>> from torchkit.testing import DummyFitUnit, generate_random_dataloader
        >>> dl = generate_random_dataloader(8, 2, 4)
        >>> evals = Evaluators(val=dl, test=EvalSet(dl, every=2))
        >>> unit = DummyFitUnit(input_dim=2)
        >>> state = fit(unit, dl, evals, max_epochs=2)
        >>> list(evals), unit.eval_progress.num_epochs_completed
        (['val', 'test'], 3)
        >>> state.eval_state.set_progress["test"].num_epochs_completed
        1
    """

    _holds_eval_sets = True  # ``check_dataloader`` refuses it where one loader is expected

    def __init__(self, sets: Mapping[str, Any] | None = None, /, **named: Any) -> None:
        if sets is not None and not isinstance(sets, Mapping):
            raise TypeError(
                f"sets={sets!r} is invalid: expected a mapping of names to loaders. Pass "
                "Evaluators(val=val_loader, test=test_loader) or Evaluators({'val': loader})."
            )
        items = list((sets or {}).items())
        for name in named:
            if name in dict(items):
                raise ValueError(
                    f"{name}=... is invalid: the name {name!r} is given twice (in the mapping "
                    "and as a keyword). Give each eval set one name."
                )
        items += list(named.items())
        if not items:
            raise ValueError(
                "Evaluators() is invalid: expected at least one named eval set. Pass e.g. "
                "Evaluators(val=val_loader), or pass the loader itself as eval_dataloader."
            )
        self._sets: dict[str, EvalSet] = {}
        for name, value in items:
            _check_name(name)
            if not isinstance(value, EvalSet):
                check_dataloader(name, value)
                value = EvalSet(value)
            self._sets[name] = value

    def __getitem__(self, name: str) -> EvalSet:
        return self._sets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={s!r}" for name, s in self._sets.items())
        return f"Evaluators({inner})"

    def state_dict(self) -> dict[str, Any]:
        """Each set's dataloader state (sets whose loader has ``state_dict``), by name."""
        out: dict[str, Any] = {}
        for name, s in self._sets.items():
            fn = getattr(s.dataloader, "state_dict", None)
            if callable(fn):
                out[name] = fn()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load each set's dataloader state saved by ``state_dict``.

        Raises:
            ValueError: a saved name that is not one of these sets (a renamed set).
        """
        unknown = sorted(set(state_dict) - set(self._sets))
        if unknown:
            raise ValueError(
                f"state_dict names {unknown} are invalid: expected names of these eval sets "
                f"{list(self._sets)}. Restore with the same set names the run was saved with."
            )
        for name, sd in state_dict.items():
            load = getattr(self._sets[name].dataloader, "load_state_dict", None)
            if callable(load):
                load(sd)
            else:
                logger.warning("Eval set %r has no load_state_dict(); it starts over.", name)


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"name={name!r} is invalid: expected a str naming the eval set. Pass e.g. "
            "Evaluators(val=loader)."
        )
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"name={name!r} is invalid: expected a non-empty name of letters, digits, '_', '.' "
            "or '-' (it becomes the metric prefix eval/<name>/). Pass e.g. 'val' or 'test-2'."
        )


class EvalSchedule:
    """``fit``'s run-time view of ``Evaluators``: which sets are due when, and their counts.

    Internal: ``fit`` keeps it in ``state._evaluators``; the train loop asks it which sets are
    due after a step or an epoch and runs them in insertion order.

    Args:
        evaluators: the sets.
        eval_state: ``fit``'s eval ``PhaseState`` (its intervals may be changed at run time).
    """

    def __init__(self, evaluators: Evaluators, eval_state: PhaseState) -> None:
        self.evaluators = evaluators
        self.eval_state = eval_state
        self._default_max_steps = eval_state.max_steps_per_epoch
        self.round: tuple[str, ...] = ()
        """The sets of the evaluation round in progress (empty between rounds)."""
        self.position = 0
        eval_state._set_progress = {name: SetProgress() for name in evaluators}
        self.activate(next(iter(evaluators)))

    def _rule(self, name: str, kind: str) -> int | None:
        own = self.evaluators[name].every
        if own is not None:
            return own[0] if own[1] == kind else None
        es = self.eval_state
        return es.evaluate_every_n_steps if kind == "ba" else es.evaluate_every_n_epochs

    def has_step_rules(self) -> bool:
        """True when some set evaluates at step intervals (so the loop needs a step trigger)."""
        return any(self._rule(name, "ba") for name in self.evaluators)

    def due(self, kind: str, count: int) -> list[str]:
        """The sets due after ``count`` train steps (``kind="ba"``) or epochs (``"ep"``)."""
        return [
            name for name in self.evaluators if (n := self._rule(name, kind)) and count % n == 0
        ]

    def due_on_resume(self, train_progress: Progress) -> list[str]:
        """The sets of the round a checkpoint was taken before (or during): a step round when
        the train epoch was still open, else the epoch round."""
        if train_progress.num_steps_completed_in_epoch > 0:
            return self.due("ba", train_progress.num_steps_completed)
        return self.due("ep", train_progress.num_epochs_completed)

    def activate(self, name: str) -> None:
        """Point ``state.eval_state`` at set ``name``: loader, step limit, name, metric prefix."""
        s = self.evaluators[name]
        es = self.eval_state
        es._dataloader = s.dataloader
        limit = s.max_steps_per_epoch
        es._max_steps_per_epoch = self._default_max_steps if limit is None else limit
        es._name = name
        es._metric_prefix = f"eval/{name}"

    def run(self, state: State, unit: Any, names: list[str], run_one: Callable[[], None]) -> None:
        """Evaluate ``names`` in order with ``run_one``, counting each set's steps and epochs."""
        self.round = tuple(names)
        try:
            for i, name in enumerate(names):
                self.position = i
                self.activate(name)
                own = self.eval_state._set_progress[name]
                own._start(unit.eval_progress)
                try:
                    run_one()
                finally:
                    own._stop()
                if state.preempted:
                    return
        finally:
            self.round, self.position = (), 0


class SetProgress:
    """One eval set's completed work in this run, read-only; ``unit.eval_progress`` counts all
    sets' work (and is the one checkpointed). While the set runs it follows
    ``unit.eval_progress`` live, so inside ``on_eval_epoch_end`` it already counts the epoch.

    Example:
        >>> SetProgress().num_epochs_completed
        0
    """

    __slots__ = ("_epochs", "_live", "_steps")

    def __init__(self) -> None:
        self._epochs = 0
        self._steps = 0
        self._live: tuple[Progress, int, int] | None = None

    def _start(self, progress: Progress) -> None:
        self._live = (progress, progress.num_epochs_completed, progress.num_steps_completed)

    def _stop(self) -> None:
        self._epochs, self._steps = self.num_epochs_completed, self.num_steps_completed
        self._live = None

    @property
    def num_epochs_completed(self) -> int:
        if self._live is None:
            return self._epochs
        progress, epochs, _ = self._live
        return self._epochs + progress.num_epochs_completed - epochs

    @property
    def num_steps_completed(self) -> int:
        if self._live is None:
            return self._steps
        progress, _, steps = self._live
        return self._steps + progress.num_steps_completed - steps

    @property
    def num_steps_completed_in_epoch(self) -> int:
        return 0 if self._live is None else self._live[0].num_steps_completed_in_epoch

    def __repr__(self) -> str:
        return (
            f"SetProgress(num_epochs_completed={self.num_epochs_completed}, "
            f"num_steps_completed={self.num_steps_completed})"
        )


def round_is_starting(state: State) -> bool:
    """True in the first set of an evaluation round (always for a plain eval loader)."""
    schedule: EvalSchedule | None = state._evaluators
    return schedule is None or schedule.position == 0


def round_is_ending(state: State) -> bool:
    """True in the last set of an evaluation round (always for a plain eval loader)."""
    schedule: EvalSchedule | None = state._evaluators
    return schedule is None or schedule.position >= len(schedule.round) - 1


def publishes_metric(state: State, metric: str) -> bool:
    """False when ``metric`` is an ``eval/`` metric that the eval set running does not publish
    (``eval/test/loss`` while ``val`` runs); True otherwise, and always for a plain loader."""
    es = state.eval_state
    if es is None or not metric.startswith("eval/"):
        return True
    return metric.startswith(es._metric_prefix + "/")


def eval_epochs_of_set(state: State, unit: Any) -> int:
    """Completed eval epochs of the set running (all of them for a plain eval loader)."""
    es = state.eval_state
    own = es.set_progress.get(es.name) if es is not None else None
    return int(unit.eval_progress.num_epochs_completed if own is None else own.num_epochs_completed)
