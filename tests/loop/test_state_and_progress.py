"""Progress counters and state_dict, State / PhaseState / ActivePhase / EntryPoint."""

from __future__ import annotations

import pytest

from torchkit import ActivePhase, EntryPoint, PhaseState, Progress, State, train
from torchkit.callbacks import Callback, Lambda
from torchkit.callbacks.callback import HOOK_NAMES
from torchkit.loop import Phase
from torchkit.loop.callback_handler import CallbackHandler

from .recording import RecordingUnit, batches


def test_progress_increments() -> None:
    p = Progress()
    for _ in range(3):
        p.increment_step()
    assert (p.num_steps_completed, p.num_steps_completed_in_epoch) == (3, 3)
    p.increment_epoch()
    assert p.num_epochs_completed == 1
    assert p.num_steps_completed_in_epoch == 0
    assert p.num_steps_completed_in_prev_epoch == 3
    p.increment_step()
    p.increment_epoch()
    assert p.num_steps_completed_in_prev_epoch == 1
    assert p.num_steps_completed == 4


def test_progress_state_dict_round_trip() -> None:
    p = Progress(num_epochs_completed=2, num_steps_completed=7, num_steps_completed_in_epoch=3,
                 num_steps_completed_in_prev_epoch=4)  # fmt: skip
    sd = p.state_dict()
    assert sd == {
        "num_epochs_completed": 2,
        "num_steps_completed": 7,
        "num_steps_completed_in_epoch": 3,
        "num_steps_completed_in_prev_epoch": 4,
    }
    q = Progress()
    q.load_state_dict(sd)
    assert q == p
    assert q.state_dict() == sd
    sd["num_steps_completed"] = 100  # the state dict is a copy, not a view
    assert p.num_steps_completed == 7


def test_progress_loads_an_old_state_dict_without_prev_epoch() -> None:
    q = Progress()
    q.load_state_dict(
        {"num_epochs_completed": 1, "num_steps_completed": 5, "num_steps_completed_in_epoch": 0}
    )
    assert (q.num_epochs_completed, q.num_steps_completed) == (1, 5)
    assert q.num_steps_completed_in_prev_epoch == 0


def test_progress_survives_a_train_run_round_trip() -> None:
    unit = RecordingUnit()
    train(unit, batches(3), max_steps=4)
    copy = Progress()
    copy.load_state_dict(unit.train_progress.state_dict())
    assert copy == unit.train_progress
    assert repr(copy).startswith("Progress(num_epochs_completed=2, num_steps_completed=4")


@pytest.mark.parametrize(
    ("phase", "text", "as_phase"),
    [
        (ActivePhase.TRAIN, "train", Phase.TRAIN),
        (ActivePhase.EVALUATE, "eval", Phase.EVALUATE),
        (ActivePhase.PREDICT, "predict", Phase.PREDICT),
        (ActivePhase.TEST, "test", Phase.TEST),
    ],
)
def test_active_phase_str_and_into_phase(phase: ActivePhase, text: str, as_phase: Phase) -> None:
    assert str(phase) == text
    assert f"{phase}/loss" == f"{text}/loss"
    assert phase.into_phase() is as_phase


def test_phase_is_exported_at_top_level() -> None:
    import torchkit

    assert torchkit.Phase is Phase
    assert {m.name for m in EntryPoint} == {"FIT", "TRAIN", "EVALUATE", "PREDICT", "TEST"}


def test_state_stop_and_read_only_fields() -> None:
    ps = PhaseState(dataloader=[1, 2], max_epochs=3)
    s = State(entry_point=EntryPoint.TRAIN, train_state=ps)
    assert not s.should_stop
    assert s.train_state is ps and s.eval_state is None and s.predict_state is None
    assert s.entry_point is EntryPoint.TRAIN
    s.stop()
    assert s.should_stop
    assert not s.preempted
    for attr in ("entry_point", "active_phase", "train_state", "should_stop", "timer"):
        with pytest.raises(AttributeError):
            setattr(s, attr, None)


def test_active_phase_tracks_the_running_phase() -> None:
    from torchkit import fit

    seen: list[tuple[str, str]] = []
    cb = Lambda(
        on_train_step_end=lambda s, u: seen.append(("train", str(s.active_phase))),
        on_eval_step_end=lambda s, u: seen.append(("eval", str(s.active_phase))),
    )
    state = fit(RecordingUnit(), batches(2), batches(1), max_epochs=1,
                evaluate_every_n_steps=1, callbacks=[cb])  # fmt: skip
    assert all(a == b for a, b in seen)
    assert [a for a, _ in seen] == ["train", "eval", "train", "eval", "eval"]
    assert state.entry_point is EntryPoint.FIT


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [({"max_epochs": -1}, ValueError), ({"max_steps_per_epoch": 1.5}, ValueError),
     ({"max_steps": "x"}, TypeError), ({"evaluate_every_n_steps": 0}, ValueError)],
)  # fmt: skip
def test_phase_state_validates_its_arguments(kwargs: dict[str, object], exc: type) -> None:
    with pytest.raises(exc, match=next(iter(kwargs))):
        PhaseState(dataloader=[1], **kwargs)  # type: ignore[arg-type]


# callback dispatch -------------------------------------------------------------------------------


def test_callback_handler_lists_only_overridden_hooks() -> None:
    class StepEnd(Callback):
        def on_train_step_end(self, state: State, unit: object) -> None:
            pass

    lam = Lambda(on_eval_start=lambda s, u: None)
    handler = CallbackHandler([StepEnd(), Callback(), lam])
    for hook in HOOK_NAMES:
        expected = {"on_train_step_end": 1, "on_eval_start": 1}.get(hook, 0)
        assert len(getattr(handler, hook)) == expected, hook
    assert handler.callbacks[2] is lam


def test_callback_handler_inherited_override_counts() -> None:
    class Base(Callback):
        def on_train_start(self, state: State, unit: object) -> None:
            pass

    class Child(Base):
        pass

    assert len(CallbackHandler([Child()]).on_train_start) == 1


def test_callback_handler_accepts_none_and_tuples() -> None:
    assert CallbackHandler(None).callbacks == []
    cb = Callback()
    assert CallbackHandler((cb,)).callbacks == [cb]
