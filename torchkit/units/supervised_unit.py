"""``SupervisedUnit``: an ``AutoUnit`` built from parts (module, loss, optimizer factory)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from torchkit.loop.state import ActivePhase, State
from torchkit.strategies.params import ActivationCheckpointParams, SWAParams, TorchCompileParams
from torchkit.strategies.precision import Precision
from torchkit.strategies.strategy import Strategy
from torchkit.units._auto_helpers import NonFinitePolicy, StepLRInterval
from torchkit.units._metrics import as_metric_collection
from torchkit.units.auto_unit import AutoUnit

if TYPE_CHECKING:
    from torchmetrics import Metric

__all__ = ["LRSchedulerFactory", "OptimizerFactory", "SupervisedUnit"]

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
"""Builds the optimizer from the prepared module's parameters (e.g. ``partial(AdamW, lr=1e-3)``)."""

LRSchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]
"""Builds the LR scheduler from the optimizer (e.g. ``partial(StepLR, step_size=10)``)."""


class SupervisedUnit(AutoUnit[Any]):
    """Supervised learning without a subclass: ``loss_fn(module(x), y)``.

    A batch is ``(x, y)`` (a tuple or list; ``x`` is everything but the last element when it
    has more than two) or a dict read with ``input_key`` and ``target_key``. The optimizer is
    built by ``optimizer(module.parameters())`` after the module is wrapped, the scheduler by
    ``lr_scheduler(optimizer)``. ``metrics`` are copied into ``train_metrics``,
    ``eval_metrics`` and ``test_metrics`` (a ``torchmetrics.MetricCollection`` each) and
    updated with ``(outputs, y)``. In a config file ``optimizer`` is a ``class_path`` of a
    ``torch.optim`` class whose ``init_args`` leave out ``params``.

    Args:
        module: the model.
        loss_fn: ``loss_fn(outputs, target)`` returning a scalar tensor (e.g.
            ``torch.nn.CrossEntropyLoss()``).
        optimizer: a callable building the optimizer from the parameters.
        lr_scheduler: a callable building the LR scheduler from the optimizer (None: none).
        metrics: torchmetrics metrics by name, e.g. ``{"accuracy": MulticlassAccuracy(10)}``.
        input_key: the input's key in a dict batch.
        target_key: the target's key in a dict batch.
        device: see ``AutoUnit``.
        strategy: see ``AutoUnit``.
        step_lr_interval: see ``AutoUnit``.
        precision: see ``AutoUnit``.
        gradient_accumulation_steps: see ``AutoUnit``.
        detect_anomaly: see ``AutoUnit``.
        clip_grad_norm: see ``AutoUnit``.
        clip_grad_value: see ``AutoUnit``.
        swa_params: see ``AutoUnit``.
        torch_compile_params: see ``AutoUnit``.
        activation_checkpoint_params: see ``AutoUnit``.
        training: see ``AutoUnit``.
        enable_prefetch: see ``AutoUnit``.
        zero_grad_at_train_step_start: see ``AutoUnit``.
        non_finite_policy: see ``AutoUnit``.

    Raises:
        TypeError: ``loss_fn``, ``optimizer`` or ``lr_scheduler`` is not callable, or
            ``metrics`` is not a dict of torchmetrics metrics.
        ValueError: an empty ``input_key``/``target_key``, or a bad ``AutoUnit`` option.

    Example:
        >>> import functools
        >>> import torch
        >>> from torchkit import fit
        >>> unit = SupervisedUnit(
        ...     module=torch.nn.Linear(2, 1),
        ...     loss_fn=torch.nn.MSELoss(),
        ...     optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        ...     device="cpu",
        ... )
        >>> batches = [(torch.ones(4, 2), torch.ones(4, 1))] * 4
        >>> _ = fit(unit, batches, batches, max_epochs=1)
        >>> unit.num_optimizer_steps
        4
    """

    loss_fn: torch.nn.Module | Callable[..., torch.Tensor]

    def __init__(
        self,
        *,
        module: torch.nn.Module,
        loss_fn: torch.nn.Module | Callable[..., torch.Tensor],
        optimizer: OptimizerFactory | None = None,
        lr_scheduler: LRSchedulerFactory | None = None,
        metrics: dict[str, Metric] | None = None,
        input_key: str = "input",
        target_key: str = "target",
        device: torch.device | str | None = None,
        strategy: str | Strategy | None = None,
        step_lr_interval: StepLRInterval = "epoch",
        precision: str | torch.dtype | Precision | None = None,
        gradient_accumulation_steps: int = 1,
        detect_anomaly: bool | None = None,
        clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None,
        swa_params: SWAParams | None = None,
        torch_compile_params: TorchCompileParams | None = None,
        activation_checkpoint_params: ActivationCheckpointParams | None = None,
        training: bool = True,
        enable_prefetch: bool = True,
        zero_grad_at_train_step_start: bool = False,
        non_finite_policy: NonFinitePolicy | None = None,
    ) -> None:
        _check_callable("loss_fn", loss_fn, "Pass e.g. torch.nn.CrossEntropyLoss()")
        if training or optimizer is not None:
            _check_callable("optimizer", optimizer, "Pass e.g. functools.partial(AdamW, lr=1e-3)")
        if lr_scheduler is not None:
            _check_callable("lr_scheduler", lr_scheduler, "Pass e.g. partial(StepLR, step_size=5)")
        for name, key in (("input_key", input_key), ("target_key", target_key)):
            if not isinstance(key, str) or not key:
                raise ValueError(
                    f"{name}={key!r} is invalid: expected a non-empty str. Pass the key of the "
                    "dict batch, e.g. 'input' or 'target'."
                )
        collection = as_metric_collection(
            metrics, "{'accuracy': MulticlassAccuracy(num_classes=10)}"
        )
        self._optimizer_factory = optimizer
        self._lr_scheduler_factory = lr_scheduler
        self.input_key, self.target_key = input_key, target_key
        super().__init__(
            module=module,
            device=device,
            strategy=strategy,
            step_lr_interval=step_lr_interval,
            precision=precision,
            gradient_accumulation_steps=gradient_accumulation_steps,
            detect_anomaly=detect_anomaly,
            clip_grad_norm=clip_grad_norm,
            clip_grad_value=clip_grad_value,
            swa_params=swa_params,
            torch_compile_params=torch_compile_params,
            activation_checkpoint_params=activation_checkpoint_params,
            training=training,
            enable_prefetch=enable_prefetch,
            zero_grad_at_train_step_start=zero_grad_at_train_step_start,
            non_finite_policy=non_finite_policy,
        )
        if isinstance(loss_fn, torch.nn.Module):
            loss_fn = loss_fn.to(self.device)  # a weighted loss's buffers
        # Kept out of AppStateMixin's tracking: a loss is configuration, not training state
        # (a tracked parameter-free module would add an empty entry to every checkpoint).
        self.__dict__["loss_fn"] = loss_fn
        if collection is not None:
            self.train_metrics = collection
            self.eval_metrics = copy.deepcopy(collection)
            # Not tracked: no checkpoint is written during the test phase, so its state would
            # always be empty (and checkpoints keep the keys they had before the test phase).
            self.__dict__["test_metrics"] = copy.deepcopy(collection)

    def split_batch(self, data: Any) -> tuple[Any, Any]:
        """``(input, target)`` of a batch: a dict by key, else ``(data[:-1] or data[0], data[-1])``.

        Raises:
            TypeError: the batch is neither a dict nor a tuple/list of at least two items.
        """
        if isinstance(data, Mapping):
            return data[self.input_key], data[self.target_key]
        if isinstance(data, (tuple, list)) and len(data) >= 2:
            inputs = data[0] if len(data) == 2 else tuple(data[:-1])
            return inputs, data[-1]
        raise TypeError(
            f"batch of type {type(data).__name__} is invalid for SupervisedUnit: expected "
            "(input, target), a list of that shape, or a dict with input_key/target_key. "
            "Subclass SupervisedUnit and override split_batch for other batches."
        )

    def forward(self, inputs: Any) -> Any:
        """``module(inputs)``; a tuple of inputs is passed as separate arguments."""
        return self.module(*inputs) if isinstance(inputs, tuple) else self.module(inputs)

    def compute_loss(self, state: State, data: Any) -> tuple[torch.Tensor, Any]:
        inputs, target = self.split_batch(data)
        outputs = self.forward(inputs)
        return self.loss_fn(outputs, target), outputs

    def predict_step(self, state: State, data: Any) -> Any:
        """The module's outputs for a batch's input (``(x, y)``, ``(x,)``, ``x`` or a dict)."""
        if isinstance(data, Mapping):
            inputs = data[self.input_key]
        elif isinstance(data, (tuple, list)):
            inputs = self.split_batch(data)[0] if len(data) >= 2 else data[0]
        else:
            inputs = data
        with self.precision.autocast():
            outputs = self.forward(inputs)
        self.on_predict_step_end(state, data, self.predict_progress.num_steps_completed, outputs)
        return outputs

    def update_metrics(self, state: State, data: Any, outputs: Any) -> None:
        phase = state.active_phase  # phase_metrics inlined: no extra call per step
        if phase == ActivePhase.TRAIN:
            metrics = self.train_metrics
        else:
            metrics = self.test_metrics if phase == ActivePhase.TEST else self.eval_metrics
        if metrics is not None:
            metrics.update(outputs, self.split_batch(data)[1])

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        factory = self._optimizer_factory
        assert factory is not None  # checked in __init__ when training
        optimizer = factory(module.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer returned {type(optimizer).__name__}: expected a "
                "torch.optim.Optimizer. Pass a factory such as partial(torch.optim.AdamW, lr=1e-3)."
            )
        factory_s = self._lr_scheduler_factory
        return optimizer, factory_s(optimizer) if factory_s is not None else None


def _check_callable(name: str, value: Any, fix: str) -> None:
    if not callable(value):
        raise TypeError(f"{name}={value!r} is invalid: expected a callable. {fix}.")
