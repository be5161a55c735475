"""LiveModel on its own: bad input, the construction copy, parallel readers, publishing."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from torchkit.live import LiveModel


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"buffers": 1}, r"buffers=1 is invalid: expected an int >= 2"),
        ({"buffers": 0}, r"buffers=0 is invalid"),
        ({"buffers": 2.0}, r"buffers=2.0 is invalid"),
        ({"buffers": True}, r"buffers=True is invalid"),
        ({"dtype": torch.int32}, r"dtype=torch.int32 is invalid: expected None or a floating"),
        ({"inference_procedure": "no_such"}, r"inference_procedure='no_such' is invalid"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LiveModel.from_module(_net(), **kwargs)  # type: ignore[arg-type]


def test_non_module_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"module=\[1, 2\] is invalid: expected a torch.nn.Module"):
        LiveModel.from_module([1, 2])  # type: ignore[arg-type]


def test_non_callable_procedure_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"inference_procedure=3 is invalid: expected a callable"):
        LiveModel.from_module(_net(), inference_procedure=3)  # type: ignore[arg-type]


def test_infer_before_first_publish_uses_the_construction_copy() -> None:
    net = _net().eval()
    x = torch.randn(5, 3)
    expected = net(x)
    live = LiveModel.from_module(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # the training module moves on; nothing was published
    assert live.version == 0
    torch.testing.assert_close(live.infer(x), expected, rtol=0, atol=0)
    with live.acquire() as snap:
        assert (snap.version, snap.train_step) == (0, 0)


def test_copies_are_eval_mode_without_grad_and_the_source_is_untouched() -> None:
    net = _net()
    net.train()
    live = LiveModel.from_module(net, buffers=2)
    assert net.training and all(p.requires_grad for p in net.parameters())
    with live.acquire() as snap:
        assert not snap.module.training
        assert not any(p.requires_grad for p in snap.module.parameters())
        assert snap.module is not net


def test_infer_runs_under_inference_mode() -> None:
    seen: list[bool] = []

    def procedure(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.is_inference_mode_enabled())
        return module(x)

    live = LiveModel.from_module(_net(), inference_procedure=procedure)
    assert live.infer(torch.randn(2, 3)).shape == (2, 2)
    assert seen == [True]


class WithAct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)

    def act(self, x: torch.Tensor, *, offset: int = 0) -> torch.Tensor:
        return self.lin(x).argmax(-1) + offset


def test_inference_procedure_by_method_name() -> None:
    net = WithAct()
    live = LiveModel.from_module(net, inference_procedure="act")
    x = torch.randn(4, 2)
    assert torch.equal(live.infer(x, offset=10), net.act(x) + 10)


def test_publish_copies_weights_and_buffers_and_casts_dtype() -> None:
    net = _net()
    live = LiveModel.from_module(net, dtype=torch.bfloat16)
    net.train()
    net(torch.randn(8, 3))  # BatchNorm running stats move
    assert live.publish(train_step=7)
    with live.acquire() as snap:
        assert (snap.version, snap.train_step) == (1, 7)
        bn = snap.module[1]
        assert bn.running_mean.dtype == torch.bfloat16
        assert torch.equal(bn.running_mean, net[1].running_mean.to(torch.bfloat16))
        assert bn.num_batches_tracked.dtype == torch.int64 and bn.num_batches_tracked.item() == 1
        assert torch.equal(snap.module[0].weight, net[0].weight.to(torch.bfloat16))


def test_ddp_like_wrapper_is_looked_through() -> None:
    net = _net()
    live = LiveModel.from_module(nn.DataParallel(net))
    with torch.no_grad():
        net[0].weight.fill_(3.0)
    live.publish()
    with live.acquire() as snap:
        assert torch.equal(snap.module[0].weight, net[0].weight)


def test_readers_run_in_parallel() -> None:
    """Two readers are inside acquire() at the same time: no lock serialises readers."""
    live = LiveModel.from_module(_net())
    both_inside = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with live.acquire():
                both_inside.wait()
        except BaseException as exc:  # a broken barrier means the readers were serialised
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_reader_exception_releases_its_copy() -> None:
    net = nn.Linear(2, 1)
    live = LiveModel.from_module(net, buffers=2)
    with pytest.raises(ZeroDivisionError), live.acquire():
        raise ZeroDivisionError
    # with buffers=2 a leaked hold on the current copy would make the second publish skip
    assert live.publish(1) and live.publish(2) and live.publish(3)
    assert live.skipped_publishes == 0 and live.version == 3


def test_held_snapshot_never_changes_and_excess_publishes_skip() -> None:
    net = nn.Linear(4, 1)
    live = LiveModel.from_module(net, buffers=3)
    with live.acquire() as first:
        held_first = first.module.weight.clone()
        for step in range(1, 3):
            with torch.no_grad():
                net.weight.add_(1.0)
            assert live.publish(step)  # one held copy never makes a publish skip
        assert live.skipped_publishes == 0
        with live.acquire() as second:
            held_second = second.module.weight.clone()
            for step in range(3, 6):
                with torch.no_grad():
                    net.weight.add_(1.0)
                # step 3 takes the last free copy; then two are held and one is current
                assert live.publish(step) == (step == 3)
            assert torch.equal(first.module.weight, held_first)
            assert torch.equal(second.module.weight, held_second)
    assert live.skipped_publishes == 2
    assert live.publish(6)
    with live.acquire() as snap:
        assert torch.equal(snap.module.weight, net.weight) and snap.version == 4


def test_wait_publishes_once_a_reader_lets_go() -> None:
    net = nn.Linear(2, 1)
    live = LiveModel.from_module(net, buffers=2)
    release = threading.Event()
    holding = threading.Event()

    def reader() -> None:
        live.publish(1)  # the reader holds version 1; version 0's copy is the only other
        with live.acquire():
            holding.set()
            release.wait()

    t = threading.Thread(target=reader)
    t.start()
    holding.wait()
    with torch.no_grad():
        net.weight.fill_(5.0)
    assert live.publish(2)  # version 0's copy is free
    result: list[bool] = []
    publisher = threading.Thread(target=lambda: result.append(live.publish(3, wait=True)))
    publisher.start()
    with live._cond:  # the publisher is waiting for the reader
        assert live._cond.wait_for(lambda: live._waiters > 0, timeout=30)
    assert result == []
    release.set()
    publisher.join()
    t.join()
    assert result == [True] and live.version == 3 and live.skipped_publishes == 0


def test_wait_for_version_times_out_and_wakes() -> None:
    live = LiveModel.from_module(nn.Linear(2, 1))
    assert not live.wait_for_version(1, timeout=0.01)
    t = threading.Thread(target=live.publish)
    t.start()
    assert live.wait_for_version(1, timeout=30)
    t.join()
