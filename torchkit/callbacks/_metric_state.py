"""Computes loss means and torchmetrics once and publishes them as scalars in ``state.metrics``.

Every callback that shows or decides on metrics (``MetricsLogger``, ``TQDMProgressBar``,
``EarlyStopping``, ``RunSummary``, best-checkpoint tracking) goes through these functions
instead of computing on its own, so values are computed once, read from the device once, and
are in ``state.metrics`` whichever callback runs first:

* ``loss_recorders()`` - the step-end hooks ``CallbackHandler`` runs first when a callback
  sets ``records_step_losses`` (``record_step`` does the same from a hook). They keep the
  step's loss (the first element of a ``(loss, outputs)`` step output, a scalar tensor
  output, or ``.loss`` of ``TrainStepResults``) as a 0-d device tensor, once per step: a
  list append, no device op, no host sync.
* ``publish_train(state, unit)`` - call at a train logging point. Computes the running loss
  mean since the previous publication, ``unit.train_metrics`` (then resets them) and the
  step's grad norm, reads all of them (the step losses included) with **one** stack and one
  host transfer, averages the losses on the host in float64, writes ``train/<name>`` into
  ``state.metrics`` and returns them. Cached by the train step count: a second call at the
  same step returns the same values without computing again.
* ``publish_eval(state, unit)`` - call from ``on_eval_epoch_end``. The same for the eval
  loss mean and ``unit.eval_metrics`` (``eval/<name>``, or ``eval/<set>/<name>`` for a named
  eval set of ``Evaluators``), cached by the eval epoch count.
* ``publish_test(state, unit)`` - call from ``on_test_epoch_end``. The same for the test
  phase's loss mean and ``unit.test_metrics`` (``test/<name>``).
* ``add_time(state, category, seconds)`` / ``get_times(state)`` - wall-time buckets
  (``"checkpoint"``...) that callbacks report and ``RunSummary`` prints.

The per-run accumulators live on the run's ``State`` (``state._metric_state``), so they
disappear with the run and two runs never share them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from torchkit.loop.state import State

logger = logging.getLogger(__name__)

_PREFIXES = ("Multiclass", "Multilabel", "Binary")
_FOLD_AT = 1024


def _sum(losses: list[torch.Tensor]) -> torch.Tensor:
    """Sum of scalar loss tensors in fp32 (one stack and one sum on the device)."""
    try:
        return torch.stack(losses).float().sum()
    except RuntimeError:  # mixed dtypes or shapes (a folded partial sum next to bf16 losses)
        return torch.stack([t.reshape(()).float() for t in losses]).sum()


class _PhaseMetrics:
    """Accumulators of one phase: the step losses since the last publication, and a cache."""

    __slots__ = (
        "count",
        "generation",
        "last_recorded_step",
        "losses",
        "published",
        "published_key",
    )

    def __init__(self) -> None:
        # Detached 0-d device tensors, read with one stack at publication: recording a step
        # costs a list append and no device op. Every _FOLD_AT steps they are folded into
        # one partial sum (one device op) to bound memory on long intervals.
        self.losses: list[torch.Tensor] = []
        self.count = 0
        """Steps the losses stand for (a long interval is folded into one partial sum)."""
        self.generation = 0
        """Bumped whenever ``losses`` is replaced (a publication or a fold), so a reader that
        remembers ``(generation, len(losses))`` knows which losses are new since it looked."""
        self.last_recorded_step = -1
        self.published_key: int = -1
        self.published: dict[str, float] = {}


class MetricState:
    """Everything ``_metric_state`` keeps for one run (one ``State``)."""

    __slots__ = ("eval", "phases", "test", "times", "train")

    def __init__(self) -> None:
        self.train, self.eval, self.test = _PhaseMetrics(), _PhaseMetrics(), _PhaseMetrics()
        self.phases = {"train": self.train, "eval": self.eval, "test": self.test}
        self.times: dict[str, float] = {}


def get_metric_state(state: State) -> MetricState:
    """The accumulators of ``state``'s run (created on first use)."""
    ms: MetricState | None = state._metric_state
    if ms is None:
        ms = state._metric_state = MetricState()
    return ms


