"""``max_duration`` / ``evaluate_every`` / ``save_every`` in ``train`` and ``fit``: limits, the
floor rule, fractions, an injected clock, bad input before any hook, counters, zero cost."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from torchkit import Duration, EvalUnit, State, TrainUnit, fit, train
from torchkit.callbacks import DistributedCheckpointSaver, Lambda
from torchkit.checkpoint import list_checkpoints

from .recording import RecordingUnit, batches

Batch = dict[str, torch.Tensor]


def token_batches(n: int, batch: int = 4, seq: int = 16) -> list[Batch]:
    """``n`` batches of ``input_ids`` of shape ``(batch, seq)``: 64 tokens per step."""
    g = torch.Generator().manual_seed(0)
    return [{"input_ids": torch.randint(0, 10, (batch, seq), generator=g)} for _ in range(n)]


class TokenUnit(TrainUnit[Batch], EvalUnit[Batch]):
    """A real linear model over ``input_ids``; records the train step at each eval."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(16, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        self.evals_at: list[int] = []

    def train_step(self, state: State, data: Batch) -> None:
        loss = self.net(data["input_ids"].float()).pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.opt.zero_grad()

    def eval_step(self, state: State, data: Batch) -> None:
        pass

    def on_eval_start(self, state: State) -> None:
        self.evals_at.append(self.train_progress.num_steps_completed)


