"""``TrainUnit``, ``EvalUnit``, ``PredictUnit`` and ``TestUnit``: the user's model code, with
every hook."""

from __future__ import annotations

import inspect
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from torchkit.loop.progress import Progress
from torchkit.loop.state import State
from torchkit.units.app_state_mixin import AppStateMixin

TData = TypeVar("TData")
TTrainData = TypeVar("TTrainData")
TEvalData = TypeVar("TEvalData")
TPredictData = TypeVar("TPredictData")
TTestData = TypeVar("TTestData")
TStepOutput = TypeVar("TStepOutput")


def step_requires_iterator(step_fn: Callable[..., Any]) -> bool:
    """True when the step's ``data`` parameter is annotated ``Iterator[...]`` (TNT compat).

    Such a step receives the data iterator itself. Resolved once per phase, never per step.
    """
    try:
        hints = typing.get_type_hints(step_fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = getattr(step_fn, "__annotations__", {})
    params = list(inspect.signature(step_fn).parameters)
    if len(params) < 2:
        return False
    ann = hints.get(params[1])
    if ann is None:
        return False
    if isinstance(ann, str):  # another hint did not resolve: read this one as written
        head = ann.split("[", 1)[0].strip()
        return head in ("Iterator", "typing.Iterator", "collections.abc.Iterator")
    origin = typing.get_origin(ann) or ann
    return origin in (Iterator, typing.Iterator)


def leading_dim(batch: Any) -> int | None:
    """The leading dimension of a tensor, or of the first tensor in a mapping or sequence.

    Example:
        >>> import torch
        >>> leading_dim({"x": torch.zeros(16, 3)}), leading_dim((torch.zeros(4), 1)), leading_dim(3)
        (16, 4, None)
    """
    shape = getattr(batch, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if isinstance(batch, Mapping):
        items: Iterable[Any] = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for item in items:
        n = leading_dim(item)
        if n is not None:
            return n
    return None


def train_fetch_fn(unit: Any) -> Callable[[State, Iterator[Any]], Any]:
    """The train-batch fetch function, resolved once per epoch: ``get_next_train_batch``
    (TNT's hook), or a ``get_next_batch(state, data_iter)`` the unit defines instead.

    Raises:
        TypeError: the unit overrides both ``get_next_train_batch`` and ``get_next_batch``.
    """
    alias = getattr(unit, "get_next_batch", None)
    if alias is None or not _takes_state_and_iter(alias):
        return unit.get_next_train_batch
    own = getattr(type(unit), "get_next_train_batch", None)
    if own is not None and own is not TrainUnit.get_next_train_batch:
        raise TypeError(
            f"{type(unit).__name__} defines both get_next_batch and get_next_train_batch: "
            "expected one train-batch fetch hook. Keep get_next_train_batch (TNT's name)."
        )
    return alias


def _takes_state_and_iter(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind(None, None)
    except (TypeError, ValueError):
        return False
    return True


class _UnitBase(AppStateMixin):
    def on_exception(self, state: State, exc: BaseException) -> None:
        """Called when the loop raises, before the callbacks' ``on_exception``."""

    def on_checkpoint_save(self, state: State, checkpoint_id: str) -> None:
        """Called after a checkpoint was committed at ``checkpoint_id`` (its path or URL)."""


class TrainUnit(_UnitBase, Generic[TTrainData], ABC):
    """Base class for training code: implement ``train_step``.

    ``train_progress`` counts completed train epochs and steps.

    Example:
        >>> import torch
        >>> from torchkit import train
        >>> class MyTrain(TrainUnit[torch.Tensor]):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Linear(2, 1)
        ...         self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        ...     def train_step(self, state, data):
        ...         loss = self.net(data).pow(2).mean()
        ...         loss.backward(); self.opt.step(); self.opt.zero_grad()
        ...         return loss
        >>> u = MyTrain(); _ = train(u, [torch.ones(4, 2)] * 3, max_epochs=2)
        >>> u.train_progress.num_steps_completed
        6
    """

    def __init__(self) -> None:
        super().__init__()
        self.train_progress = Progress()

    def on_train_start(self, state: State) -> None:
        """Called once when training starts, before the callbacks' hook."""

    def on_train_epoch_start(self, state: State) -> None:
        """Called at the start of each train epoch (not when resuming mid-epoch)."""

    def get_next_train_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        """Fetch the next batch; override for custom fetching. ``StopIteration`` ends the epoch.

        A ``get_next_batch(state, data_iter)`` method defined instead is used the same way.
        """
        return next(data_iter)

    @abstractmethod
    def train_step(self, state: State, data: TTrainData) -> Any:
        """Run one training step on ``data``; the return value is ``step_output``."""

    def count_samples(self, batch: Any) -> int | None:
        """Samples in ``batch``, for ``sp`` durations: its leading dimension (of a tensor, or of
        the first tensor in a mapping or sequence); ``None`` when there is none.

        Reads shapes only (no host-device sync). The loop multiplies it by the world size; an
        override is summed across ranks instead. Override it for batches whose size the
        leading dimension does not give.
        """
        return leading_dim(batch)

    def count_tokens(self, batch: Any) -> int | None:
        """Tokens in ``batch``, for ``tok`` durations: the element count of its ``input_ids``
        (else ``attention_mask``) field, padding included; ``None`` when it has neither.

        Reads shapes only (no host-device sync). The loop multiplies it by the world size; an
        override is summed across ranks instead. For exact non-pad counts return a Python int
        computed on CPU, e.g. a collate field: ``return batch["num_tokens"]``.
        """
        # a dict first: this runs every step of a ``tok`` run, so the common case costs no
        # call beyond ``numel``
        if batch.__class__ is not dict and not isinstance(batch, Mapping):
            return None
        try:
            ids = batch["input_ids"]
        except KeyError:
            try:
                ids = batch["attention_mask"]
            except KeyError:
                return None
        try:
            n: int = ids.numel()  # a tensor's shape product: no host sync
        except AttributeError:
            return None
        return n

    def on_train_epoch_end(self, state: State) -> None:
        """Called at the end of each train epoch, after ``num_epochs_completed`` counts it."""

    def on_train_end(self, state: State) -> None:
        """Called once when training ends."""


class EvalUnit(_UnitBase, Generic[TEvalData], ABC):
    """Base class for evaluation code: implement ``eval_step``.

    Example:
        >>> import torch
        >>> from torchkit import evaluate
        >>> class MyEval(EvalUnit[torch.Tensor]):
        ...     def eval_step(self, state, data):
        ...         return data.sum()
        >>> u = MyEval(); evaluate(u, [torch.ones(2)] * 3)
        >>> u.eval_progress.num_steps_completed
        3
    """

    def __init__(self) -> None:
        super().__init__()
        self.eval_progress = Progress()

    def on_eval_start(self, state: State) -> None:
        """Called when an evaluation starts."""

    def on_eval_epoch_start(self, state: State) -> None:
        """Called at the start of each eval epoch."""

    def get_next_eval_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        """Fetch the next eval batch."""
        return next(data_iter)

    @abstractmethod
    def eval_step(self, state: State, data: TEvalData) -> Any:
        """Run one evaluation step on ``data``."""

    def on_eval_epoch_end(self, state: State) -> None:
        """Called at the end of each eval epoch, after ``num_epochs_completed`` counts it."""

    def on_eval_end(self, state: State) -> None:
        """Called when an evaluation ends."""


class PredictUnit(_UnitBase, Generic[TPredictData], ABC):
    """Base class for inference code: implement ``predict_step``.

    Example:
        >>> import torch
        >>> from torchkit import predict
        >>> class MyPredict(PredictUnit[torch.Tensor]):
        ...     def predict_step(self, state, data):
        ...         return data * 2
        >>> u = MyPredict(); predict(u, [torch.ones(2)] * 2)
        >>> u.predict_progress.num_steps_completed
        2
    """

    def __init__(self) -> None:
        super().__init__()
        self.predict_progress = Progress()

    def on_predict_start(self, state: State) -> None:
        """Called when prediction starts."""

    def on_predict_epoch_start(self, state: State) -> None:
        """Called at the start of the predict epoch."""

    def get_next_predict_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        """Fetch the next predict batch."""
        return next(data_iter)

    @abstractmethod
    def predict_step(self, state: State, data: TPredictData) -> Any:
        """Run one inference step on ``data``."""

    def on_predict_epoch_end(self, state: State) -> None:
        """Called at the end of the predict epoch."""

    def on_predict_end(self, state: State) -> None:
        """Called when prediction ends."""


class TestUnit(_UnitBase, Generic[TTestData], ABC):
    """Base class for a held-out test pass: implement ``test_step``.

    ``test(unit, dataloader)`` runs it once; ``fit(..., test_dataloader=...)`` runs it once
    after training, with the trained weights, as TNT does. It is a phase of its own, with its
    own hooks (``on_test_*``, for the unit and for callbacks) and ``test_progress``, so test
    numbers never mix with the eval numbers that steer training (early stopping, best
    checkpoints).

    Example:
        >>> import torch
        >>> from torchkit import test
        >>> class MyTest(TestUnit[torch.Tensor]):
        ...     def test_step(self, state, data):
        ...         return data.sum()
        >>> u = MyTest(); test(u, [torch.ones(2)] * 3)
        >>> u.test_progress.num_steps_completed
        3
    """

    __test__ = False  # a base class named Test*, not a pytest test class

    def __init__(self) -> None:
        super().__init__()
        self.test_progress = Progress()

    def on_test_start(self, state: State) -> None:
        """Called when the test phase starts."""

    def on_test_epoch_start(self, state: State) -> None:
        """Called at the start of the test epoch."""

    def get_next_test_batch(self, state: State, data_iter: Iterator[object]) -> Any:
        """Fetch the next test batch."""
        return next(data_iter)

    @abstractmethod
    def test_step(self, state: State, data: TTestData) -> Any:
        """Run one test step on ``data`` (under ``torch.no_grad``, modules in eval mode)."""

    def on_test_epoch_end(self, state: State) -> None:
        """Called at the end of the test epoch, after ``num_epochs_completed`` counts it."""

    def on_test_end(self, state: State) -> None:
        """Called when the test phase ends."""


# TNT's aliases (``torchtnt.framework.unit``): a unit of any data type, for annotations.
# TNT parametrises them with its data type variables; ``Any`` keeps them usable bare under
# mypy --strict, and behaves the same at runtime.
TTrainUnit = TrainUnit[Any]
TEvalUnit = EvalUnit[Any]
TPredictUnit = PredictUnit[Any]
TTestUnit = TestUnit[Any]
AppStateUnit = _UnitBase
