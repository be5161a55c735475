"""Several named eval sets for ``fit``: ``Evaluators``, ``EvalSet`` and their schedule."""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from torchkit.loop.common import check_dataloader
from torchkit.loop.duration import Duration, check_interval, crossed
from torchkit.loop.duration_loop import COUNTED_UNITS
from torchkit.loop.progress import Progress
from torchkit.loop.state import PhaseState, State, check_every_n, check_limit

logger = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def _check_every(value: Any) -> Duration | None:
    """``every`` as a ``Duration``: ``None`` (follow ``fit``'s interval), a positive int of
    epochs, or anything ``Duration.parse`` takes (``"2ep"``, ``"100ba"``, ``"0.5dur"``...)."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        n = check_every_n("every", value)  # a bare number counts epochs, as in Composer
        return None if n is None else Duration(n, "ep")
    return check_interval(value, name="every")


class EvalSet:
    """One eval set: a dataloader with its own interval and step limit.

    Args:
        dataloader: the set's iterable of batches.
        every: this set's interval: an int of train epochs, or a ``Duration`` or time string
            (``"2ep"``, ``"100ba"``, ``"0.5dur"`` of ``fit``'s ``max_duration``), firing by
            ``Duration``'s floor rule. ``None`` follows ``fit``'s ``evaluate_every_n_steps``
            / ``evaluate_every_n_epochs``.
        max_steps_per_epoch: end each of this set's evaluations after this many steps.
            ``None`` follows ``fit``'s ``max_eval_steps_per_epoch``.

    Raises:
        TypeError: ``dataloader`` is not iterable, or a limit is not a number.
        ValueError: an empty sized ``dataloader``, ``every`` < 1 or a malformed duration, or
            a negative ``max_steps_per_epoch``.

    Example:
        >>> s = EvalSet([1, 2, 3], every=2, max_steps_per_epoch=2)
        >>> s.every, s.max_steps_per_epoch
        (Duration(value=2, unit='ep'), 2)
        >>> EvalSet([1], every="100ba").every
        Duration(value=100, unit='ba')
    """

    __slots__ = ("_dataloader", "_every", "_max_steps_per_epoch")

    def __init__(
        self,
        dataloader: Iterable[Any],
        *,
        every: int | str | Duration | tuple[int | float, str] | None = None,
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
    def every(self) -> Duration | None:
        """The set's own interval, or ``None`` to follow ``fit``'s."""
        return self._every

    @property
    def max_steps_per_epoch(self) -> int | None:
        return self._max_steps_per_epoch

    def __repr__(self) -> str:
        return (
            f"EvalSet({type(self._dataloader).__name__}, "
            f"every={None if self._every is None else str(self._every)!r}, "
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
    due after a step or an epoch and runs them in insertion order. A set with its own interval
    fires by ``Duration``'s floor rule (``crossed``): ``ep`` after train epochs, ``ba`` after
    global train steps, ``sp``/``tok``/``sec`` after steps, read from
    ``state.duration_tracker``. A set without one follows ``fit``'s intervals: the integer
    ones read live from ``eval_state`` (TNT lets callbacks change them) and a counted
    ``evaluate_every`` from the tracker.

    Args:
        evaluators: the sets.
        eval_state: ``fit``'s eval ``PhaseState``.
        rules: each set's interval resolved by ``fit``'s ``DurationPlan.add_interval`` (default:
            the sets' own intervals, unresolved, as ``evaluate`` needs them: not at all).
    """

    def __init__(
        self,
        evaluators: Evaluators,
        eval_state: PhaseState,
        rules: dict[str, Duration | None] | None = None,
    ) -> None:
        self.evaluators = evaluators
        self.eval_state = eval_state
        self.rules = rules if rules is not None else {n: s.every for n, s in evaluators.items()}
        self._default_max_steps = eval_state.max_steps_per_epoch
        self.round: tuple[str, ...] = ()
        """The sets of the evaluation round in progress (empty between rounds)."""
        self.position = 0
        eval_state._set_progress = {name: SetProgress() for name in evaluators}
        self.activate(next(iter(evaluators)))

    def has_step_rules(self, tracker: Any = None) -> bool:
        """True when some set can fire after a train step (the loop then needs a trigger)."""
        follows_fit = bool(self.eval_state.evaluate_every_n_steps) or (
            tracker is not None and tracker.evaluate_every is not None
        )
        return any(
            (r is None and follows_fit) or (r is not None and r.unit != "ep")
            for r in self.rules.values()
        )

    def due_after_step(self, steps: int, tracker: Any = None) -> list[str]:
        """The sets due after the train step that brought the global count to ``steps``
        (``tracker``: ``state.duration_tracker``, for counted intervals)."""
        n = self.eval_state.evaluate_every_n_steps
        fit_every = tracker.evaluate_every if tracker is not None else None  # counted, fit's
        fit_fires = bool(n) and steps % n == 0  # type: ignore[operator]
        if fit_every is not None and tracker.fires(fit_every):
            fit_fires = True
        due = []
        for name, r in self.rules.items():
            if r is None:
                fires = fit_fires
            elif r.unit == "ba":
                fires = crossed(steps - 1, steps, r.value)
            else:
                fires = r.unit in COUNTED_UNITS and tracker is not None and tracker.fires(r)
            if fires:
                due.append(name)
        return due

    def due_after_epoch(self, epochs: int) -> list[str]:
        """The sets due after the train epoch that brought the count to ``epochs``."""
        n = self.eval_state.evaluate_every_n_epochs
        return [
            name
            for name, r in self.rules.items()
            if (r is None and bool(n) and epochs % n == 0)  # type: ignore[operator]
            or (r is not None and r.unit == "ep" and crossed(epochs - 1, epochs, r.value))
        ]

    def due_on_resume(self, train_progress: Progress) -> list[str]:
        """The sets of the round a checkpoint was taken before (or during): a step round when
        the train epoch was still open, else the epoch round. (A restored tracker has no
        previous count, so ``sp``/``tok``/``sec`` sets are not re-run.)"""
        if train_progress.num_steps_completed_in_epoch > 0:
            return self.due_after_step(train_progress.num_steps_completed)
        return self.due_after_epoch(train_progress.num_epochs_completed)

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
