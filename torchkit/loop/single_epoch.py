"""The one-epoch phase body shared by ``evaluate``, ``predict`` and ``test``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from torchkit.loop.common import (
    call_hook,
    create_iterator,
    empty_epoch_error,
    restore_training_mode,
    set_sampler_epoch,
    set_training_mode,
)
from torchkit.loop.progress import Progress
from torchkit.loop.state import ActivePhase, PhaseState, State
from torchkit.loop.steps import StepFns, StepHooks, run_steps

Hook = Callable[[State], None]
CallbackList = list[Callable[..., None]]


class EpochHooks(NamedTuple):
    """A phase's unit hooks and callback lists, in the order they run."""

    unit_start: Hook
    callbacks_start: CallbackList
    unit_epoch_start: Hook
    callbacks_epoch_start: CallbackList
    callbacks_iter_start: CallbackList
    callbacks_iter_end: CallbackList
    step: StepHooks
    unit_epoch_end: Hook
    callbacks_epoch_end: CallbackList
    unit_end: Hook
    callbacks_end: CallbackList

    @classmethod
    def of(cls, unit: Any, cbs: Any, phase: str) -> EpochHooks:
        """The hooks of ``phase`` (``"eval"``, ``"predict"`` or ``"test"``):
        ``unit.on_<phase>_*`` and the handler's ``on_<phase>_*`` lists."""

        def u(name: str) -> Any:
            return getattr(unit, f"on_{phase}_{name}")

        def c(name: str) -> Any:
            return getattr(cbs, f"on_{phase}_{name}")

        step = StepHooks(
            c("get_next_batch_start"), c("get_next_batch_end"), c("step_start"), c("step_end")
        )
        return cls(
            u("start"), c("start"), u("epoch_start"), c("epoch_start"),
            c("dataloader_iter_creation_start"), c("dataloader_iter_creation_end"), step,
            u("epoch_end"), c("epoch_end"), u("end"), c("end"),
        )  # fmt: skip


def run_single_epoch(
    state: State,
    unit: Any,
    phase_state: PhaseState,
    progress: Progress,
    fns: StepFns,
    hooks: EpochHooks,
    *,
    phase: ActivePhase,
    timer_prefix: str,
    dataloader_name: str,
) -> None:
    """Modules to eval mode; start hooks; one epoch of steps; end hooks; modes restored.

    The epoch-start hooks are skipped when resuming mid-epoch, and a preempted epoch is left
    open (no ``increment_epoch``, no epoch-end hooks) so a resumed run finishes it.
    """
    state._active_phase = phase
    name = str(phase)
    prior_modes = set_training_mode(unit.tracked_modules(), False)
    try:
        call_hook(state, f"{timer_prefix}.on_{name}_start", hooks.unit_start)
        for fn in hooks.callbacks_start:
            fn(state, unit)
        if progress.num_steps_completed_in_epoch == 0:
            call_hook(state, f"{timer_prefix}.on_{name}_epoch_start", hooks.unit_epoch_start)
            for fn in hooks.callbacks_epoch_start:
                fn(state, unit)
        set_sampler_epoch(phase_state.dataloader, progress.num_epochs_completed)
        data_iter = create_iterator(
            state, unit, phase_state.dataloader, f"{timer_prefix}.iter(dataloader)",
            hooks.callbacks_iter_start, hooks.callbacks_iter_end,
        )  # fmt: skip
        exhausted = run_steps(
            state, unit, phase_state, progress, data_iter, fns, hooks.step,
            timer_prefix=timer_prefix, phase_name=name,
        )  # fmt: skip
        if exhausted and progress.num_steps_completed_in_epoch == 0:
            raise empty_epoch_error(dataloader_name, name, progress.num_epochs_completed + 1)
        if not state.preempted:
            progress.increment_epoch()
            call_hook(state, f"{timer_prefix}.on_{name}_epoch_end", hooks.unit_epoch_end)
            for fn in hooks.callbacks_epoch_end:
                fn(state, unit)
        call_hook(state, f"{timer_prefix}.on_{name}_end", hooks.unit_end)
        for fn in hooks.callbacks_end:
            fn(state, unit)
    finally:
        restore_training_mode(prior_modes)
