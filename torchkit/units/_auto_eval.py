"""``AutoUnit``'s evaluation and test phases: ``compute_loss`` under no_grad, metrics, hooks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from torchkit.loop.progress import Progress
from torchkit.loop.state import ActivePhase, State
from torchkit.strategies.compile import mark_cudagraph_step
from torchkit.units._auto_helpers import metric_target


class AutoEvalTestMixin:
    """``eval_step`` and ``test_step`` of ``AutoUnit``: the same forward, two phases.

    Both run ``compute_loss`` under the precision's autocast (the loop has already entered
    ``torch.no_grad`` and put the modules in eval mode) and return ``(loss, outputs)``. Each
    phase updates its own metrics (``eval_metrics`` / ``test_metrics``) and calls its own hook
    (``on_eval_step_end`` / ``on_test_step_end``), so test numbers never mix with the eval
    numbers that steer training.
    """

    # provided by AutoUnit
    device: torch.device
    precision: Any
    train_metrics: Any
    eval_metrics: Any
    test_metrics: Any
    eval_progress: Progress
    test_progress: Progress
    _cudagraphs: bool
    _eval_prefetcher: Any
    _test_prefetcher: Any

    def compute_loss(self, state: State, data: Any) -> tuple[Any, ...]:
        raise NotImplementedError  # AutoUnit declares it abstract

    # ---- user hooks -------------------------------------------------------------------------

    def on_eval_step_end(
        self, state: State, data: Any, step: int, loss: torch.Tensor, outputs: Any
    ) -> None:
        """Called at the end of ``eval_step``; ``step`` counts eval steps completed before it."""

    def on_test_step_end(
        self, state: State, data: Any, step: int, loss: torch.Tensor, outputs: Any
    ) -> None:
        """Called at the end of ``test_step``; ``step`` counts test steps completed before it."""

    def phase_metrics(self, state: State) -> Any:
        """The metrics of the running phase: ``train_metrics``, ``eval_metrics`` or
        ``test_metrics`` (None when that phase has none)."""
        phase = state.active_phase
        if phase == ActivePhase.TRAIN:
            return self.train_metrics
        return self.test_metrics if phase == ActivePhase.TEST else self.eval_metrics

    def update_metrics(self, state: State, data: Any, outputs: Any) -> None:
        """Update the running phase's metrics: ``metrics.update(outputs, target)`` by default.

        The target is ``data[-1]`` for a tuple/list batch and ``data["target"]`` (or
        ``"label"``/``"labels"``) for a dict. Never computes or resets: ``MetricsLogger`` does.
        """
        phase = state.active_phase  # phase_metrics inlined: no extra call per step
        if phase == ActivePhase.TRAIN:
            metrics = self.train_metrics
        else:
            metrics = self.test_metrics if phase == ActivePhase.TEST else self.eval_metrics
        if metrics is not None:
            metrics.update(outputs, metric_target(data))

    # ---- phase hooks ------------------------------------------------------------------------

    def on_eval_start(self, state: State) -> None:
        if self.eval_metrics is not None:
            self.eval_metrics.to(self.device)

    def on_test_start(self, state: State) -> None:
        if self.test_metrics is not None:
            self.test_metrics.to(self.device)

    # ---- fetching ---------------------------------------------------------------------------

    def get_next_eval_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        return self._eval_prefetcher.fetch(state, data_iter)

    def get_next_test_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        return self._test_prefetcher.fetch(state, data_iter)

    # ---- steps ------------------------------------------------------------------------------

    def _loss_outputs(self, state: State, data: Any, metrics: Any) -> tuple[torch.Tensor, Any]:
        if self._cudagraphs:
            mark_cudagraph_step()
        with self.precision.autocast():
            result = self.compute_loss(state, data)
        loss, outputs = result[0], result[1]
        if self._cudagraphs:
            loss = loss.clone()
        if metrics is not None:
            self.update_metrics(state, data, outputs)
        return loss, outputs

    def eval_step(self, state: State, data: Any) -> tuple[torch.Tensor, Any]:
        # _loss_outputs inlined: an eval step costs no more calls than before the test phase
        if self._cudagraphs:
            mark_cudagraph_step()
        with self.precision.autocast():
            result = self.compute_loss(state, data)
        loss, outputs = result[0], result[1]
        if self._cudagraphs:
            loss = loss.clone()
        if self.eval_metrics is not None:
            self.update_metrics(state, data, outputs)
        self.on_eval_step_end(state, data, self.eval_progress.num_steps_completed, loss, outputs)
        return loss, outputs

    def test_step(self, state: State, data: Any) -> tuple[torch.Tensor, Any]:
        loss, outputs = self._loss_outputs(state, data, self.test_metrics)
        self.on_test_step_end(state, data, self.test_progress.num_steps_completed, loss, outputs)
        return loss, outputs
