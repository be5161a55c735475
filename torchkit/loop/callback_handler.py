"""Callback dispatch: works out once which callbacks override which hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torchkit.callbacks.callback import HOOK_NAMES, Callback


def overrides(callback: Any, hook: str) -> bool:
    """True when ``callback`` provides its own ``hook``: by subclassing, per instance (as
    ``Lambda`` does) or, for an object that only provides the interface, by having it."""
    if hook in getattr(callback, "__dict__", ()):
        return callable(getattr(callback, hook))
    cls_attr = getattr(type(callback), hook, None)
    if cls_attr is not None:
        return cls_attr is not getattr(Callback, hook)
    # No class attribute: a mock or another object that resolves attributes dynamically.
    return callable(getattr(callback, hook, None))


def _check_callback(i: int, cb: Any) -> None:
    """A callback is a ``Callback`` or any instance that provides one of its hooks."""
    if isinstance(cb, Callback):
        return
    if isinstance(cb, type):
        raise TypeError(
            f"callbacks[{i}]={cb.__name__} is invalid: expected a callback instance, got the "
            f"class. Instantiate it: callbacks=[{cb.__name__}(...)]."
        )
    if not any(callable(getattr(cb, hook, None)) for hook in HOOK_NAMES):
        raise TypeError(
            f"callbacks[{i}]={cb!r} is invalid: expected a torchkit.Callback instance or an "
            "object with Callback hook methods (on_train_start, on_train_step_end, ...). "
            "Subclass torchkit.Callback or wrap functions in torchkit.callbacks.Lambda."
        )


class CallbackHandler:
    """For each hook, the bound methods of the callbacks that override it, in list order.

    The loop iterates ``handler.<hook>`` directly, so a hook nobody overrides is an empty list
    and costs no call per step. When a callback sets ``records_step_losses``, the step-loss
    recorders go first in the train, eval and test step-end lists.

    Args:
        callbacks: the callbacks, in the order they should run.

    Raises:
        TypeError: ``callbacks`` is not a list, or an element is neither a ``Callback`` nor an
            instance providing one of its hooks (a class, a function, a string...).
    """

    on_exception: list[Callable[..., None]]
    on_train_start: list[Callable[..., None]]
    on_train_epoch_start: list[Callable[..., None]]
    on_train_dataloader_iter_creation_start: list[Callable[..., None]]
    on_train_dataloader_iter_creation_end: list[Callable[..., None]]
    on_train_get_next_batch_start: list[Callable[..., None]]
    on_train_get_next_batch_end: list[Callable[..., None]]
    on_train_step_start: list[Callable[..., None]]
    on_train_step_end: list[Callable[..., None]]
    on_train_epoch_end: list[Callable[..., None]]
    on_train_end: list[Callable[..., None]]
    on_eval_start: list[Callable[..., None]]
    on_eval_epoch_start: list[Callable[..., None]]
    on_eval_dataloader_iter_creation_start: list[Callable[..., None]]
    on_eval_dataloader_iter_creation_end: list[Callable[..., None]]
    on_eval_get_next_batch_start: list[Callable[..., None]]
    on_eval_get_next_batch_end: list[Callable[..., None]]
    on_eval_step_start: list[Callable[..., None]]
    on_eval_step_end: list[Callable[..., None]]
    on_eval_epoch_end: list[Callable[..., None]]
    on_eval_end: list[Callable[..., None]]
    on_predict_start: list[Callable[..., None]]
    on_predict_epoch_start: list[Callable[..., None]]
    on_predict_dataloader_iter_creation_start: list[Callable[..., None]]
    on_predict_dataloader_iter_creation_end: list[Callable[..., None]]
    on_predict_get_next_batch_start: list[Callable[..., None]]
    on_predict_get_next_batch_end: list[Callable[..., None]]
    on_predict_step_start: list[Callable[..., None]]
    on_predict_step_end: list[Callable[..., None]]
    on_predict_epoch_end: list[Callable[..., None]]
    on_predict_end: list[Callable[..., None]]
    on_test_start: list[Callable[..., None]]
    on_test_epoch_start: list[Callable[..., None]]
    on_test_dataloader_iter_creation_start: list[Callable[..., None]]
    on_test_dataloader_iter_creation_end: list[Callable[..., None]]
    on_test_get_next_batch_start: list[Callable[..., None]]
    on_test_get_next_batch_end: list[Callable[..., None]]
    on_test_step_start: list[Callable[..., None]]
    on_test_step_end: list[Callable[..., None]]
    on_test_epoch_end: list[Callable[..., None]]
    on_test_end: list[Callable[..., None]]

    def __init__(self, callbacks: Iterable[Any] | None) -> None:
        if isinstance(callbacks, Callback) or not isinstance(callbacks, (Iterable, type(None))):
            raise TypeError(
                f"callbacks={callbacks!r} is invalid: expected a list of torchkit.Callback "
                "instances. Wrap a single callback in a list: callbacks=[cb]."
            )
        self.callbacks: list[Callback] = list(callbacks or [])
        for i, cb in enumerate(self.callbacks):
            _check_callback(i, cb)
        for hook in HOOK_NAMES:
            setattr(self, hook, [getattr(cb, hook) for cb in self.callbacks if overrides(cb, hook)])
        # ``is True``: a duck-typed object may lack the flag, and a mock's attribute is truthy.
        if any(getattr(cb, "records_step_losses", False) is True for cb in self.callbacks):
            from torchkit.callbacks._metric_state import loss_recorders

            for phase, record in loss_recorders().items():
                getattr(self, f"on_{phase}_step_end").insert(0, record)