class FakeClock:
    """A monotonic clock that advances 1,000 s during every train step (no sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def callback(self) -> Lambda:
        def install(state: State, unit: Any) -> None:
            assert state.duration_tracker is not None
            state.duration_tracker.clock = self

        def tick(state: State, unit: Any) -> None:
            self.now += 1000.0

        return Lambda(on_train_start=install, on_train_step_start=tick)


class Unsized:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def weights(unit: RecordingUnit) -> list[torch.Tensor]:
    return [p.detach().clone() for p in unit.net.parameters()]


# ---- equivalence with the integer limits ----------------------------------------------------
def test_2ep_is_bit_identical_to_max_epochs_2() -> None:
    a, b = RecordingUnit(), RecordingUnit()
    b.net.load_state_dict(a.net.state_dict())
    train(a, batches(8), max_epochs=2)
    state = train(b, batches(8), max_duration="2ep")
    assert b.train_progress.num_steps_completed == 16
    assert all(torch.equal(x, y) for x, y in zip(weights(a), weights(b)))
    assert state.duration_tracker is not None and state.duration_tracker.max_duration == Duration(
        2, "ep"
    )


def test_20ba_runs_20_steps_and_closes_3_epochs() -> None:
    unit = RecordingUnit()
    train(unit, batches(8), max_duration="20ba")
    assert unit.train_progress.num_steps_completed == 20
    assert unit.train_progress.num_epochs_completed == 3


def test_max_steps_wins_over_a_longer_duration() -> None:
    unit = RecordingUnit()
    train(unit, batches(8), max_steps=5, max_duration="2ep")
    assert unit.train_progress.num_steps_completed == 5


def test_integer_calls_have_no_tracker() -> None:
    unit = RecordingUnit()
    seen: list[Any] = []
    spy = Lambda(on_train_step_end=lambda s, u: seen.append(s.duration_tracker))
    state = train(unit, batches(2), max_steps=1, callbacks=[spy])
    assert state.duration_tracker is None and seen == [None]


# ---- samples and tokens ---------------------------------------------------------------------
def test_100sp_with_batch_16_runs_7_steps() -> None:
    unit = RecordingUnit()
    state = train(unit, batches(4, batch_size=16), max_duration="100sp")
    assert unit.train_progress.num_steps_completed == 7  # 96 < 100 <= 112
    assert state.duration_tracker is not None and state.duration_tracker.samples == 112
    assert unit.train_progress.num_epochs_completed == 2  # the cut epoch counts as completed


def test_1e3tok_with_64_tokens_per_step_runs_16_steps() -> None:
    unit = TokenUnit()
    state = train(unit, token_batches(10), max_duration="1e3tok")
    assert unit.train_progress.num_steps_completed == 16  # 960 < 1000 <= 1024
    assert state.duration_tracker is not None and state.duration_tracker.tokens == 1024


def test_count_tokens_falls_back_to_attention_mask() -> None:
    unit = TokenUnit()
    data = [
        {"input_ids": b["input_ids"], "attention_mask": b["input_ids"]} for b in token_batches(2)
    ]
    assert unit.count_tokens({"attention_mask": torch.ones(2, 3)}) == 6
    train(unit, data, max_duration="128tok")
    assert unit.train_progress.num_steps_completed == 2


def test_user_counter_overrides_the_shape_count() -> None:
    class Exact(TokenUnit):
        def count_tokens(self, batch: Batch) -> int:
            return 10  # e.g. a CPU-side non-pad count from the collate function

    unit = Exact()
    train(unit, token_batches(8), max_duration="35tok")
    assert unit.train_progress.num_steps_completed == 4


# ---- the floor rule and fractions -------------------------------------------------------------
def test_evaluate_every_100tok_fires_by_the_floor_rule() -> None:
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_epochs=1, evaluate_every="100tok")
    assert unit.evals_at == [2, 4, 5, 7, 8]  # cumulative 128, 256, 320, 448, 512


def test_evaluate_every_quarter_of_20ba() -> None:
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_duration="20ba", evaluate_every="0.25dur")
    assert unit.evals_at == [5, 10, 15, 20]


def test_evaluate_every_1ep_replaces_the_default() -> None:
    unit = TokenUnit()
    fit(unit, token_batches(3), token_batches(1), max_epochs=2, evaluate_every="1ep")
    assert unit.evals_at == [3, 6]
    unit = TokenUnit()
    fit(unit, token_batches(3), token_batches(1), max_epochs=2, evaluate_every="2ba")
    assert unit.evals_at == [2, 4, 6]  # the default every-epoch eval is off


def test_eval_due_at_the_stopping_step_still_runs() -> None:
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_duration="256tok", evaluate_every="0.5dur")
    assert unit.train_progress.num_steps_completed == 4
    assert unit.evals_at == [2, 4]


def test_fraction_of_epochs_with_an_unsized_loader_raises_before_on_train_start() -> None:
    unit = RecordingUnit()
    with pytest.raises(
        ValueError, match=r"evaluate_every='0.25dur' is invalid .*len\(dataloader\)"
    ):
        fit(unit, Unsized(batches(8)), batches(1), max_duration="2ep", evaluate_every="0.25dur")
    assert unit.log == []


# ---- wall clock, injected ----------------------------------------------------------------------
def test_1h_with_1000s_steps_stops_after_step_4_and_saves_every_30m() -> None:
    clock = FakeClock()
    url = "memory://durations/clock"
    saver = DistributedCheckpointSaver(url, save_every="30m")
    unit = RecordingUnit()
    state = train(unit, batches(8), max_duration="1h", callbacks=[clock.callback(), saver])
    assert unit.train_progress.num_steps_completed == 4  # elapsed 4,000 >= 3,600
    assert unit.train_progress.num_epochs_completed == 1  # stop(): the epoch still closes
    assert state.duration_tracker is not None and state.duration_tracker.seconds == 4000.0
    saved = [u.rsplit("/", 1)[1] for u, _ in list_checkpoints(url)]
    # after steps 2 and 4; no end-of-training save, since step 4's holds that state
    assert saved == ["epoch_0_train_step_2", "epoch_0_train_step_4"]


# ---- bad input: before any hook, before any file -------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_duration": "1.5ep"}, r"max_duration='1\.5ep' is invalid"),
        ({"max_duration": "-1ba"}, r"max_duration='-1ba' is invalid"),
        ({"max_duration": "1.2dur"}, r"max_duration='1\.2dur' is invalid"),
        ({"max_duration": "10xx"}, r"max_duration='10xx' is invalid.*ep, ba, sp, tok, sec, dur"),
        ({"max_duration": ""}, r"max_duration='' is invalid.*ep, ba, sp, tok, sec, dur"),
        ({"max_duration": 10}, r"max_duration=10 is invalid: expected a torchkit.Duration"),
        ({"max_duration": "0.5dur"}, r"max_duration='0.5dur' is invalid: expected a unit other"),
        ({"evaluate_every": "0tok"}, r"evaluate_every='0tok' is invalid: expected a positive"),
        ({"evaluate_every": "0.5dur"}, r"evaluate_every='0.5dur' is invalid: expected max_dur"),
    ],
)
@pytest.mark.parametrize("entry", ["train", "fit"])
def test_bad_durations_raise_before_any_hook(
    entry: str, kwargs: dict[str, Any], match: str, tmp_path: Any
) -> None:
    if entry == "train" and "evaluate_every" in kwargs:
        kwargs = {"callbacks_save_every": kwargs["evaluate_every"]}
        match = match.replace("evaluate_every", "save_every")
    unit = RecordingUnit()
    save_every = kwargs.pop("callbacks_save_every", None)
    with pytest.raises(ValueError, match=match):
        # train has no evaluate_every: check a checkpointer's save_every instead
        saver = DistributedCheckpointSaver(str(tmp_path / "ckpt"), save_every=save_every)
        if entry == "train":
            train(unit, batches(4), callbacks=[saver], **kwargs)
        else:
            fit(unit, batches(4), batches(1), callbacks=[saver], **kwargs)
    assert unit.log == [] and not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("bad", ["1.5ep", "-1ba", "10xx", "", 7])
def test_bad_save_every_raises_at_construction(bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"save_every={bad!r} is invalid".replace(".", r"\.")):
        DistributedCheckpointSaver("memory://durations/bad", save_every=bad)


def test_dur_save_every_with_an_unsized_loader_raises_before_any_file(tmp_path: Any) -> None:
    unit = RecordingUnit()
    saver = DistributedCheckpointSaver(str(tmp_path / "ckpt"), save_every="0.25dur")
    with pytest.raises(ValueError, match=r"save_every='0.25dur' is invalid .*len\(dataloader\)"):
        train(unit, Unsized(batches(4)), max_duration="2ep", callbacks=[saver])
    assert unit.log == [] and not (tmp_path / "ckpt").exists()


def test_tok_budget_without_token_information_raises_at_step_1() -> None:
    unit = RecordingUnit()  # plain tensor batches: no input_ids
    with pytest.raises(ValueError, match=r"RecordingUnit\.count_tokens\(batch\) returned None"):
        train(unit, batches(4), max_duration="1e3tok")
    assert unit.train_progress.num_steps_completed == 0


def test_sp_budget_with_a_zero_counter_raises() -> None:
    class Zero(RecordingUnit):
        def count_samples(self, batch: Any) -> int:
            return 0

    with pytest.raises(ValueError, match=r"count_samples\(batch\) returned 0: cannot count"):
        train(Zero(), batches(4), max_duration="100sp")


def test_a_tensor_count_is_rejected() -> None:
    class TensorCount(TokenUnit):
        def count_tokens(self, batch: Batch) -> Any:
            return batch["input_ids"].ne(0).sum()

    with pytest.raises(ValueError, match=r"count_tokens\(batch\) returned tensor.*Python int"):
        train(TensorCount(), token_batches(2), max_duration="100tok")


# ---- fit's eval arguments ---------------------------------------------------------------------
def test_default_evaluate_every_n_epochs_still_reads_1() -> None:
    assert inspect.signature(fit).parameters["evaluate_every_n_epochs"].default == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"evaluate_every_n_epochs": 2}, r"evaluate_every_n_epochs=2 is invalid together"),
        ({"evaluate_every_n_epochs": 1}, r"evaluate_every_n_epochs=1 is invalid together"),
        ({"evaluate_every_n_steps": 3}, r"evaluate_every_n_steps=3 is invalid together"),
    ],
)
def test_evaluate_every_with_an_explicit_integer_interval_raises(
    kwargs: dict[str, Any], match: str
) -> None:
    unit = RecordingUnit()
    with pytest.raises(ValueError, match=match):
        fit(unit, batches(4), batches(1), max_epochs=1, evaluate_every="2ba", **kwargs)
    assert unit.log == []


# ---- checkpointing the counts -------------------------------------------------------------------
def test_restored_counts_continue_and_a_met_budget_runs_no_step() -> None:
    url = "memory://durations/restore"
    unit = TokenUnit()
    saver = DistributedCheckpointSaver(url, save_every="192tok")
    train(unit, token_batches(8), max_duration="256tok", callbacks=[saver])
    assert [u.rsplit("/", 1)[1] for u, _ in list_checkpoints(url)] == [
        "epoch_0_train_step_3",
        "epoch_1_train_step_4",
    ]
    resumed = TokenUnit()
    DistributedCheckpointSaver.restore(f"{url}/epoch_0_train_step_3", resumed)
    state = train(resumed, token_batches(8), max_duration="256tok")
    assert state.duration_tracker is not None and state.duration_tracker.tokens == 256
    assert resumed.train_progress.num_steps_completed == 4  # one more step: 192 -> 256
    again = TokenUnit()
    DistributedCheckpointSaver.restore(f"{url}/epoch_1_train_step_4", again)
    train(again, token_batches(8), max_duration="256tok")
    assert again.train_progress.num_steps_completed == 4  # the budget was already met


def test_evaluate_every_30m_with_an_injected_clock() -> None:
    clock = FakeClock()
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_duration="1h", evaluate_every="30m",
        callbacks=[clock.callback()])  # fmt: skip
    assert unit.train_progress.num_steps_completed == 4
    assert unit.evals_at == [2, 4]  # 2,000 s and 4,000 s cross a 1,800 s boundary


def test_a_save_at_a_step_with_a_due_token_eval_reruns_it_on_resume() -> None:
    url = "memory://durations/eval_pending"
    saver = DistributedCheckpointSaver(url, save_every="128tok")
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_duration="256tok", evaluate_every="128tok",
        callbacks=[saver])  # fmt: skip
    assert unit.evals_at == [2, 4]
    resumed = TokenUnit()
    DistributedCheckpointSaver.restore(f"{url}/epoch_0_train_step_2", resumed)
    fit(resumed, token_batches(8), token_batches(1), max_duration="256tok",
        evaluate_every="128tok", callbacks=[DistributedCheckpointSaver(url + "2")])  # fmt: skip
    assert resumed.evals_at == [2, 4]  # the eval due at step 2 runs first, then step 4's


def test_counting_and_deciding_read_no_tensor_value(host_syncs: list[str]) -> None:
    unit = TokenUnit()
    fit(unit, token_batches(8), token_batches(1), max_duration="500tok", evaluate_every="100sp",
        callbacks=[FakeClock().callback()])  # fmt: skip
    fit(unit, token_batches(8), token_batches(1), max_duration="1h", evaluate_every="100tok",
        callbacks=[FakeClock().callback()])  # fmt: skip
    assert unit.train_progress.num_steps_completed == 8 + 4
    assert host_syncs == []
