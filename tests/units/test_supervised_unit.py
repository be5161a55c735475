"""``SupervisedUnit``: an AutoUnit from parts, with dict batches, metrics and schedulers."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch

from torchkit import fit, predict
from torchkit.units import SupervisedUnit
from torchkit.utils import seed


def _unit(**kwargs: Any) -> SupervisedUnit:
    defaults: dict[str, Any] = {
        "module": torch.nn.Linear(3, 2),
        "loss_fn": torch.nn.CrossEntropyLoss(),
        "optimizer": functools.partial(torch.optim.SGD, lr=0.1),
        "device": "cpu",
    }
    return SupervisedUnit(**{**defaults, **kwargs})


def _batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g))] * n


def test_matches_a_hand_written_loop() -> None:
    seed(0)
    unit = _unit()
    seed(0)
    ref = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for x, y in _batches():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
    fit(unit, _batches(), _batches(1), max_epochs=1)
    for a, b in zip(unit.module.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_dict_batches_use_input_and_target_keys() -> None:
    unit = _unit(input_key="x", target_key="y")
    batches = [{"x": x, "y": y} for x, y in _batches()]
    fit(unit, batches, batches, max_epochs=1)
    assert unit.num_optimizer_steps == 4


def test_metrics_are_copied_for_train_and_eval() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    unit = _unit(metrics={"accuracy": MulticlassAccuracy(num_classes=2)})
    assert unit.train_metrics is not unit.eval_metrics
    fit(unit, _batches(), _batches(2), max_epochs=1)
    assert set(unit.eval_metrics.compute()) == {"accuracy"}


def test_lr_scheduler_factory_gets_the_optimizer() -> None:
    step_lr = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    unit = _unit(lr_scheduler=step_lr)
    fit(unit, _batches(), _batches(1), max_epochs=2)
    assert unit.optimizer is not None
    assert unit.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def test_loss_is_not_checkpointed() -> None:
    unit = _unit()
    assert "loss_fn" not in unit.app_state()


def test_predict_reads_the_input_of_a_pair() -> None:
    unit = _unit(training=False, optimizer=None)
    seen: list[torch.Size] = []
    unit.on_predict_step_end = lambda state, data, step, outputs: seen.append(outputs.shape)  # type: ignore[method-assign]
    predict(unit, _batches(2))
    assert seen == [torch.Size([8, 2])] * 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"loss_fn": 3}, TypeError, r"loss_fn=3 is invalid: expected a callable"),
        ({"optimizer": None}, TypeError, r"optimizer=None is invalid: expected a callable"),
        ({"input_key": ""}, ValueError, r"input_key='' is invalid: expected a non-empty str"),
        ({"metrics": {"a": 1}}, TypeError, r"metrics=\{'a': 1\} is invalid: expected a dict of"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _unit(**kwargs)


def test_bad_batch_names_split_batch() -> None:
    unit = _unit()
    with pytest.raises(TypeError, match="override split_batch"):
        fit(unit, [torch.ones(2, 3)], [torch.ones(2, 3)], max_epochs=1)


def test_every_public_constructor_parameter_is_annotated() -> None:
    import importlib
    import inspect

    missing = []
    for pkg in ("torchkit.callbacks", "torchkit.loggers", "torchkit.strategies", "torchkit.units"):
        module = importlib.import_module(pkg)
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.isclass(obj) or obj.__init__ is object.__init__:
                continue
            for p in inspect.signature(obj.__init__).parameters.values():
                plain = p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
                if plain and p.annotation is inspect.Parameter.empty:
                    missing.append(f"{pkg}.{name}({p.name})")
    assert missing == []  # a config file can only build classes whose parameters are typed
