"""What ``AutoUnit`` and ``AutoPredictUnit`` share: device, strategy, precision, prefetch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from torchkit.loop.progress import Progress
from torchkit.loop.state import State
from torchkit.strategies.compile import RecompileWatch, mark_cudagraph_step
from torchkit.strategies.params import ActivationCheckpointParams, TorchCompileParams
from torchkit.strategies.precision import Precision, resolve_precision
from torchkit.strategies.prepare import prepare_module
from torchkit.strategies.strategy import Strategy, resolve_strategy
from torchkit.units._prefetch import BatchPrefetcher
from torchkit.utils.device import copy_data_to_device
from torchkit.utils.env import get_device_from_env

T = TypeVar("T")


class AutoModuleMixin:
    """Module preparation and batch fetching shared by the auto units.

    Call ``_init_auto`` from ``__init__`` after ``super().__init__()``.
    """

    module: torch.nn.Module
    device: torch.device
    strategy: Strategy
    precision: Precision
    predict_progress: Progress

    def _init_auto(
        self,
        *,
        module: torch.nn.Module,
        device: torch.device | str | None,
        strategy: str | Strategy | None,
        precision: str | torch.dtype | Precision | None,
        torch_compile_params: TorchCompileParams | None,
        activation_checkpoint_params: ActivationCheckpointParams | None,
        enable_prefetch: bool,
    ) -> None:
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"module={type(module).__name__} instance is invalid: expected a "
                "torch.nn.Module. Pass the model to train, e.g. module=MyModel()."
            )
        dev = _resolve_device(device)
        strat = resolve_strategy(strategy)
        prec = resolve_precision(precision, dev)
        # everything above only validates; from here on the module is changed
        self.device = dev
        self.strategy = strat
        self.precision = prec
        self.module = prepare_module(
            module,
            dev,
            strategy=strat,
            torch_compile_params=torch_compile_params,
            activation_checkpoint_params=activation_checkpoint_params,
        )
        if prec.grad_scaler is not None:
            self.grad_scaler = prec.grad_scaler  # tracked, so checkpoints hold its scale
        self.enable_prefetch = enable_prefetch
        params = torch_compile_params
        if params is not None and params.disable:
            params = None
        # mode="reduce-overhead": CUDA-graph step marks, cloned losses, in-place zero_grad
        self._cudagraphs = params is not None and params.mode == "reduce-overhead"
        self._recompiles = (
            RecompileWatch(params.recompile_warning_threshold) if params is not None else None
        )
        self._host_is_device = dev.type == "cpu"
        self._eval_prefetcher = self._new_prefetcher()
        self._predict_prefetcher = self._new_prefetcher()

    def _new_prefetcher(self, loader_of: Callable[[State], Any] | None = None) -> BatchPrefetcher:
        # batches on a CPU device stay as yielded: no call per batch unless overridden
        move = (
            None
            if self._host_is_device and not self._overrides_move()
            else self.move_data_to_device
        )
        return BatchPrefetcher(move, self.device, enabled=self.enable_prefetch, loader_of=loader_of)

    def _overrides_move(self) -> bool:
        return type(self).move_data_to_device is not AutoModuleMixin.move_data_to_device

    def move_data_to_device(self, state: State, data: T, non_blocking: bool) -> T:
        """Copy a batch to ``self.device``; override for custom batch types.

        Args:
            state: the loop state.
            data: the batch as the dataloader yielded it.
            non_blocking: True when copying on the prefetch side stream (CUDA).

        On a CPU device the batch is returned as the dataloader yielded it (host memory is
        the device); override this if your batches hold tensors on another device.
        """
        if self._host_is_device:
            # note: a CPU device uses host memory already, so the batch is used as yielded
            return data
        return copy_data_to_device(data, self.device, non_blocking=non_blocking)

    def get_next_predict_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        """The next batch, already on the device (read one ahead when prefetching)."""
        return self._predict_prefetcher.fetch(state, data_iter)

    @property
    def num_compiled_graphs(self) -> int:
        """Graphs ``torch.compile`` built since this unit was created (0 when not compiled;
        dynamo's process-wide counter, so other compiled code counts too)."""
        return self._recompiles.num_graphs if self._recompiles is not None else 0

    def predict_step(self, state: State, data: Any) -> Any:
        """``module(data)`` under the precision's autocast, then ``on_predict_step_end``."""
        if self._cudagraphs:
            mark_cudagraph_step()
        with self.precision.autocast():
            outputs = self.module(data)
        self.on_predict_step_end(state, data, self.predict_progress.num_steps_completed, outputs)
        return outputs

    def on_predict_step_end(self, state: State, data: Any, step: int, outputs: Any) -> None:
        """Called at the end of ``predict_step``; ``step`` counts steps completed before it."""


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is None:
        return get_device_from_env()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is invalid: expected a torch.device or a string such as "
            "'cpu' or 'cuda:0'. Leave it None to pick the device from the environment."
        ) from exc
