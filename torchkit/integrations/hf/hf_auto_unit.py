"""``HFAutoUnit``: train and evaluate a transformers model; exact token-weighted accumulation."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from torchkit.integrations.hf._common import (
    LOSS_MODES,
    LossMode,
    align,
    as_batch,
    check_label_key,
    check_pretrained,
    forward_arg_names,
    is_encoder_decoder,
    missing_labels_error,
    no_model_loss_error,
    output_field,
    resolve_shift,
    token_sum,
)
from torchkit.loop.state import ActivePhase, State
from torchkit.strategies.params import ActivationCheckpointParams, SWAParams, TorchCompileParams
from torchkit.strategies.precision import Precision
from torchkit.strategies.strategy import Strategy
from torchkit.units._auto_helpers import NonFinitePolicy, StepLRInterval
from torchkit.units._metrics import as_metric_collection
from torchkit.units.auto_unit import AutoUnit

__all__ = ["HFAutoUnit"]

Batch = Mapping[str, Any]
OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
LRSchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def default_optimizer(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``AdamW(params, lr=5e-5)``: the default of ``HFAutoUnit``."""
    return torch.optim.AdamW(params, lr=5e-5)


class _StepItems:
    """The token count of the micro-batch in flight (a plain slot: no attribute tracking)."""

    __slots__ = ("num_items",)

    def __init__(self) -> None:
        self.num_items: torch.Tensor | None = None


