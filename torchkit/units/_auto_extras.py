"""``AutoUnit`` option resolution, the non-finite check, SWA bookkeeping and read-only state."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import torch

from torchkit.strategies.compile import compiled_step_context
from torchkit.strategies.params import TorchCompileParams
from torchkit.units._auto_helpers import AnomalyMode, NonFinitePolicy

if TYPE_CHECKING:
    from torchkit.loop.state import State

logger = logging.getLogger("torchkit.units.auto_unit")


class AutoTrainExtrasMixin:
    """Parts of ``AutoUnit``'s training path kept out of the main module for size."""

    # provided by AutoUnit
    precision: Any
    strategy: Any
    module: torch.nn.Module
    counters: Any
    train_progress: Any
    non_finite_policy: NonFinitePolicy | None
    swa_params: Any
    swa_model: torch.nn.Module | None
    _step_lr_per_step: bool
    _window: Any
    device: torch.device
    gradient_accumulation_steps: int
    _train_prefetcher: Any

    @property
    def num_optimizer_steps(self) -> int:
        """Optimizer steps taken so far (steps skipped for inf/nan excluded)."""
        return self.counters.num_optimizer_steps

    @property
    def num_non_finite_skips(self) -> int:
        """Updates dropped by ``non_finite_policy="skip"``."""
        return self.counters.num_non_finite_skips

    @property
    def consumed_dataloader_state(self) -> dict[str, Any] | None:
        """The train dataloader's ``state_dict()`` as of the last batch a step consumed.

        Prefetching reads one batch ahead, so the loader itself is one batch further; a
        checkpoint should store this instead. None unless the loader has ``state_dict``.
        """
        return self._train_prefetcher.consumed_dataloader_state

    def dataloader_state_dict_for_checkpoint(
        self, phase: str, dataloader: Any
    ) -> dict[str, Any] | None:
        """The checkpointers' hook: the train loader's state without the read-ahead batch.

        None (use ``dataloader.state_dict()``) when no batch is held in the look-ahead.
        """
        return self._train_prefetcher.state_for_checkpoint() if phase == "train" else None

    def _resolve_policy(self, policy: NonFinitePolicy | None) -> NonFinitePolicy | None:
        if policy is not None and self.precision.grad_scaler is not None:
            logger.warning(
                "non_finite_policy=%r is ignored with precision='fp16': the GradScaler already "
                "skips steps with inf/nan gradients and lowers its scale.",
                policy,
            )
            return None
        return policy

    def _resolve_anomaly(
        self, detect_anomaly: bool | None, compile_params: TorchCompileParams | None
    ) -> Any:
        """The context around each micro-batch's forward and backward: anomaly mode, the
        compiled step (CUDA-graph marks, eager warm-up, compiled autograd) or a no-op."""
        if compile_params is not None:
            if detect_anomaly:
                logger.warning(
                    "detect_anomaly=True is turned off because torch_compile_params is set: "
                    "anomaly detection does not work with torch.compile."
                )
            ctx = compiled_step_context(compile_params, lambda: self.counters.num_optimizer_steps)
            return ctx if ctx is not None else contextlib.nullcontext()
        return AnomalyMode() if detect_anomaly else contextlib.nullcontext()

    def _grads_finite(self, state: State, grad_norm: torch.Tensor | None) -> bool:
        norm = (
            grad_norm if grad_norm is not None else self.strategy.total_grad_norm(self.module, 2.0)
        )
        bad = (~torch.isfinite(norm)).to(torch.float32).reshape(1)
        self.strategy.all_reduce_sum_(bad)  # every rank takes the same decision
        # note: CPU-GPU sync point, only with non_finite_policy set, once per optimizer step
        if not bad.item():
            return True
        step = self.train_progress.num_steps_completed
        if self.non_finite_policy == "raise":
            raise RuntimeError(
                f"Non-finite gradients (inf or nan) at train step {step} (0-based, epoch "
                f"{self.train_progress.num_epochs_completed}). Lower the learning rate, set "
                "clip_grad_norm, check the data, or pass non_finite_policy='skip' to drop such "
                "updates."
            )
        self.counters.num_non_finite_skips += 1
        logger.warning(
            "Skipped the optimizer step at train step %d: non-finite gradients (%d skipped).",
            step,
            self.counters.num_non_finite_skips,
        )
        return False

    def _swa_started(self) -> bool:
        params = self.swa_params
        if params is None:
            return False
        count = (
            self.counters.num_optimizer_steps
            if self._step_lr_per_step
            else self.train_progress.num_epochs_completed
        )
        return count > params.warmup_steps_or_epochs

    def _maybe_update_swa(self, count: int) -> None:
        params = self.swa_params
        if params is None or self.swa_model is None:
            return
        since = count - params.warmup_steps_or_epochs
        if since > 0 and since % params.step_or_epoch_update_freq == 0:
            update: Any = self.swa_model.update_parameters
            update(self.strategy.unwrap(self.module))

    def _normalise_window(self, num_micro: int) -> None:
        items = self._window.items
        if items is None:
            # a partial window: gradients were divided by k, the mean needs num_micro
            self.strategy.scale_grads_(self.module, self.gradient_accumulation_steps / num_micro)
            return
        self._window.items = None
        total = torch.as_tensor(items, dtype=torch.float32, device=self.device).clone()
        self.strategy.all_reduce_sum_(total)  # on device: no host sync
        # the backend averaged over ranks; sum over ranks / global count is what we want
        factor = self.strategy.grad_average_world_size() / total
        self.strategy.scale_grads_(self.module, factor)
