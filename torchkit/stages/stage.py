"""``Stage``: one step of a multi-stage run (a unit factory, its data, limits and hand-off)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal

from torchkit.callbacks.base_checkpointer import BaseCheckpointer
from torchkit.callbacks.callback import Callback
from torchkit.loop.common import check_dataloader
from torchkit.loop.state import check_limit

Handoff = Literal["modules", "all", "none"]
HANDOFFS = ("modules", "all", "none")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Stage:
    """One stage of ``run_stages``: how to build its unit, what to train on, for how long.

    Args:
        name: a unique name, used in folder names (letters, digits, ``_``, ``.``, ``-``).
        make_unit: ``make_unit(previous_unit_or_None) -> unit``; it may return the previous
            unit itself to keep training it, or build a new one (e.g. a new head on
            ``previous.trunk``).
        train_dataloader: the stage's train batches.
        eval_dataloader: with it the stage runs ``fit`` (the unit must be an ``EvalUnit``
            too), without it ``train``.
        max_epochs: epochs *this stage* runs (the helper adds the unit's progress at the
            stage start, so a reused unit trains this many more).
        max_steps: steps this stage runs, likewise.
        handoff: what a new stage loads from the previous stage's final checkpoint:
            ``"modules"`` (weights of the modules whose names match; optimizer, scheduler
            and progress start fresh), ``"all"`` (everything the checkpoint holds that
            matches: weights, optimizers, schedulers, progress, metrics) or ``"none"``.
        callbacks: callbacks for this stage only (after ``run_stages``' own).

    Raises:
        ValueError: a bad name, limit or ``handoff``; an empty sized dataloader; a
            checkpointer in ``callbacks`` (``run_stages`` checkpoints every stage itself).
        TypeError: ``make_unit`` is not callable, a dataloader is not iterable, or a callback
            is not a ``Callback``.

    Example:
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> stage = Stage("pretrain", lambda prev: DummyTrainUnit(2),
        ...               generate_random_dataloader(8, 2, 4), max_epochs=2)
        >>> stage.handoff
        'modules'
    """

    name: str
    make_unit: Callable[[Any], Any]
    train_dataloader: Iterable[Any]
    eval_dataloader: Iterable[Any] | None = None
    _: KW_ONLY
    max_epochs: int | None = None
    max_steps: int | None = None
    handoff: Handoff = "modules"
    callbacks: Sequence[Callback] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"name={self.name!r} is invalid: expected a non-empty name of letters, digits, "
                "'_', '.' or '-' (it names the stage's folder). Pass e.g. name='pretrain'."
            )
        if not callable(self.make_unit):
            raise TypeError(
                f"make_unit={self.make_unit!r} is invalid: expected a callable "
                "make_unit(previous_unit_or_None) -> unit."
            )
        check_dataloader("train_dataloader", self.train_dataloader)
        if self.eval_dataloader is not None:
            check_dataloader("eval_dataloader", self.eval_dataloader)
        object.__setattr__(self, "max_epochs", check_limit("max_epochs", self.max_epochs))
        object.__setattr__(self, "max_steps", check_limit("max_steps", self.max_steps))
        if self.handoff not in HANDOFFS:
            raise ValueError(
                f"handoff={self.handoff!r} is invalid: expected one of {HANDOFFS}. Use "
                "'modules' to start from the previous stage's weights only."
            )
        object.__setattr__(self, "callbacks", tuple(check_callbacks("callbacks", self.callbacks)))


def check_callbacks(name: str, callbacks: Sequence[Callback] | None) -> list[Callback]:
    """Validate a callback list for a stage (no checkpointer: the helper owns checkpoints)."""
    out = list(callbacks or ())
    for cb in out:
        if not isinstance(cb, Callback):
            raise TypeError(f"{name} holds {cb!r}: expected torchkit.Callback instances.")
        if isinstance(cb, BaseCheckpointer):
            raise ValueError(
                f"{name} holds {type(cb).__name__}: run_stages checkpoints every stage itself "
                "under dirpath/stages/. Remove the checkpointer from the callbacks."
            )
    return out