def extract_loss(step_output: Any) -> torch.Tensor | None:
    """The loss in a step output: ``(loss, ...)``, a scalar tensor, or an object's ``.loss``."""
    if isinstance(step_output, (tuple, list)) and step_output:
        candidate = step_output[0]
    elif hasattr(step_output, "loss"):
        candidate = step_output.loss
    else:
        candidate = step_output
    if isinstance(candidate, torch.Tensor) and candidate.numel() == 1:
        return candidate
    return None


def _keep(acc: _PhaseMetrics, output: Any) -> None:
    """Append the loss in ``output`` (if any) to ``acc``."""
    if type(output) is tuple and output and type(output[0]) is torch.Tensor:
        loss: torch.Tensor | None = output[0] if output[0].ndim == 0 else extract_loss(output)
    else:
        loss = extract_loss(output)
    if loss is None:
        return
    if loss.requires_grad:
        loss = loss.detach()
    acc.losses.append(loss if loss.ndim == 0 else loss.reshape(()))
    acc.count += 1
    if acc.count % _FOLD_AT == 0:  # bound memory on long intervals: one device op
        acc.losses = [_sum(acc.losses)]
        acc.generation += 1


def _record_train_loss(state: State, unit: Any) -> None:
    """``on_train_step_end``: keep the train step's loss (see ``loss_recorders``)."""
    ms = state._metric_state
    acc = (ms if ms is not None else get_metric_state(state)).train
    step = unit.train_progress.num_steps_completed
    if acc.last_recorded_step != step:  # not recorded yet by record_step
        acc.last_recorded_step = step
        ps = state._train_state
        output = ps._step_output if ps is not None else None
        # inlined fast path for AutoUnit's (detached 0-d loss, outputs); _keep does the rest
        if (
            type(output) is tuple
            and output
            and type(loss := output[0]) is torch.Tensor
            and loss.ndim == 0
            and not loss.requires_grad
        ):
            acc.losses.append(loss)
            acc.count += 1
            if acc.count % _FOLD_AT == 0:
                acc.losses = [_sum(acc.losses)]
                acc.generation += 1
            return
        _keep(acc, output)


def _record_phase_loss(acc: _PhaseMetrics, step: int, phase_state: Any) -> None:
    if acc.last_recorded_step != step:  # not recorded yet by record_step
        acc.last_recorded_step = step
        _keep(acc, phase_state._step_output if phase_state is not None else None)


def _record_eval_loss(state: State, unit: Any) -> None:
    """``on_eval_step_end``: keep the eval step's loss (see ``loss_recorders``)."""
    ms = state._metric_state
    acc = (ms if ms is not None else get_metric_state(state)).eval
    _record_phase_loss(acc, unit.eval_progress.num_steps_completed, state._eval_state)


def _record_test_loss(state: State, unit: Any) -> None:
    """``on_test_step_end``: keep the test step's loss (see ``loss_recorders``)."""
    _record_phase_loss(
        get_metric_state(state).test, unit.test_progress.num_steps_completed, state._test_state
    )


_RECORDERS = {"train": _record_train_loss, "eval": _record_eval_loss, "test": _record_test_loss}


def loss_recorders() -> dict[str, Callable[[State, Any], None]]:
    """The ``on_<phase>_step_end`` hooks that keep each step's loss, by phase (``"train"``,
    ``"eval"``, ``"test"``).

    ``CallbackHandler`` puts them first in the step-end hook lists when a callback sets
    ``records_step_losses``, so a step's loss is kept once (a list append: no device op, no
    host sync) however many callbacks show or log the loss mean.
    """
    return dict(_RECORDERS)


