"""Loop-owned state: which entry point and phase are running, per-phase limits and outputs."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from torchkit.utils.timer import BoundedTimer, Timer

if TYPE_CHECKING:
    from torchkit.loop.duration_tracker import DurationTracker


class EntryPoint(Enum):
    """The entry point that created the ``State``."""

    FIT = auto()
    TRAIN = auto()
    EVALUATE = auto()
    PREDICT = auto()
    TEST = auto()


class Phase(Enum):
    """Checkpoint-level phase names (``NONE`` outside a loop)."""

    NONE = auto()
    TRAIN = auto()
    EVALUATE = auto()
    PREDICT = auto()
    TEST = auto()


class ActivePhase(Enum):
    """The phase currently running; ``str()`` gives ``train``, ``eval``, ``predict`` or ``test``.

    Example:
        >>> str(ActivePhase.EVALUATE)
        'eval'
    """

    TRAIN = auto()
    EVALUATE = auto()
    PREDICT = auto()
    TEST = auto()

    def into_phase(self) -> Phase:
        """The matching ``Phase`` member."""
        return Phase[self.name]

    def __str__(self) -> str:
        return _PHASE_STR[self]


_PHASE_STR = {
    ActivePhase.TRAIN: "train",
    ActivePhase.EVALUATE: "eval",
    ActivePhase.PREDICT: "predict",
    ActivePhase.TEST: "test",
}


def _check_loop_condition(name: str, val: int | None) -> None:
    """TNT's name for the loop-limit check (``torchtnt.framework.state``): raise for a bad
    limit, return nothing. torchkit's entry points use ``check_limit``, which also returns the
    limit as an ``int``.

    Raises:
        TypeError: not a number.
        ValueError: negative or not integral.

    Example:
        >>> _check_loop_condition("max_steps", 3)
        >>> _check_loop_condition("max_steps", -1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Invalid value provided for max_steps: -1. Expected a non-negative int ...
    """
    check_limit(name, val)


def check_limit(name: str, value: Any) -> int | None:
    """Validate a loop limit; returns it as an ``int`` (integral floats accepted) or ``None``.

    Raises:
        TypeError: not a number.
        ValueError: negative or not integral.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)):
        raise TypeError(
            f"Invalid type provided for {name}: {value!r} ({type(value).__name__}). "
            f"Expected a non-negative int or None; pass e.g. {name}=10."
        )
    if isinstance(value, float) and not value.is_integer():  # also inf and nan
        raise ValueError(
            f"Invalid value provided for {name}: {value!r}. Expected a whole number of steps "
            f"or epochs; pass a non-negative int such as {name}=10, or None for no limit."
        )
    if value < 0:
        raise ValueError(
            f"Invalid value provided for {name}: {value!r}. Expected a non-negative int or None "
            "(None means no limit)."
        )
    return int(value)


def check_every_n(name: str, value: Any) -> int | None:
    """Validate an ``every_n`` interval: ``None`` or a positive int."""
    checked = check_limit(name, value)
    if checked == 0:
        raise ValueError(
            f"Invalid value provided for {name}: {value!r}. Expected a positive int or None; "
            f"pass None to turn it off."
        )
    return checked


class PhaseState:
    """Read-only per-phase settings and the current step's output.

    Args:
        dataloader: the phase's iterable of batches.
        max_epochs: stop after this many epochs (train only).
        max_steps: stop after this many steps in total (train only).
        max_steps_per_epoch: end each epoch after this many steps.
        evaluate_every_n_steps: evaluate every N global train steps (eval inside ``fit``).
        evaluate_every_n_epochs: evaluate every N train epochs (eval inside ``fit``).

    Raises:
        ValueError: a negative or non-integral limit, or a zero interval.
        TypeError: a limit that is not a number.

    Example:
        >>> ps = PhaseState(dataloader=[1, 2], max_steps_per_epoch=1)
        >>> ps.max_steps_per_epoch
        1
    """

    def __init__(
        self,
        *,
        dataloader: Iterable[Any],
        max_epochs: int | None = None,
        max_steps: int | None = None,
        max_steps_per_epoch: int | None = None,
        evaluate_every_n_steps: int | None = None,
        evaluate_every_n_epochs: int | None = None,
    ) -> None:
        self._dataloader = dataloader
        self._max_epochs = check_limit("max_epochs", max_epochs)
        self._max_steps = check_limit("max_steps", max_steps)
        self._max_steps_per_epoch = check_limit("max_steps_per_epoch", max_steps_per_epoch)
        self._evaluate_every_n_steps = check_every_n(
            "evaluate_every_n_steps", evaluate_every_n_steps
        )
        self._evaluate_every_n_epochs = check_every_n(
            "evaluate_every_n_epochs", evaluate_every_n_epochs
        )
        self._step_output: Any = None
        self._iteration_timer = BoundedTimer()
        # Set by ``fit`` with ``Evaluators`` (``loop.evaluators.EvalSchedule``) for each set.
        self._name = "eval"
        self._metric_prefix = "eval"
        self._set_progress: dict[str, Any] = {}

    @property
    def dataloader(self) -> Iterable[Any]:
        return self._dataloader

    @property
    def max_epochs(self) -> int | None:
        return self._max_epochs

    @property
    def max_steps(self) -> int | None:
        return self._max_steps

    @property
    def max_steps_per_epoch(self) -> int | None:
        return self._max_steps_per_epoch

    @property
    def evaluate_every_n_steps(self) -> int | None:
        return self._evaluate_every_n_steps

    @evaluate_every_n_steps.setter
    def evaluate_every_n_steps(self, value: int | None) -> None:
        self._evaluate_every_n_steps = check_every_n("evaluate_every_n_steps", value)

    @property
    def evaluate_every_n_epochs(self) -> int | None:
        return self._evaluate_every_n_epochs

    @evaluate_every_n_epochs.setter
    def evaluate_every_n_epochs(self, value: int | None) -> None:
        self._evaluate_every_n_epochs = check_every_n("evaluate_every_n_epochs", value)

    @property
    def name(self) -> str:
        """The eval set running (or the last one that ran) when ``fit`` got ``Evaluators``;
        ``"eval"`` for a plain eval loader. Its metrics are ``eval/<name>/<metric>``."""
        return self._name

    @property
    def set_progress(self) -> dict[str, Any]:
        """Per eval set ``Progress`` of this run, by name (empty for a plain eval loader).
        ``unit.eval_progress`` counts every set's evaluations together, as TNT counts them."""
        return self._set_progress

    @property
    def step_output(self) -> Any:
        """The current step's return value; set during ``on_*_step_end`` only."""
        return self._step_output

    @property
    def iteration_timer(self) -> BoundedTimer:
        """Recent ``data_wait_time`` and ``<phase>_iteration_time`` durations (seconds)."""
        return self._iteration_timer


