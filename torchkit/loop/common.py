"""Helpers shared by the entry points: validation, module modes, samplers, exception path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

from torchkit.loop.callback_handler import CallbackHandler
from torchkit.loop.state import State
from torchkit.utils.dataloader_utils import set_dataloader_epoch
from torchkit.utils.timer import Timer

logger = logging.getLogger(__name__)

T = TypeVar("T")


_UNIT_PHASES = {
    "TrainUnit": "train", "EvalUnit": "eval", "PredictUnit": "predict", "TestUnit": "test"
}  # fmt: skip


def unit_interface(cls: type) -> tuple[str, ...]:
    """The attributes the loop uses on a unit of kind ``cls`` (``TrainUnit``, ``EvalUnit``,
    ``PredictUnit`` or ``TestUnit``): what an object must provide to run without subclassing
    it."""
    p = _UNIT_PHASES[cls.__name__]
    return (
        f"{p}_step", f"get_next_{p}_batch", f"{p}_progress", f"on_{p}_start",
        f"on_{p}_epoch_start", f"on_{p}_epoch_end", f"on_{p}_end", "on_exception",
        "tracked_modules",
    )  # fmt: skip


def missing_unit_attrs(unit: Any, cls: type) -> list[str]:
    """What ``unit`` lacks of ``cls``'s interface (empty for a ``cls`` instance)."""
    if isinstance(unit, cls):
        return []
    return [n for n in unit_interface(cls) if not hasattr(unit, n)]


def check_unit(name: str, unit: Any, cls: type, entry: str) -> None:
    """Raise ``TypeError`` unless ``unit`` is a ``cls`` instance or provides its interface
    (TNT accepts any object with the unit methods, e.g. a mock with ``spec=``)."""
    if isinstance(unit, type):
        raise TypeError(
            f"{name}={unit.__name__} is invalid for {entry}(): expected a unit instance, got "
            f"the class. Instantiate it: {entry}({unit.__name__}(...), ...)."
        )
    missing = missing_unit_attrs(unit, cls)
    if missing:
        raise TypeError(
            f"{name}={type(unit).__name__} instance is invalid for {entry}(): expected a "
            f"torchkit.{cls.__name__} (or an object with its methods; missing: "
            f"{', '.join(missing)}). Subclass torchkit.{cls.__name__} and implement its step."
        )


def check_dataloader(name: str, dataloader: Any) -> None:
    """Raise ``TypeError`` for a non-iterable and ``ValueError`` for a sized, empty loader."""
    if getattr(type(dataloader), "_holds_eval_sets", False):  # loop.evaluators.Evaluators
        raise TypeError(
            f"{name}={dataloader!r} is invalid: expected one iterable of batches; Evaluators "
            "is accepted only as fit()'s eval_dataloader or evaluate()'s dataloader. Pass one "
            "of its loaders here."
        )
    if not isinstance(dataloader, Iterable) and not hasattr(dataloader, "__getitem__"):
        raise TypeError(
            f"{name}={dataloader!r} is invalid: expected an iterable of batches such as a "
            "torch.utils.data.DataLoader. Wrap your data in a DataLoader."
        )
    if isinstance(dataloader, Iterator):
        logger.warning(
            "%s is an iterator: it can be consumed only once, so a second epoch will find it "
            "empty. Pass a re-iterable such as a DataLoader.",
            name,
        )
    n = _safe_len(dataloader)
    if n == 0:
        raise ValueError(
            f"{name}={dataloader!r} is invalid: it has length 0, so there is nothing to iterate. "
            "Check the dataset and batch size (drop_last=True with fewer items than one batch "
            "yields nothing)."
        )


def _safe_len(obj: Any) -> int | None:
    try:
        return len(obj)
    except (TypeError, NotImplementedError):
        return None


def empty_epoch_error(name: str, phase: str, epoch: int) -> ValueError:
    return ValueError(
        f"{name} yielded no batches in {phase} epoch {epoch}: there is nothing to "
        f"{'train on' if phase == 'train' else 'run'}. Check the dataset; a generator or "
        "iterator can only be iterated once, so pass a re-iterable such as a DataLoader."
    )


def set_training_mode(
    modules: dict[str, torch.nn.Module], mode: bool
) -> dict[torch.nn.Module, bool]:
    """Put every module (recursively) in train/eval mode; return each submodule's prior mode."""
    prior: dict[torch.nn.Module, bool] = {}
    for module in modules.values():
        for m in module.modules():
            prior.setdefault(m, m.training)
        module.train(mode)
    return prior


def restore_training_mode(prior: dict[torch.nn.Module, bool]) -> None:
    """Put every submodule back in the mode ``set_training_mode`` found it in."""
    for m, mode in prior.items():
        m.training = mode


def set_sampler_epoch(dataloader: Iterable[Any], epoch: int) -> None:
    """Call ``dataloader.set_epoch(epoch)`` when the loader has one (e.g. a
    ``MultiDataLoader``), else its sampler's (e.g. ``DistributedSampler``)."""
    set_dataloader_epoch(dataloader, epoch)


def timed(timer: Timer, name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` under ``timer.time(name)`` (only used when the user passed a Timer)."""
    with timer.time(name):
        return fn(*args)


def create_iterator(
    state: State,
    unit: Any,
    dataloader: Iterable[Any],
    timer_name: str,
    before: list[Callable[..., None]],
    after: list[Callable[..., None]],
) -> Iterator[Any]:
    """``iter(dataloader)`` between the ``on_<phase>_dataloader_iter_creation_*`` callbacks,
    recorded by the user's timer when there is one (worker start-up happens here)."""
    for fn in before:
        fn(state, unit)
    timer = state.timer
    if timer is None:
        data_iter = iter(dataloader)
    else:
        with timer.time(timer_name):
            data_iter = iter(dataloader)
    for fn in after:
        fn(state, unit)
    return data_iter


def call_hook(state: State, name: str, fn: Callable[[State], None]) -> None:
    """Run a unit hook, recorded by the user's timer when there is one."""
    timer = state.timer
    if timer is None:
        fn(state)
    else:
        with timer.time(name):
            fn(state)


def handle_exception(state: State, unit: Any, cbs: CallbackHandler, exc: BaseException) -> None:
    """Unit's ``on_exception``, then each callback's; errors inside them are logged, not raised,
    so the original exception is the one that propagates."""
    try:
        unit.on_exception(state, exc)
    except Exception:
        logger.exception("%s.on_exception raised; continuing", type(unit).__name__)
    for fn in cbs.on_exception:
        try:
            fn(state, unit, exc)
        except Exception:
            logger.exception("a callback's on_exception raised; continuing")