def record_step(state: State, unit: Any, phase: str) -> None:
    """Keep this step's loss for the phase's running mean (no host sync). Call it from
    ``on_<phase>_step_end``; a step already recorded is not counted twice."""
    _RECORDERS[phase](state, unit)


def metric_name(metric: Any) -> str:
    """A short snake_case name: ``MulticlassAccuracy`` -> ``accuracy``, ``MeanMetric`` ->
    ``mean_metric``."""
    name = type(metric).__name__
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def compute_metrics(metrics: Any) -> dict[str, torch.Tensor]:
    """``compute()`` a torchmetrics ``Metric``, ``MetricCollection`` or dict of them, as a flat
    ``{name: tensor}``; torchmetrics syncs across ranks here. Nothing is read to the host."""
    if metrics is None:
        return {}
    import torchmetrics

    if isinstance(metrics, torchmetrics.MetricCollection):
        items = [(metric_name(m) if k == type(m).__name__ else k, m) for k, m in metrics.items()]
    elif isinstance(metrics, torchmetrics.Metric):
        items = [(metric_name(metrics), metrics)]
    elif isinstance(metrics, Mapping):
        items = list(metrics.items())
    else:
        raise TypeError(
            f"metrics={metrics!r} is invalid: expected a torchmetrics Metric, MetricCollection "
            "or a dict of them. Assign e.g. self.eval_metrics = MulticlassAccuracy(num_classes)."
        )
    out: dict[str, torch.Tensor] = {}
    for name, metric in items:
        if not getattr(metric, "update_called", True):
            continue  # nothing seen this interval: compute() would only warn
        value = metric.compute()
        if isinstance(value, Mapping):
            out.update({str(k): v for k, v in value.items()})
        else:
            out[name] = value
    return {k: torch.as_tensor(v) for k, v in out.items() if torch.as_tensor(v).numel() == 1}


def reset_metrics(metrics: Any) -> None:
    """Reset a ``Metric``, ``MetricCollection`` or dict of them."""
    if metrics is None:
        return
    if isinstance(metrics, Mapping) and not hasattr(metrics, "reset"):
        for m in metrics.values():
            m.reset()
    else:
        metrics.reset()


def read_floats(
    values: Mapping[str, Any], loss_terms: Sequence[torch.Tensor] = ()
) -> dict[str, float]:
    """Read scalars to Python floats with one device op and one host transfer per device.

    ``loss_terms`` are 0-d tensors read along with ``values``; their sum is returned under
    ``"loss"`` (the caller divides by the step count). Names come back sorted. Each value
    keeps its own dtype up to the stack's type promotion, and the sum is taken on the host
    in float64, so a long interval of bf16 losses loses no precision.

    note: CPU-GPU sync point - call only at logging / decision points.
    """
    out: dict[str, float] = {}
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    slots: list[tuple[str, torch.device, int]] = []
    for name, v in values.items():
        if isinstance(v, torch.Tensor):
            group = by_device.setdefault(v.device, [])
            slots.append((name, v.device, len(group)))
            v = v.detach()
            group.append(v if v.ndim == 0 else v.reshape(()))
        else:
            out[name] = float(v)
    loss_slice: tuple[torch.device, int, int] | None = None
    if loss_terms:
        if len({t.device for t in loss_terms}) > 1:  # a unit that moved mid-interval: rare
            loss_terms = [_sum([t.to(loss_terms[-1].device) for t in loss_terms])]
        device = loss_terms[0].device
        group = by_device.setdefault(device, [])
        loss_slice = (device, len(group), len(group) + len(loss_terms))
        group.extend(loss_terms)
    read = {
        device: [group[0].item()] if len(group) == 1 else torch.stack(group).tolist()
        for device, group in by_device.items()
    }
    for name, device, i in slots:
        out[name] = float(read[device][i])
    if loss_slice is not None:
        device, lo, hi = loss_slice
        out["loss"] = math.fsum(read[device][lo:hi])
    return dict(sorted(out.items()))


