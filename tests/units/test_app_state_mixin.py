"""AppStateMixin: attribute tracking of everything a checkpoint must hold."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchmetrics

from torchkit import AppStateMixin, Progress, State, TrainUnit, train
from torchkit.utils import MultiStateful


class CounterStateful:
    """A non-torch object with the Stateful protocol."""

    def __init__(self) -> None:
        self.n = 0

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.n = state_dict["n"]


class Tracked(AppStateMixin):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 2)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1)
        self.progress = Progress()
        self.metric = torchmetrics.MeanMetric()
        self.metrics = torchmetrics.MetricCollection({"mean": torchmetrics.MeanMetric()})
        self.scaler = torch.amp.GradScaler("cpu")
        self.counter = CounterStateful()
        self.plain = 3
        self.module_cls = torch.nn.Linear  # a class, not an instance: never tracked


def test_tracks_each_kind_under_its_attribute_name() -> None:
    u = Tracked()
    assert list(u.tracked_modules()) == ["net"]
    assert u.tracked_modules()["net"] is u.net
    assert list(u.tracked_optimizers()) == ["opt"]
    assert list(u.tracked_lr_schedulers()) == ["sched"]
    assert list(u.tracked_progress()) == ["progress"]
    # metrics are nn.Modules, yet they are tracked as metrics, not modules
    assert set(u.tracked_metrics()) == {"metric", "metrics"}
    assert set(u.tracked_misc_statefuls()) == {"scaler", "counter"}
    assert set(u.app_state()) == {
        "net", "opt", "sched", "progress", "metric", "metrics", "scaler", "counter"
    }  # fmt: skip
    assert u.tracked_stateful_names() == set(u.app_state())


def test_plain_values_and_classes_are_not_tracked() -> None:
    u = Tracked()
    assert "plain" not in u.app_state()
    assert "module_cls" not in u.app_state()
    assert u.module_cls is torch.nn.Linear
    assert u.plain == 3


def test_reassigning_to_a_non_stateful_value_untracks() -> None:
    u = Tracked()
    u.net = None  # type: ignore[assignment]
    assert "net" not in u.tracked_modules()
    assert "net" not in u.app_state()
    u.counter = 5  # type: ignore[assignment]
    assert "counter" not in u.tracked_misc_statefuls()


def test_reassigning_to_another_kind_moves_the_entry() -> None:
    u = Tracked()
    u.net = Progress()  # type: ignore[assignment]
    assert "net" not in u.tracked_modules()
    assert set(u.tracked_progress()) == {"progress", "net"}


def test_reassigning_a_new_module_replaces_the_tracked_one() -> None:
    u = Tracked()
    new = torch.nn.Linear(2, 2)
    u.net = new
    assert u.tracked_modules() == {"net": new}


def test_delattr_untracks() -> None:
    u = Tracked()
    del u.opt
    del u.metric
    assert "opt" not in u.tracked_optimizers()
    assert "metric" not in u.tracked_metrics()
    assert not hasattr(u, "opt")
    del u.plain
    assert not hasattr(u, "plain")


def test_tracked_dicts_are_copies() -> None:
    u = Tracked()
    u.tracked_modules().clear()
    assert "net" in u.tracked_modules()


def test_app_state_state_dicts_round_trip() -> None:
    u, v = Tracked(), Tracked()
    u.counter.n = 7
    u.progress.increment_step()
    with torch.no_grad():
        u.net.weight.fill_(1.5)
    for name, obj in u.app_state().items():
        v.app_state()[name].load_state_dict(obj.state_dict())
    assert v.counter.n == 7
    assert v.progress == u.progress
    assert torch.equal(v.net.weight, u.net.weight)


def test_multi_stateful_in_a_unit_is_tracked() -> None:
    class U(AppStateMixin):
        def __init__(self) -> None:
            super().__init__()
            self.many = MultiStateful({"a": CounterStateful(), "b": Progress(1, 2, 3)})

    u = U()
    assert set(u.tracked_misc_statefuls()) == {"many"}
    sd = u.many.state_dict()
    assert sd["a"] == {"n": 0}
    assert sd["b"]["num_steps_completed"] == 2


def test_forgetting_super_init_gives_a_clear_error() -> None:
    class Forgot(AppStateMixin):
        def __init__(self) -> None:
            self.net = torch.nn.Linear(1, 1)

    with pytest.raises(RuntimeError, match=r"Forgot\.__init__ must call super\(\)\.__init__\(\)"):
        Forgot()


def test_forgetting_super_init_in_a_train_unit_gives_a_clear_error_at_train() -> None:
    class ForgotUnit(TrainUnit[torch.Tensor]):
        def __init__(self) -> None:  # no super().__init__(), no tracked attribute either
            self.lr = 0.1

        def train_step(self, state: State, data: torch.Tensor) -> None:
            pass

    with pytest.raises(RuntimeError, match=r"must call super\(\)\.__init__\(\)"):
        train(ForgotUnit(), [torch.ones(1)], max_epochs=1)


def test_unit_progress_is_tracked() -> None:
    class U(TrainUnit[torch.Tensor]):
        def train_step(self, state: State, data: torch.Tensor) -> None:
            pass

    u = U()
    assert u.tracked_progress() == {"train_progress": u.train_progress}
