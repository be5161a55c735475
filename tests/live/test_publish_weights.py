"""PublishWeights: when it publishes, what it copies, and that training never notices."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import pytest
import torch

from tests.live.units import MSEAutoUnit, OnStep, SGDUnit, StatefulNet, batches, mlp
from torchkit import train
from torchkit.live import LiveModel, PublishWeights


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_optimizer_steps": 0}, r"every_n_optimizer_steps=0 is invalid"),
        ({"every_n_train_steps": -1}, r"every_n_train_steps=-1 is invalid"),
        ({"every_n_epochs": 0}, r"every_n_epochs=0 is invalid"),
        ({"every_n_train_steps": 1.5}, r"every_n_train_steps=1.5 is invalid"),
        ({"on_busy": "block"}, r"on_busy='block' is invalid: expected 'skip' or 'wait'"),
        ({"ranks": (1,)}, r"ranks=\(1,\) is invalid: expected a non-empty tuple of global ranks"),
        ({"ranks": ()}, r"ranks=\(\) is invalid"),
        ({"ranks": (-1,)}, r"ranks=\(-1,\) is invalid"),
        ({"ranks": 0}, r"ranks=0 is invalid"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    live = LiveModel.from_module(mlp())
    with pytest.raises(ValueError, match=match):
        PublishWeights(live, **kwargs)


def test_non_live_model_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"live=3 is invalid: expected a torchkit.live.LiveModel"):
        PublishWeights(3)  # type: ignore[arg-type]


def test_rank_outside_the_world_raises_before_any_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module)
    cb = PublishWeights(live, ranks=(1,))  # valid for the world the environment announced
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match=r"ranks=\(1,\) is invalid"):
        train(unit, batches(3), max_epochs=1, callbacks=[cb])
    assert unit.train_progress.num_steps_completed == 0


def _train_sgd(callbacks: list[Any], n: int = 12) -> SGDUnit:
    unit = SGDUnit()
    train(unit, batches(n), max_epochs=1, callbacks=callbacks)
    return unit


def test_training_is_unperturbed_and_references_are_kept() -> None:
    reference = _train_sgd([])
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module)
    before: dict[str, Any] = {}

    def snapshot_refs(state: Any, u: SGDUnit) -> None:
        params = [p for g in u.optimizer.param_groups for p in g["params"]]
        before["ids"] = [id(p) for p in params] + [id(p.grad) for p in params]
        before["values"] = [p.detach().clone() for p in params] + [p.grad.clone() for p in params]
        before["modes"] = [m.training for m in u.module.modules()]
        before["version"] = live.version

    def check_refs(state: Any, u: SGDUnit) -> None:
        assert live.version == before["version"] + 1  # a publish happened in between
        params = [p for g in u.optimizer.param_groups for p in g["params"]]
        assert [id(p) for p in params] + [id(p.grad) for p in params] == before["ids"]
        values = [p.detach() for p in params] + [p.grad for p in params]
        assert all(torch.equal(a, b) for a, b in zip(values, before["values"]))
        assert [m.training for m in u.module.modules()] == before["modes"]

    cbs = [OnStep(snapshot_refs), PublishWeights(live, every_n_train_steps=1), OnStep(check_refs)]
    train(unit, batches(12), max_epochs=1, callbacks=cbs)
    assert live.version == 12
    for a, b in zip(unit.module.state_dict().values(), reference.module.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(unit.module.seen, reference.module.seen)


def test_snapshot_equals_the_module_at_the_publish_step() -> None:
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module)
    checked: list[int] = []

    def compare(state: Any, u: SGDUnit) -> None:
        if u.train_progress.num_steps_completed % 2:
            return  # not a publish step
        with live.acquire() as snap:
            assert snap.train_step == u.train_progress.num_steps_completed
            src = dict(u.module.named_parameters()) | dict(u.module.named_buffers())
            dst = dict(snap.module.named_parameters()) | dict(snap.module.named_buffers())
            assert src.keys() == dst.keys() and "seen" in dst and "bn.num_batches_tracked" in dst
            for name, tensor in src.items():
                assert torch.equal(dst[name], tensor), name
            assert snap.module.bn.num_batches_tracked.item() == snap.train_step
            assert snap.module.seen.item() == 8 * snap.train_step  # non-persistent buffer
        # the user's eval-mode submodule stays in eval mode; the rest stays in train mode
        assert not u.module.frozen.training and u.module.training and u.module.bn.training
        checked.append(snap.train_step)

    cbs = [PublishWeights(live, every_n_train_steps=2), OnStep(compare)]
    train(unit, batches(6), max_epochs=1, callbacks=cbs)
    assert checked == [2, 4, 6]
    frozen_mean = StatefulNet().frozen.running_mean
    with live.acquire() as snap:
        assert torch.equal(snap.module.frozen.running_mean, frozen_mean)  # never updated


def test_accumulation_publishes_only_after_optimizer_steps() -> None:
    unit = MSEAutoUnit(module=mlp(), device="cpu", gradient_accumulation_steps=4)
    live = LiveModel.from_module(unit.module)
    steps: list[int] = []
    record = OnStep(lambda s, u: steps.append(live._slots[live._current].snapshot.train_step))
    cb = PublishWeights(live, every_n_optimizer_steps=1)
    train(unit, batches(16), max_epochs=1, callbacks=[cb, record])
    assert unit.num_optimizer_steps == 4
    assert live.version == 4
    assert sorted(set(steps) - {0}) == [4, 8, 12, 16]


def test_default_interval_is_every_optimizer_step() -> None:
    unit = MSEAutoUnit(module=mlp(), device="cpu", gradient_accumulation_steps=2)
    live = LiveModel.from_module(unit.module)
    train(unit, batches(6), max_epochs=1, callbacks=[PublishWeights(live, on_train_end=False)])
    assert live.version == 3


def test_every_n_epochs_and_train_end_without_double_publish() -> None:
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module)
    train(unit, batches(4), max_epochs=3, callbacks=[PublishWeights(live, every_n_epochs=2)])
    # epoch 2 ends at step 8; train end at step 12; nothing twice
    with live.acquire() as snap:
        assert (live.version, snap.train_step) == (2, 12)


def test_first_publish_after_resume_is_at_the_next_interval() -> None:
    unit = SGDUnit()
    unit.train_progress.load_state_dict(
        {"num_epochs_completed": 1, "num_steps_completed": 5, "num_steps_completed_in_epoch": 0}
    )
    live = LiveModel.from_module(unit.module)
    seen: list[tuple[int, int]] = []
    probe = OnStep(lambda s, u: seen.append((u.train_progress.num_steps_completed, live.version)))
    cb = PublishWeights(live, every_n_train_steps=4, on_train_end=False)
    train(unit, batches(7), max_epochs=2, callbacks=[cb, probe])
    assert next(step for step, v in seen if v > 0) == 8
    assert live.version == 2  # steps 8 and 12


def test_slow_reader_never_blocks_training() -> None:
    """A reader holds two snapshots (buffers=3) across 5 publishes: they are skipped, the
    held weights never change, and training runs to the end while the reader still holds."""
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module, buffers=3)
    holding_two = threading.Event()
    training_done = threading.Event()
    held: dict[str, Any] = {}

    def reader() -> None:
        with live.acquire() as first:
            held["first"] = (first, first.module.lin.weight.clone())
            live.wait_for_version(1)
            with live.acquire() as second:
                held["second"] = (second, second.module.lin.weight.clone())
                holding_two.set()
                training_done.wait()
                held["after"] = [first.module.lin.weight.clone(), second.module.lin.weight.clone()]

    def gate(state: Any, u: SGDUnit) -> None:
        if u.train_progress.num_steps_completed == 1:
            assert holding_two.wait(timeout=60)  # from here on the reader holds two copies

    t = threading.Thread(target=reader)
    t.start()
    cbs = [PublishWeights(live, every_n_train_steps=1, on_train_end=False), OnStep(gate)]
    trainer = threading.Thread(
        target=train, args=(unit, batches(7)), kwargs={"max_epochs": 1, "callbacks": cbs}
    )
    trainer.start()
    trainer.join(timeout=120)
    finished = not trainer.is_alive()
    training_done.set()
    t.join()
    trainer.join()
    assert finished, "training blocked on the reader"
    assert unit.train_progress.num_steps_completed == 7
    assert live.skipped_publishes >= 1
    (first, w1), (second, w2) = held["first"], held["second"]
    assert torch.equal(held["after"][0], w1) and torch.equal(held["after"][1], w2)
    assert (first.version, second.version) == (0, 1)


def test_a_skipped_publish_retries_at_the_next_step() -> None:
    unit = SGDUnit()
    live = LiveModel.from_module(unit.module, buffers=2)
    hold_v0, hold_v1 = contextlib.ExitStack(), contextlib.ExitStack()
    hold_v0.enter_context(live.acquire())

    def probe(state: Any, u: SGDUnit) -> None:
        step = u.train_progress.num_steps_completed
        if step == 3:  # version 1 was just published; hold it too: nothing is free now
            hold_v1.enter_context(live.acquire())
        if step == 6:
            assert live.skipped_publishes == 1 and live.version == 1
            hold_v0.close()

    cbs = [PublishWeights(live, every_n_train_steps=3, on_train_end=False), OnStep(probe)]
    train(unit, batches(8), max_epochs=1, callbacks=cbs)
    hold_v1.close()
    with live.acquire() as snap:  # the step-6 publish was retried at step 7
        assert (live.version, snap.train_step, live.skipped_publishes) == (2, 7, 1)
        assert not torch.equal(snap.module.lin.weight, unit.module.lin.weight)  # step 8 moved on


def test_gather_cost_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cb = PublishWeights(LiveModel.from_module(mlp()))
    with caplog.at_level(logging.WARNING, logger="torchkit.live.publish_weights"):
        cb._check_gather_cost(0.5, now=10.0)  # first publish: nothing to compare with
        cb._check_gather_cost(0.01, now=11.0)  # 1 % of the interval
        assert caplog.records == []
        cb._check_gather_cost(0.2, now=12.0)  # 20 %
        cb._check_gather_cost(0.9, now=13.0)
    assert len(caplog.records) == 1
    assert "20%" in caplog.records[0].getMessage() and "Publish less often" in caplog.text


def test_publishing_reads_no_tensor_on_the_host(host_syncs: list[str]) -> None:
    unit = MSEAutoUnit(module=mlp(), device="cpu")
    live = LiveModel.from_module(unit.module)
    train(unit, batches(6), max_epochs=1, callbacks=[PublishWeights(live, every_n_train_steps=1)])
    assert live.version == 6
    assert host_syncs == []


def test_failing_reader_threads_never_disturb_training() -> None:
    reference = _train_sgd([])
    unit = SGDUnit()
    failures: list[BaseException] = []

    def explode(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        module(x)
        raise RuntimeError("reader bug")

    live = LiveModel.from_module(unit.module, inference_procedure=explode)
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                live.infer(torch.randn(4, 3))
            except RuntimeError as exc:
                failures.append(exc)
            live.wait_for_version(live.version + 1, timeout=0.05)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        train(
            unit, batches(12), max_epochs=1, callbacks=[PublishWeights(live, every_n_train_steps=1)]
        )
    finally:
        done.set()
        for t in threads:
            t.join()
    assert failures and all(str(f) == "reader bug" for f in failures)
    assert all(slot.readers == 0 for slot in live._slots) and live.version == 12
    for a, b in zip(unit.module.state_dict().values(), reference.module.state_dict().values()):
        assert torch.equal(a, b)
