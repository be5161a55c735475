"""Callback dispatch: works out once which callbacks override which hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torchkit.callbacks.callback import HOOK_NAMES, Callback


def overrides(callback: Callback, hook: str) -> bool:
    """True when ``callback`` provides its own ``hook`` (by subclassing or, for ``Lambda``, per
    instance)."""
    if hook in vars(callback):
        return True
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


class CallbackHandler:
    """For each hook, the bound methods of the callbacks that override it, in list order.

    The loop iterates ``handler.<hook>`` directly, so a hook nobody overrides is an empty list
    and costs no call per step. When a callback sets ``records_step_losses``, the step-loss
    recorders go first in the train and eval step-end lists.

    Args:
        callbacks: the callbacks, in the order they should run.

    Raises:
        TypeError: ``callbacks`` is not a list, or an element is not a ``Callback``.
    """

    on_exception: list[Callable[..., None]]
    on_train_start: list[Callable[..., None]]
    on_train_epoch_start: list[Callable[..., None]]
    on_train_get_next_batch_start: list[Callable[..., None]]
    on_train_get_next_batch_end: list[Callable[..., None]]
    on_train_step_start: list[Callable[..., None]]
    on_train_step_end: list[Callable[..., None]]
    on_train_epoch_end: list[Callable[..., None]]
    on_train_end: list[Callable[..., None]]
    on_eval_start: list[Callable[..., None]]
    on_eval_epoch_start: list[Callable[..., None]]
    on_eval_get_next_batch_start: list[Callable[..., None]]
    on_eval_get_next_batch_end: list[Callable[..., None]]
    on_eval_step_start: list[Callable[..., None]]
    on_eval_step_end: list[Callable[..., None]]
    on_eval_epoch_end: list[Callable[..., None]]
    on_eval_end: list[Callable[..., None]]
    on_predict_start: list[Callable[..., None]]
    on_predict_epoch_start: list[Callable[..., None]]
    on_predict_get_next_batch_start: list[Callable[..., None]]
    on_predict_get_next_batch_end: list[Callable[..., None]]
    on_predict_step_start: list[Callable[..., None]]
    on_predict_step_end: list[Callable[..., None]]
    on_predict_epoch_end: list[Callable[..., None]]
    on_predict_end: list[Callable[..., None]]

    def __init__(self, callbacks: Iterable[Any] | None) -> None:
        if isinstance(callbacks, Callback) or not isinstance(callbacks, (Iterable, type(None))):
            raise TypeError(
                f"callbacks={callbacks!r} is invalid: expected a list of torchkit.Callback "
                "instances. Wrap a single callback in a list: callbacks=[cb]."
            )
        self.callbacks: list[Callback] = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}]={cb!r} is invalid: expected a torchkit.Callback instance. "
                    "Subclass torchkit.Callback or wrap functions in torchkit.callbacks.Lambda."
                )
        for hook in HOOK_NAMES:
            setattr(self, hook, [getattr(cb, hook) for cb in self.callbacks if overrides(cb, hook)])
        if any(cb.records_step_losses for cb in self.callbacks):
            from torchkit.callbacks._metric_state import loss_recorders

            record_train, record_eval = loss_recorders()
            self.on_train_step_end.insert(0, record_train)
            self.on_eval_step_end.insert(0, record_eval)
