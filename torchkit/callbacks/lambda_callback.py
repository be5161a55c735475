"""``Lambda``: a callback built from plain functions, one keyword per hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchkit.callbacks.callback import Callback


class Lambda(Callback):
    """Run the given functions at the matching hooks.

    Every keyword names a hook of ``Callback`` and takes a function with that hook's arguments
    (``(state, unit)``, or ``(state, unit, exc)`` for ``on_exception``).

    Args:
        on_exception: function run at this hook.
        on_train_start: function run at this hook.
        on_train_epoch_start: function run at this hook.
        on_train_dataloader_iter_creation_start: function run at this hook.
        on_train_dataloader_iter_creation_end: function run at this hook.
        on_train_get_next_batch_start: function run at this hook.
        on_train_get_next_batch_end: function run at this hook.
        on_train_step_start: function run at this hook.
        on_train_step_end: function run at this hook.
        on_train_epoch_end: function run at this hook.
        on_train_end: function run at this hook.
        on_eval_start: function run at this hook.
        on_eval_epoch_start: function run at this hook.
        on_eval_dataloader_iter_creation_start: function run at this hook.
        on_eval_dataloader_iter_creation_end: function run at this hook.
        on_eval_get_next_batch_start: function run at this hook.
        on_eval_get_next_batch_end: function run at this hook.
        on_eval_step_start: function run at this hook.
        on_eval_step_end: function run at this hook.
        on_eval_epoch_end: function run at this hook.
        on_eval_end: function run at this hook.
        on_predict_start: function run at this hook.
        on_predict_epoch_start: function run at this hook.
        on_predict_dataloader_iter_creation_start: function run at this hook.
        on_predict_dataloader_iter_creation_end: function run at this hook.
        on_predict_get_next_batch_start: function run at this hook.
        on_predict_get_next_batch_end: function run at this hook.
        on_predict_step_start: function run at this hook.
        on_predict_step_end: function run at this hook.
        on_predict_epoch_end: function run at this hook.
        on_predict_end: function run at this hook.
        on_test_start: function run at this hook.
        on_test_epoch_start: function run at this hook.
        on_test_dataloader_iter_creation_start: function run at this hook.
        on_test_dataloader_iter_creation_end: function run at this hook.
        on_test_get_next_batch_start: function run at this hook.
        on_test_get_next_batch_end: function run at this hook.
        on_test_step_start: function run at this hook.
        on_test_step_end: function run at this hook.
        on_test_epoch_end: function run at this hook.
        on_test_end: function run at this hook.

    Example:
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> seen = []
        >>> cb = Lambda(on_train_epoch_end=lambda state, unit: seen.append(
        ...     unit.train_progress.num_epochs_completed))
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=2,
        ...       callbacks=[cb])
        >>> seen
        [1, 2]
    """

    def __init__(
        self,
        *,
        on_exception: Callable[..., Any] | None = None,
        on_train_start: Callable[..., Any] | None = None,
        on_train_epoch_start: Callable[..., Any] | None = None,
        on_train_dataloader_iter_creation_start: Callable[..., Any] | None = None,
        on_train_dataloader_iter_creation_end: Callable[..., Any] | None = None,
        on_train_get_next_batch_start: Callable[..., Any] | None = None,
        on_train_get_next_batch_end: Callable[..., Any] | None = None,
        on_train_step_start: Callable[..., Any] | None = None,
        on_train_step_end: Callable[..., Any] | None = None,
        on_train_epoch_end: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_eval_start: Callable[..., Any] | None = None,
        on_eval_epoch_start: Callable[..., Any] | None = None,
        on_eval_dataloader_iter_creation_start: Callable[..., Any] | None = None,
        on_eval_dataloader_iter_creation_end: Callable[..., Any] | None = None,
        on_eval_get_next_batch_start: Callable[..., Any] | None = None,
        on_eval_get_next_batch_end: Callable[..., Any] | None = None,
        on_eval_step_start: Callable[..., Any] | None = None,
        on_eval_step_end: Callable[..., Any] | None = None,
        on_eval_epoch_end: Callable[..., Any] | None = None,
        on_eval_end: Callable[..., Any] | None = None,
        on_predict_start: Callable[..., Any] | None = None,
        on_predict_epoch_start: Callable[..., Any] | None = None,
        on_predict_dataloader_iter_creation_start: Callable[..., Any] | None = None,
        on_predict_dataloader_iter_creation_end: Callable[..., Any] | None = None,
        on_predict_get_next_batch_start: Callable[..., Any] | None = None,
        on_predict_get_next_batch_end: Callable[..., Any] | None = None,
        on_predict_step_start: Callable[..., Any] | None = None,
        on_predict_step_end: Callable[..., Any] | None = None,
        on_predict_epoch_end: Callable[..., Any] | None = None,
        on_predict_end: Callable[..., Any] | None = None,
        on_test_start: Callable[..., Any] | None = None,
        on_test_epoch_start: Callable[..., Any] | None = None,
        on_test_dataloader_iter_creation_start: Callable[..., Any] | None = None,
        on_test_dataloader_iter_creation_end: Callable[..., Any] | None = None,
        on_test_get_next_batch_start: Callable[..., Any] | None = None,
        on_test_get_next_batch_end: Callable[..., Any] | None = None,
        on_test_step_start: Callable[..., Any] | None = None,
        on_test_step_end: Callable[..., Any] | None = None,
        on_test_epoch_end: Callable[..., Any] | None = None,
        on_test_end: Callable[..., Any] | None = None,
    ) -> None:
        given = {
            "on_exception": on_exception,
            "on_train_start": on_train_start,
            "on_train_epoch_start": on_train_epoch_start,
            "on_train_dataloader_iter_creation_start": on_train_dataloader_iter_creation_start,
            "on_train_dataloader_iter_creation_end": on_train_dataloader_iter_creation_end,
            "on_train_get_next_batch_start": on_train_get_next_batch_start,
            "on_train_get_next_batch_end": on_train_get_next_batch_end,
            "on_train_step_start": on_train_step_start,
            "on_train_step_end": on_train_step_end,
            "on_train_epoch_end": on_train_epoch_end,
            "on_train_end": on_train_end,
            "on_eval_start": on_eval_start,
            "on_eval_epoch_start": on_eval_epoch_start,
            "on_eval_dataloader_iter_creation_start": on_eval_dataloader_iter_creation_start,
            "on_eval_dataloader_iter_creation_end": on_eval_dataloader_iter_creation_end,
            "on_eval_get_next_batch_start": on_eval_get_next_batch_start,
            "on_eval_get_next_batch_end": on_eval_get_next_batch_end,
            "on_eval_step_start": on_eval_step_start,
            "on_eval_step_end": on_eval_step_end,
            "on_eval_epoch_end": on_eval_epoch_end,
            "on_eval_end": on_eval_end,
            "on_predict_start": on_predict_start,
            "on_predict_epoch_start": on_predict_epoch_start,
            "on_predict_dataloader_iter_creation_start": on_predict_dataloader_iter_creation_start,
            "on_predict_dataloader_iter_creation_end": on_predict_dataloader_iter_creation_end,
            "on_predict_get_next_batch_start": on_predict_get_next_batch_start,
            "on_predict_get_next_batch_end": on_predict_get_next_batch_end,
            "on_predict_step_start": on_predict_step_start,
            "on_predict_step_end": on_predict_step_end,
            "on_predict_epoch_end": on_predict_epoch_end,
            "on_predict_end": on_predict_end,
            "on_test_start": on_test_start,
            "on_test_epoch_start": on_test_epoch_start,
            "on_test_dataloader_iter_creation_start": on_test_dataloader_iter_creation_start,
            "on_test_dataloader_iter_creation_end": on_test_dataloader_iter_creation_end,
            "on_test_get_next_batch_start": on_test_get_next_batch_start,
            "on_test_get_next_batch_end": on_test_get_next_batch_end,
            "on_test_step_start": on_test_step_start,
            "on_test_step_end": on_test_step_end,
            "on_test_epoch_end": on_test_epoch_end,
            "on_test_end": on_test_end,
        }
        for hook, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(
                    f"{hook}={fn!r} is invalid: expected a callable taking the hook's arguments "
                    "(state, unit). Pass a function or leave it out."
                )
            # An instance attribute shadows the class's no-op, so the dispatcher sees it as
            # overridden and calls only the hooks that were given.
            setattr(self, hook, fn)