class State:
    """What the loop is doing: entry point, active phase, per-phase state, stop flags.

    Units and callbacks read it; only the loop (and ``stop()``) changes it.

    Args:
        entry_point: which entry point is running.
        timer: optional user ``Timer`` that records loop actions.
        train_state: train ``PhaseState``.
        eval_state: eval ``PhaseState``.
        predict_state: predict ``PhaseState``.
        test_state: test ``PhaseState`` (``test``, and ``fit`` given a ``test_dataloader``).

    Raises:
        TypeError: ``timer`` is not a ``Timer``.

    Example:
        >>> s = State(entry_point=EntryPoint.TRAIN)
        >>> s.stop(); s.should_stop
        True
    """

    def __init__(
        self,
        *,
        entry_point: EntryPoint,
        timer: Timer | None = None,
        train_state: PhaseState | None = None,
        eval_state: PhaseState | None = None,
        predict_state: PhaseState | None = None,
        test_state: PhaseState | None = None,
    ) -> None:
        if timer is not None and not callable(getattr(timer, "time", None)):
            raise TypeError(
                f"timer={timer!r} is invalid: expected a torchkit.utils.Timer (an object with a "
                "time(name) context manager). Pass timer=Timer() or leave it out."
            )
        self._entry_point = entry_point
        self._timer = timer
        self._train_state = train_state
        self._eval_state = eval_state
        self._predict_state = predict_state
        self._test_state = test_state
        self._should_stop = False
        self._preempted = False
        self._resume_pending_eval = False
        self._evaluators: Any = None
        """Internal: ``fit``'s ``EvalSchedule`` when ``eval_dataloader`` is ``Evaluators``."""
        """Internal: set by a checkpointer at ``on_train_start`` when the restored run stopped
        with an eval due or in progress inside ``fit``; the loop then runs it first."""
        # Per-run accumulators of the logging callbacks (``callbacks._metric_state``); kept on
        # the State so they live and die with the run.
        self._metric_state: Any = None
        self._active_phase = ActivePhase.TRAIN
        self._duration_tracker: DurationTracker | None = None
        self.metrics: dict[str, Any] = {}
        """Latest scalar metric values by name (``train/loss``, ``eval/accuracy``...), written
        by the unit or logging callbacks and read by early stopping, the progress bar and
        best-checkpoint tracking."""

    @property
    def entry_point(self) -> EntryPoint:
        return self._entry_point

    @property
    def active_phase(self) -> ActivePhase:
        return self._active_phase

    @property
    def timer(self) -> Timer | None:
        return self._timer

    @property
    def train_state(self) -> PhaseState | None:
        return self._train_state

    @property
    def eval_state(self) -> PhaseState | None:
        return self._eval_state

    @property
    def predict_state(self) -> PhaseState | None:
        return self._predict_state

    @property
    def test_state(self) -> PhaseState | None:
        return self._test_state

    def active_phase_state(self) -> PhaseState:
        """The ``PhaseState`` of the phase running now (TNT's ``State.active_phase_state``).

        Raises:
            ValueError: the active phase has no ``PhaseState`` in this run (e.g. ``eval`` in a
                ``train`` run before any phase started).

        Example:
            >>> s = State(entry_point=EntryPoint.TRAIN, train_state=PhaseState(dataloader=[1]))
            >>> s.active_phase_state() is s.train_state
            True
        """
        phase_state = {
            ActivePhase.TRAIN: self._train_state,
            ActivePhase.EVALUATE: self._eval_state,
            ActivePhase.PREDICT: self._predict_state,
            ActivePhase.TEST: self._test_state,
        }[self._active_phase]
        if phase_state is None:
            raise ValueError(
                f"active_phase={self._active_phase.name} has no PhaseState in this "
                f"{self._entry_point.name.lower()} run: read state.active_phase_state() only "
                "inside that phase's hooks."
            )
        return phase_state

    @property
    def duration_tracker(self) -> DurationTracker | None:
        """Global samples, tokens and train wall time, when a ``Duration`` is in use (else None)."""
        return self._duration_tracker

    @property
    def should_stop(self) -> bool:
        return self._should_stop

    @property
    def preempted(self) -> bool:
        """True when the run stopped on a preemption signal (see the checkpointing docs)."""
        return self._preempted

    def stop(self) -> None:
        """End the loop after the current step; the current epoch still closes."""
        self._should_stop = True

    def _stop_for_preemption(self) -> None:
        """End the loop after the current step *without* closing the epoch (checkpointers)."""
        self._should_stop = True
        self._preempted = True