class HFAutoUnit(AutoUnit[Batch]):
    """An ``AutoUnit`` for a transformers ``PreTrainedModel`` fed dict batches.

    Each batch is a mapping (what a tokenizer or data collator returns). The keys the
    model's ``forward`` takes are worked out once, here; other keys (ids, lengths...) are
    dropped. The labels are read from ``batch[label_key]`` and passed as ``labels``.

    ``loss="model"`` trains on the model's own loss. Like ``Trainer`` without loss kwargs, a
    mean per micro-batch is then averaged over the accumulation window and the ranks, which
    weighs a token of a short micro-batch more than one of a long one. ``loss="token_sum"``
    computes the summed cross-entropy over the (shifted, for causal LMs) logits and labels,
    leaving out ``-100``, and returns it with the token count, so AutoUnit divides the whole
    window by its global token count: accumulation and DDP give exactly the big-batch mean
    (transformers #34191). The step's reported loss is then the micro-batch mean per token;
    ``on_train_step_end`` sees the sum, as for any count-weighted AutoUnit.

    ``metrics`` are updated on eval from the logits and labels (shifted and flattened to
    ``[N, V]`` / ``[N]`` for token-level outputs; give token metrics ``ignore_index=-100``)
    and published as ``eval/<name>`` by ``MetricsLogger`` and the other metric callbacks; a
    copy of them, ``test_metrics``, gives ``test/<name>`` in the test phase.

    Args:
        module: the ``PreTrainedModel``; ``self.module`` is the prepared (wrapped) one.
        optimizer: ``f(parameters) -> Optimizer``; default ``AdamW(lr=5e-5)``.
        lr_scheduler: ``f(optimizer) -> LRScheduler`` or None, e.g.
            ``lambda opt: get_linear_schedule_with_warmup(opt, 100, 1000)``.
        loss: ``"model"`` or ``"token_sum"`` (see above).
        shift_labels: pair logit ``t`` with label ``t + 1`` for ``token_sum`` and metrics;
            None detects causal LMs.
        label_key: the batch key holding the labels.
        metrics: a torchmetrics ``Metric``, ``MetricCollection`` or ``{name: Metric}``,
            updated on eval.
        device: see ``AutoUnit``.
        strategy: see ``AutoUnit``.
        step_lr_interval: ``"step"`` (default here: transformers schedules count optimizer
            steps) or ``"epoch"``.
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
        ValueError: ``module`` is not a ``PreTrainedModel``, an unknown ``loss``, a bad
            ``label_key`` or ``shift_labels``, or (at a step) a batch without ``label_key``
            under ``loss="token_sum"`` or a model that returned no loss under ``"model"``.
        TypeError: a non-callable ``optimizer`` / ``lr_scheduler``, ``metrics`` that are not
            torchmetrics, or (at a step) a batch that is not a mapping.

    Example:
        >>> import torch
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> from torchkit import train
        >>> config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16,
        ...                     bos_token_id=0, eos_token_id=0)
        >>> unit = HFAutoUnit(module=GPT2LMHeadModel(config), loss="token_sum", device="cpu")
        >>> ids = torch.randint(0, 50, (2, 8))
        >>> _ = train(unit, [{"input_ids": ids, "labels": ids, "idx": 0}] * 2, max_epochs=1)
        >>> unit.num_optimizer_steps
        2
    """

    def __init__(
        self,
        *,
        module: torch.nn.Module,
        optimizer: OptimizerFactory | None = None,
        lr_scheduler: LRSchedulerFactory | None = None,
        loss: LossMode = "model",
        shift_labels: bool | None = None,
        label_key: str = "labels",
        metrics: Any = None,
        device: torch.device | str | None = None,
        strategy: str | Strategy | None = None,
        step_lr_interval: StepLRInterval = "step",
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
        # everything is validated before the module is moved or wrapped
        check_pretrained(module)
        if loss not in LOSS_MODES:
            raise ValueError(
                f"loss={loss!r} is invalid: expected one of {LOSS_MODES}. Use 'token_sum' for "
                "exact gradient accumulation over padded token-level batches."
            )
        check_label_key(label_key)
        shift = resolve_shift(shift_labels, module)
        _check_factory("optimizer", optimizer, "lambda params: torch.optim.AdamW(params, lr=3e-5)")
        _check_factory("lr_scheduler", lr_scheduler, "lambda opt: LinearLR(opt)")
        eval_metrics = as_metric_collection(
            metrics, "{'accuracy': MulticlassAccuracy(num_classes=3)}"
        )
        names = forward_arg_names(module)  # the only signature inspection: never per step
        self._optimizer_factory = optimizer or default_optimizer
        self._lr_scheduler_factory = lr_scheduler
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
        self.loss_mode: LossMode = loss
        self.label_key = label_key
        self.shift_labels = shift
        self.eval_metrics = eval_metrics
        # a copy for the test phase, untracked as SupervisedUnit's (never saved mid-test)
        self.__dict__["test_metrics"] = copy.deepcopy(eval_metrics)
        self._input_keys = names - {"labels", label_key}
        # the model gets the labels for its own loss, or (encoder-decoder) to build the
        # decoder inputs from them
        self._pass_labels = "labels" in names and (loss == "model" or is_encoder_decoder(module))
        self._token_sum = loss == "token_sum"
        self._step_items = _StepItems()

    def configure_optimizers_and_lr_scheduler(
        self, module: torch.nn.Module
    ) -> tuple[torch.optim.Optimizer, Any]:
        optimizer = self._optimizer_factory(module.parameters())
        factory = self._lr_scheduler_factory
        return optimizer, factory(optimizer) if factory is not None else None

    def model_inputs(self, batch: Batch) -> dict[str, Any]:
        """The keyword arguments for ``module(**inputs)``: the batch keys ``forward`` takes,
        plus ``labels`` from ``batch[label_key]`` when the model computes a loss from them."""
        inputs = {k: v for k, v in batch.items() if k in self._input_keys}
        if self._pass_labels:
            labels = batch.get(self.label_key)
            if labels is not None:
                inputs["labels"] = labels
        return inputs

    def compute_loss(self, state: State, data: Batch) -> tuple[Any, ...]:
        batch = as_batch(data)
        outputs = self.module(**self.model_inputs(batch))
        if not self._token_sum:
            loss = output_field(outputs, "loss")
            if loss is None:
                raise no_model_loss_error(self.strategy.unwrap(self.module), self.label_key)
            return loss, outputs
        labels = batch.get(self.label_key)
        if labels is None:
            raise missing_labels_error(self.label_key, batch, "loss='token_sum'")
        loss_sum, num_items = token_sum(output_field(outputs, "logits"), labels, self.shift_labels)
        if state.active_phase == ActivePhase.TRAIN:
            self._step_items.num_items = num_items
            return loss_sum, outputs, num_items
        return loss_sum / num_items.clamp_min(1), outputs  # eval: the per-token mean

    def train_step(self, state: State, data: Batch) -> tuple[torch.Tensor, Any]:
        loss, outputs = super().train_step(state, data)
        if self._token_sum:  # report the per-token mean (a device op, no host sync)
            num_items = self._step_items.num_items
            assert num_items is not None  # set by compute_loss in this step
            loss = loss / num_items.clamp_min(1)
        return loss, outputs

    def update_metrics(self, state: State, data: Batch, outputs: Any) -> None:
        """Update the phase's metrics with ``(logits, labels)``, aligned like the loss."""
        phase = state.active_phase  # phase_metrics inlined: no extra call per step
        if phase == ActivePhase.TRAIN:
            metrics = self.train_metrics
        else:
            metrics = self.test_metrics if phase == ActivePhase.TEST else self.eval_metrics
        if metrics is None:
            return
        labels = data.get(self.label_key)
        if labels is None:
            raise missing_labels_error(self.label_key, data, "updating the metrics")
        logits, labels = align(output_field(outputs, "logits"), labels, self.shift_labels)
        metrics.update(logits, labels)


def _check_factory(name: str, factory: Any, example: str) -> None:
    if factory is not None and not callable(factory):
        raise TypeError(
            f"{name}={factory!r} is invalid: expected a callable or None. Pass a factory, "
            f"e.g. {name}={example}."
        )