def _publish(
    state: State, unit: Any, phase: str, key: int, grad_norm: Any, prefix: str | None = None
) -> dict[str, float]:
    acc = get_metric_state(state).phases[phase]
    if acc.published_key == key:
        return acc.published
    metrics = getattr(unit, f"{phase}_metrics", None)
    values: dict[str, Any] = dict(compute_metrics(metrics))
    if grad_norm is not None:
        values["grad_norm"] = grad_norm
    read = read_floats(values, acc.losses)  # sorted by name
    if acc.losses:
        read["loss"] /= acc.count
    prefix = prefix or phase
    floats = {f"{prefix}/{k}": v for k, v in read.items()}
    reset_metrics(metrics)
    acc.losses, acc.count = [], 0
    acc.generation += 1
    acc.published_key, acc.published = key, floats
    state.metrics.update(floats)
    return floats


def publish_train(state: State, unit: Any) -> dict[str, float]:
    """Compute, read once, publish (``train/<name>``) and reset the train metrics; cached by
    the train step count. Returns the published ``{name: value}``."""
    ts = state.train_state
    output = ts.step_output if ts is not None else None
    grad_norm = getattr(output, "total_grad_norm", None)
    if grad_norm is None:  # AutoUnit keeps the norm of its last update
        grad_norm = getattr(unit, "last_total_grad_norm", None)
    return _publish(state, unit, "train", unit.train_progress.num_steps_completed, grad_norm)


def peek_train_loss(state: State, mark: tuple[int, int]) -> tuple[float | None, tuple[int, int]]:
    """The mean train loss of the steps recorded since ``mark``, read with one sync, without
    publishing: the next publication's window is left whole.

    Args:
        state: the run's state.
        mark: what the caller saw last time, as returned by the previous call (``(-1, 0)`` at
            first). After a publication or a fold since then, the whole current interval is
            used.

    Returns:
        ``(mean or None when no step was recorded since, the new mark)``.

    note: CPU-GPU sync point - call only at display / decision points.
    """
    acc = get_metric_state(state).train
    generation, seen = mark
    if generation == acc.generation and seen <= len(acc.losses):
        terms, steps = acc.losses[seen:], len(acc.losses) - seen
    else:
        terms, steps = acc.losses, acc.count
    if not terms or steps == 0:
        return None, loss_mark(state)
    return read_floats({}, terms)["loss"] / steps, loss_mark(state)


def loss_mark(state: State) -> tuple[int, int]:
    """Where the train losses stand now, for ``peek_train_loss``'s next call."""
    acc = get_metric_state(state).train
    return acc.generation, len(acc.losses)


def publish_eval(state: State, unit: Any) -> dict[str, float]:
    """Compute, read once, publish (``eval/<name>``) and reset the eval metrics; cached by the
    eval epoch count. Returns the published ``{name: value}``.

    For a named set of ``Evaluators`` the names are ``eval/<set>/<name>`` (``eval/val/loss``).
    """
    es = state.eval_state
    prefix = es._metric_prefix if es is not None else None
    return _publish(state, unit, "eval", unit.eval_progress.num_epochs_completed, None, prefix)


def publish_test(state: State, unit: Any) -> dict[str, float]:
    """Compute, read once, publish (``test/<name>``) and reset the test phase's loss mean and
    ``unit.test_metrics``; cached by the test epoch count. Returns the published values."""
    return _publish(state, unit, "test", unit.test_progress.num_epochs_completed, None)


def add_time(state: State, category: str, seconds: float) -> None:
    """Add wall time (seconds) to a named bucket of the run, e.g. ``"checkpoint"``."""
    times = get_metric_state(state).times
    times[category] = times.get(category, 0.0) + seconds


def get_times(state: State) -> dict[str, float]:
    """The wall-time buckets reported with ``add_time`` so far."""
    return dict(get_metric_state(state).times)
