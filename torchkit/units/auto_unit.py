"""``AutoUnit``: write ``compute_loss``; device, precision, accumulation, DDP/FSDP are done."""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, TypeVar

import torch

from torchkit.loop.state import State
from torchkit.strategies.params import ActivationCheckpointParams, SWAParams, TorchCompileParams
from torchkit.strategies.precision import Precision
from torchkit.strategies.strategy import Strategy
from torchkit.strategies.swa import build_averaged_model, build_swalr
from torchkit.units._auto_common import AutoModuleMixin
from torchkit.units._auto_eval import AutoEvalTestMixin
from torchkit.units._auto_extras import AutoTrainExtrasMixin
from torchkit.units._auto_helpers import (
    AutoUnitCounters,
    NonFinitePolicy,
    StepLRInterval,
    TrainStepResults,
    Window,
    bad_result_error,
    check_options,
    check_swa_strategy,
    non_scalar_loss_error,
)
from torchkit.units.unit import EvalUnit, PredictUnit, TestUnit, TrainUnit

__all__ = ["AutoUnit", "TrainStepResults"]

logger = logging.getLogger(__name__)

TData = TypeVar("TData")


class AutoUnit(
    AutoModuleMixin,
    AutoTrainExtrasMixin,
    AutoEvalTestMixin,
    TrainUnit[TData],
    EvalUnit[TData],
    PredictUnit[TData],
    TestUnit[TData],
    ABC,
):
    """A unit that trains, evaluates, tests and predicts from ``compute_loss`` alone.

    Implement ``compute_loss(state, data) -> (loss, outputs)`` (or the count-weighted
    ``(loss_sum, outputs, num_items)``) and ``configure_optimizers_and_lr_scheduler(module)``.
    The optimizer is built after the module is wrapped. See ``docs/autounit.md`` for the
    accumulation, precision and non-finite semantics.

    ``train_step`` returns ``(loss, outputs)`` with ``loss`` detached, on device; no step
    reads a tensor on the host unless ``non_finite_policy`` (or fp16) asks for it.
    ``eval_step`` and ``test_step`` return ``(loss, outputs)`` from ``compute_loss`` and update
    ``eval_metrics`` / ``test_metrics``: the unit runs under ``evaluate``, ``test`` and fit's
    ``test_dataloader`` as it is. If you override ``on_train_start``, ``on_eval_start``,
    ``on_test_start`` or ``on_train_epoch_end``, call ``super()``: they move metrics to the
    device, flush a pending accumulation window and step per-epoch schedules.

    Args:
        module: the model; ``self.module`` is the prepared (possibly wrapped) module.
        device: the device (None: ``cuda:LOCAL_RANK`` when CUDA exists, else CPU).
        strategy: ``"noop"``, ``"ddp"``, ``"fsdp"``, ``"fsdp2"`` or a ``Strategy``.
        step_lr_interval: step the LR scheduler every optimizer ``"step"`` or every ``"epoch"``.
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"``, a dtype or a ``Precision``.
        gradient_accumulation_steps: micro-batches per optimizer step (>= 1).
        detect_anomaly: run forward and backward under autograd anomaly detection.
        clip_grad_norm: clip the total gradient norm to this value.
        clip_grad_value: clamp each gradient element to ``[-v, v]``.
        swa_params: keep an SWA / EMA average of the weights in ``self.swa_model``.
        torch_compile_params: compile the module.
        activation_checkpoint_params: checkpoint the activations of selected submodules.
        training: build the optimizer (False: evaluate / test / predict only).
        enable_prefetch: read one batch ahead (last-batch detection, async H2D on CUDA).
        zero_grad_at_train_step_start: zero gradients at the start of each window instead
            of after each optimizer step.
        non_finite_policy: None, ``"raise"`` or ``"skip"`` for inf/nan gradients.

    Raises:
        ValueError: a bad option value or an unknown precision/strategy name.
        TypeError: a non-module ``module`` or a non-integer accumulation count.
        RuntimeError: a distributed strategy without a process group, or fp16 on a
            device without autocast support.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> class Regress(AutoUnit[tuple[torch.Tensor, torch.Tensor]]):
        ...     def compute_loss(self, state, data):
        ...         x, y = data
        ...         out = self.module(x)
        ...         return torch.nn.functional.mse_loss(out, y), out
        ...     def configure_optimizers_and_lr_scheduler(self, module):
        ...         return torch.optim.SGD(module.parameters(), lr=0.1), None
        >>> unit = Regress(module=torch.nn.Linear(2, 1), device="cpu")
        >>> _ = train(unit, [(torch.ones(4, 2), torch.ones(4, 1))] * 4, max_epochs=1)
        >>> unit.num_optimizer_steps
        4
    """

    def __init__(
        self,
        *,
        module: torch.nn.Module,
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
        super().__init__()
        check_options(
            step_lr_interval=step_lr_interval,
            gradient_accumulation_steps=gradient_accumulation_steps,
            clip_grad_norm=clip_grad_norm,
            clip_grad_value=clip_grad_value,
            non_finite_policy=non_finite_policy,
        )
        if training:
            check_swa_strategy(swa_params, strategy)
        self.train_metrics: Any = None
        self.eval_metrics: Any = None
        self.test_metrics: Any = None
        self._init_auto(
            module=module,
            device=device,
            strategy=strategy,
            precision=precision,
            torch_compile_params=torch_compile_params,
            activation_checkpoint_params=activation_checkpoint_params,
            enable_prefetch=enable_prefetch,
        )
        self.step_lr_interval = step_lr_interval
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.swa_params = swa_params
        self.training = training
        self.zero_grad_at_train_step_start = zero_grad_at_train_step_start
        self.non_finite_policy = self._resolve_policy(non_finite_policy)
        # around each micro-batch: anomaly mode, the compiled step (CUDA graphs...) or a no-op
        self._anomaly: Any = self._resolve_anomaly(detect_anomaly, torch_compile_params)
        self._has_no_sync = self.strategy.has_no_sync
        self._plain_forward = (
            isinstance(self._anomaly, contextlib.nullcontext) and not self.precision.uses_autocast
        )
        # plain loss.backward() / optimizer.step() (no GradScaler): called without the wrappers
        self._plain_update = self.precision.has_plain_update
        # on_train_step_end is called (and its TrainStepResults built) only when overridden
        self._has_step_end_hook = type(self).on_train_step_end is not AutoUnit.on_train_step_end
        self._step_lr_per_step = step_lr_interval == "step"
        self.counters = AutoUnitCounters()  # tracked: checkpoints hold it
        # Per-step mutable state lives on a plain object: assigning unit attributes goes
        # through AppStateMixin's tracking, far too slow for every step.
        self._window = Window()
        self._train_prefetcher = self._new_prefetcher(_train_loader_of)
        self._test_prefetcher = self._new_prefetcher()
        self.optimizer: torch.optim.Optimizer | None = None
        self.lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.swa_model: torch.nn.Module | None = None
        self.swa_scheduler: Any = None
        if training:
            self.optimizer, self.lr_scheduler = self.configure_optimizers_and_lr_scheduler(
                self.module
            )
            if swa_params is not None:
                self.swa_model = build_averaged_model(self.strategy.unwrap(self.module), swa_params)
                self.swa_scheduler = build_swalr(self.optimizer, swa_params)

    # ---- user hooks -------------------------------------------------------------------------

    @abstractmethod
    def compute_loss(self, state: State, data: TData) -> tuple[Any, ...]:
        """Return ``(loss, outputs)`` or ``(loss_sum, outputs, num_items)`` for ``data``."""

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """Build ``(optimizer, lr_scheduler or None)`` for the prepared ``module``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement configure_optimizers_and_lr_scheduler("
            "module) to train, or be built with training=False for evaluate/test/predict only."
        )

    def on_train_step_end(
        self, state: State, data: TData, step: int, results: TrainStepResults
    ) -> None:
        """Called at the end of ``train_step``; ``step`` counts steps completed before it."""

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none=True``; zeroed in place under CUDA graphs, which
        keep pointers to the gradient buffers)."""
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=not self._cudagraphs)

    def step_lr_scheduler(self) -> None:
        """Step the LR scheduler (the SWALR schedule once SWA averaging has started)."""
        if self.swa_scheduler is not None and self._swa_started():
            self.swa_scheduler.step()
        elif self.lr_scheduler is not None:
            self.lr_scheduler.step()

    @property
    def last_total_grad_norm(self) -> torch.Tensor | None:
        """Total gradient norm (before clipping) of the last update, as a device tensor; None
        without ``clip_grad_norm``. ``MetricsLogger`` logs it as ``train/grad_norm``."""
        return self._window.grad_norm

    # ---- phase hooks ------------------------------------------------------------------------

    def on_train_start(self, state: State) -> None:
        if self.train_metrics is not None:
            self.train_metrics.to(self.device)

    def on_train_epoch_end(self, state: State) -> None:
        # A window cut short without the look-ahead noticing (prefetch off, state.stop())
        # is flushed here, normalised by its real length.
        if self._window.num_pending > 0:
            self._optimizer_step(state)
        self._train_prefetcher.reset()
        if self._recompiles is not None:
            self._recompiles.check()
        if not self._step_lr_per_step and self.training:
            self.step_lr_scheduler()
            self._maybe_update_swa(self.train_progress.num_epochs_completed)

    # ---- fetching ---------------------------------------------------------------------------

    def get_next_train_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        return self._train_prefetcher.fetch(state, data_iter)

    # ---- steps ------------------------------------------------------------------------------

    def train_step(self, state: State, data: TData) -> tuple[torch.Tensor, Any]:
        if self.optimizer is None:
            raise RuntimeError(
                f"{type(self).__name__} was built with training=False, so it has no optimizer. "
                "Build it with training=True to train."
            )
        window = self._window
        # the common k=1 case decides without a call
        is_last = (
            window.num_pending + 1 >= self.gradient_accumulation_steps
            or self._ends_window_early(state)
        )
        if self.zero_grad_at_train_step_start and window.num_pending == 0:
            self.zero_grad()
        reduce_grads = is_last or not self._has_no_sync
        if reduce_grads and self._plain_forward:
            # fp32, no anomaly mode: no contexts to enter around the forward
            loss, outputs = self._loss_backward(state, data, self.compute_loss(state, data))
        elif reduce_grads:
            loss, outputs = self._forward_backward(state, data)
        else:  # skip the gradient all-reduce until the window's last micro-batch
            with self.strategy.no_sync(self.module):
                loss, outputs = self._forward_backward(state, data)
        window.num_pending += 1
        grad_norm = self._optimizer_step(state) if is_last else None
        if self._has_step_end_hook:
            self.on_train_step_end(
                state,
                data,
                self.train_progress.num_steps_completed,
                TrainStepResults(loss, grad_norm, outputs),
            )
        return loss, outputs

    def _ends_window_early(self, state: State) -> bool:
        """True when this micro-batch closes a window before it has k micro-batches."""
        if self._train_prefetcher.is_last:  # the look-ahead found the end of the data
            return True
        ts = state.train_state
        if ts is None:
            return False
        progress = self.train_progress
        max_steps = ts.max_steps
        if max_steps is not None and progress.num_steps_completed + 1 >= max_steps:
            return True
        per_epoch = ts.max_steps_per_epoch
        return per_epoch is not None and progress.num_steps_completed_in_epoch + 1 >= per_epoch

    def _forward_backward(self, state: State, data: TData) -> tuple[torch.Tensor, Any]:
        with self._anomaly:
            with self.precision.autocast():
                result = self.compute_loss(state, data)
            return self._loss_backward(state, data, result)

    def _loss_backward(self, state: State, data: TData, result: Any) -> tuple[torch.Tensor, Any]:
        if type(result) is not tuple and not isinstance(result, tuple):
            raise bad_result_error(result)
        if len(result) == 3:
            loss, outputs, num_items = result
            # count-weighted: backprop the sum; the window is divided by its global
            # item count just before the optimizer step
            items = self._window.items
            self._window.items = num_items if items is None else items + num_items
            to_backward = loss
        else:
            loss, outputs = result
            k = self.gradient_accumulation_steps
            to_backward = loss / k if k > 1 else loss
        if loss.ndim != 0:  # shape metadata only: no host sync
            raise non_scalar_loss_error(loss)
        if self.train_metrics is not None:
            self.update_metrics(state, data, outputs)
        if self._plain_update:
            to_backward.backward()
        else:
            self.precision.backward(to_backward)
        # a CUDA-graph replay overwrites its outputs: the returned loss must own its memory
        return (loss.detach().clone() if self._cudagraphs else loss.detach()), outputs

    def _optimizer_step(self, state: State) -> torch.Tensor | None:
        """Close the window: normalise, unscale, clip, check, step, schedule, zero."""
        optimizer = self.optimizer
        assert optimizer is not None  # train_step checked it
        num_micro = self._window.num_pending
        self._window.num_pending = 0
        if self._window.items is not None or num_micro != self.gradient_accumulation_steps:
            self._normalise_window(num_micro)
        if not self._plain_update:
            self.precision.unscale_(optimizer)  # exactly once, before clipping or any norm
        grad_norm = None
        if self.clip_grad_norm is not None:
            grad_norm = self.strategy.clip_grad_norm_(self.module, self.clip_grad_norm, 2.0)
            self._window.grad_norm = grad_norm
        if self.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(self.module.parameters(), self.clip_grad_value)
        if self.non_finite_policy is not None and not self._grads_finite(state, grad_norm):
            self.zero_grad()
            return grad_norm
        if self._plain_update:
            optimizer.step()
            stepped = True
        else:
            stepped = self.precision.step(optimizer)  # False when the GradScaler skipped
        if stepped:
            self.counters.num_optimizer_steps += 1
            if self._step_lr_per_step:
                self.step_lr_scheduler()
                self._maybe_update_swa(self.counters.num_optimizer_steps)
        if not self.zero_grad_at_train_step_start:
            self.zero_grad()
        return grad_norm


def _train_loader_of(state: State) -> Any:
    ts = state.train_state
    return ts.dataloader if ts is not None else None
