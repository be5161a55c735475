"""``Callback``: the base class with every loop hook as a documented no-op."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torchkit.loop.state import State
    from torchkit.units.unit import TEvalUnit, TPredictUnit, TTestUnit, TTrainUnit

    AnyUnit = TTrainUnit | TEvalUnit | TPredictUnit | TTestUnit

HOOK_NAMES: tuple[str, ...] = (
    "on_exception",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_dataloader_iter_creation_start",
    "on_train_dataloader_iter_creation_end",
    "on_train_get_next_batch_start",
    "on_train_get_next_batch_end",
    "on_train_step_start",
    "on_train_step_end",
    "on_train_epoch_end",
    "on_train_end",
    "on_eval_start",
    "on_eval_epoch_start",
    "on_eval_dataloader_iter_creation_start",
    "on_eval_dataloader_iter_creation_end",
    "on_eval_get_next_batch_start",
    "on_eval_get_next_batch_end",
    "on_eval_step_start",
    "on_eval_step_end",
    "on_eval_epoch_end",
    "on_eval_end",
    "on_predict_start",
    "on_predict_epoch_start",
    "on_predict_dataloader_iter_creation_start",
    "on_predict_dataloader_iter_creation_end",
    "on_predict_get_next_batch_start",
    "on_predict_get_next_batch_end",
    "on_predict_step_start",
    "on_predict_step_end",
    "on_predict_epoch_end",
    "on_predict_end",
    "on_test_start",
    "on_test_epoch_start",
    "on_test_dataloader_iter_creation_start",
    "on_test_dataloader_iter_creation_end",
    "on_test_get_next_batch_start",
    "on_test_get_next_batch_end",
    "on_test_step_start",
    "on_test_step_end",
    "on_test_epoch_end",
    "on_test_end",
)
"""Every hook name, in the order the loop documentation lists them."""


class Callback:
    """Base class for callbacks: override the hooks you need, the rest cost nothing.

    The loop works out once which hooks a callback overrides and calls only those. For every
    event the unit's own hook (where it has one) runs first, then callbacks in list order.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> class CountSteps(Callback):
        ...     def __init__(self):
        ...         self.n = 0
        ...     def on_train_step_end(self, state, unit):
        ...         self.n += 1
        >>> cb = CountSteps()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 4), max_epochs=1,
        ...       callbacks=[cb])
        >>> cb.n
        2
    """

    requires_no_grad: bool = False
    """Set True when the callback handles tensors outside inference mode during ``predict``
    (checkpointers do: inference tensors cannot be saved and later updated in place), so that
    ``predict`` runs under ``torch.no_grad()`` instead of ``torch.inference_mode()``."""

    records_step_losses: bool = False
    """Set True when the callback uses the loss means (``train/loss``, ``eval/loss``) that
    torchkit publishes in ``state.metrics``. The loop then keeps each step's loss once, before
    the step-end hooks, however many callbacks ask (``MetricsLogger``, ``TQDMProgressBar``,
    ``EarlyStopping`` and ``RunSummary`` set it)."""

    @property
    def name(self) -> str:
        """A name for this callback, used in checkpoints and logs."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def on_exception(self, state: State, unit: AnyUnit, exc: BaseException) -> None:
        """Called when the loop raises, after the unit's ``on_exception``; then it re-raises."""

    def on_train_start(self, state: State, unit: TTrainUnit) -> None:
        """Called once when the train phase starts, after the unit's hook."""

    def on_train_epoch_start(self, state: State, unit: TTrainUnit) -> None:
        """Called at the start of each train epoch (not on a mid-epoch resume)."""

    def on_train_dataloader_iter_creation_start(self, state: State, unit: TTrainUnit) -> None:
        """Called before ``iter(dataloader)`` creates the epoch's iterator."""

    def on_train_dataloader_iter_creation_end(self, state: State, unit: TTrainUnit) -> None:
        """Called after the epoch's iterator was created (worker start-up included)."""

    def on_train_get_next_batch_start(self, state: State, unit: TTrainUnit) -> None:
        """Called before each batch fetch, including the one that ends the epoch."""

    def on_train_get_next_batch_end(self, state: State, unit: TTrainUnit) -> None:
        """Called after a batch was fetched."""

    def on_train_step_start(self, state: State, unit: TTrainUnit) -> None:
        """Called before each train step."""

    def on_train_step_end(self, state: State, unit: TTrainUnit) -> None:
        """Called after each train step; ``state.train_state.step_output`` holds its result."""

    def on_train_epoch_end(self, state: State, unit: TTrainUnit) -> None:
        """Called at the end of each train epoch, after ``num_epochs_completed`` counts it."""

    def on_train_end(self, state: State, unit: TTrainUnit) -> None:
        """Called once when the train phase ends."""

    def on_eval_start(self, state: State, unit: TEvalUnit) -> None:
        """Called once when the eval phase starts, after the unit's hook."""

    def on_eval_epoch_start(self, state: State, unit: TEvalUnit) -> None:
        """Called at the start of each eval epoch (not on a mid-epoch resume)."""

    def on_eval_dataloader_iter_creation_start(self, state: State, unit: TEvalUnit) -> None:
        """Called before ``iter(dataloader)`` creates the epoch's iterator."""

    def on_eval_dataloader_iter_creation_end(self, state: State, unit: TEvalUnit) -> None:
        """Called after the epoch's iterator was created (worker start-up included)."""

    def on_eval_get_next_batch_start(self, state: State, unit: TEvalUnit) -> None:
        """Called before each batch fetch, including the one that ends the epoch."""

    def on_eval_get_next_batch_end(self, state: State, unit: TEvalUnit) -> None:
        """Called after a batch was fetched."""

    def on_eval_step_start(self, state: State, unit: TEvalUnit) -> None:
        """Called before each eval step."""

    def on_eval_step_end(self, state: State, unit: TEvalUnit) -> None:
        """Called after each eval step; ``state.eval_state.step_output`` holds its result."""

    def on_eval_epoch_end(self, state: State, unit: TEvalUnit) -> None:
        """Called at the end of each eval epoch, after ``num_epochs_completed`` counts it."""

    def on_eval_end(self, state: State, unit: TEvalUnit) -> None:
        """Called once when the eval phase ends."""

    def on_predict_start(self, state: State, unit: TPredictUnit) -> None:
        """Called once when the predict phase starts, after the unit's hook."""

    def on_predict_epoch_start(self, state: State, unit: TPredictUnit) -> None:
        """Called at the start of each predict epoch (not on a mid-epoch resume)."""

    def on_predict_dataloader_iter_creation_start(self, state: State, unit: TPredictUnit) -> None:
        """Called before ``iter(dataloader)`` creates the epoch's iterator."""

    def on_predict_dataloader_iter_creation_end(self, state: State, unit: TPredictUnit) -> None:
        """Called after the epoch's iterator was created (worker start-up included)."""

    def on_predict_get_next_batch_start(self, state: State, unit: TPredictUnit) -> None:
        """Called before each batch fetch, including the one that ends the epoch."""

    def on_predict_get_next_batch_end(self, state: State, unit: TPredictUnit) -> None:
        """Called after a batch was fetched."""

    def on_predict_step_start(self, state: State, unit: TPredictUnit) -> None:
        """Called before each predict step."""

    def on_predict_step_end(self, state: State, unit: TPredictUnit) -> None:
        """Called after each predict step; ``state.predict_state.step_output`` holds its result."""

    def on_predict_epoch_end(self, state: State, unit: TPredictUnit) -> None:
        """Called at the end of each predict epoch, after ``num_epochs_completed`` counts it."""

    def on_predict_end(self, state: State, unit: TPredictUnit) -> None:
        """Called once when the predict phase ends."""

    def on_test_start(self, state: State, unit: TTestUnit) -> None:
        """Called once when the test phase starts, after the unit's hook."""

    def on_test_epoch_start(self, state: State, unit: TTestUnit) -> None:
        """Called at the start of the test epoch."""

    def on_test_dataloader_iter_creation_start(self, state: State, unit: TTestUnit) -> None:
        """Called before ``iter(dataloader)`` creates the test iterator."""

    def on_test_dataloader_iter_creation_end(self, state: State, unit: TTestUnit) -> None:
        """Called after the test iterator was created (worker start-up included)."""

    def on_test_get_next_batch_start(self, state: State, unit: TTestUnit) -> None:
        """Called before each batch fetch, including the one that ends the epoch."""

    def on_test_get_next_batch_end(self, state: State, unit: TTestUnit) -> None:
        """Called after a batch was fetched."""

    def on_test_step_start(self, state: State, unit: TTestUnit) -> None:
        """Called before each test step."""

    def on_test_step_end(self, state: State, unit: TTestUnit) -> None:
        """Called after each test step; ``state.test_state.step_output`` holds its result."""

    def on_test_epoch_end(self, state: State, unit: TTestUnit) -> None:
        """Called at the end of the test epoch, after ``num_epochs_completed`` counts it."""

    def on_test_end(self, state: State, unit: TTestUnit) -> None:
        """Called once when the test phase ends."""
