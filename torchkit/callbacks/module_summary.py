"""``ModuleSummary``: a per-submodule table of parameter counts, sizes and optional FLOPs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from torchkit.callbacks.callback import Callback
from torchkit.loop.state import State
from torchkit.utils.distributed import get_global_rank

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModuleRow:
    """One line of the summary."""

    name: str
    """Dotted submodule name (the root is the tracked attribute name)."""
    type: str
    """The submodule's class name."""
    num_parameters: int
    """Parameters, counted recursively."""
    num_trainable: int
    """Parameters with ``requires_grad``."""
    size_mib: float
    """Parameter and buffer bytes, in MiB."""
    flops: int | None
    """Forward FLOPs for the example input (``None`` without one)."""


def summarize(
    name: str, module: torch.nn.Module, max_depth: int = 1, example_input: Any = None
) -> list[ModuleRow]:
    """Rows for ``module`` and its submodules down to ``max_depth`` levels.

    Example:
        >>> rows = summarize("net", torch.nn.Sequential(torch.nn.Linear(2, 3)))
        >>> [(r.name, r.num_parameters) for r in rows]
        [('net', 9), ('net.0', 9)]
    """
    flops = _flops(module, example_input) if example_input is not None else None
    rows = []
    for sub_name, sub in module.named_modules():
        depth = 0 if not sub_name else sub_name.count(".") + 1
        if depth > max_depth:
            continue
        params = list(sub.parameters())
        size = sum(p.numel() * p.element_size() for p in params)
        size += sum(b.numel() * b.element_size() for b in sub.buffers())
        full = f"{name}.{sub_name}" if sub_name else name
        rows.append(ModuleRow(
            name=full, type=type(sub).__name__,
            num_parameters=sum(p.numel() for p in params),
            num_trainable=sum(p.numel() for p in params if p.requires_grad),
            size_mib=size / float(1 << 20),
            flops=None if flops is None else flops.get(sub_name or "Global", 0),
        ))  # fmt: skip
    return rows


def _flops(module: torch.nn.Module, example_input: Any) -> dict[str, int]:
    """Forward FLOPs per submodule name (``"Global"`` for the root) via ``FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    args = example_input if isinstance(example_input, tuple) else (example_input,)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*args)
    out: dict[str, int] = {}
    prefix = f"{type(module).__name__}."
    for key, by_op in counter.get_flop_counts().items():
        name = key[len(prefix) :] if key.startswith(prefix) else key
        out[name] = int(sum(by_op.values()))
    return out


def format_table(rows: list[ModuleRow]) -> str:
    """The rows as an aligned text table."""
    header = ["Name", "Type", "# Params", "# Trainable", "Size (MiB)"]
    has_flops = any(r.flops is not None for r in rows)
    if has_flops:
        header.append("FLOPs")
    lines = [header]
    for r in rows:
        line = [r.name, r.type, f"{r.num_parameters:,}", f"{r.num_trainable:,}",
                f"{r.size_mib:.3f}"]  # fmt: skip
        if has_flops:
            line.append("-" if r.flops is None else f"{r.flops:,}")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines)


class ModuleSummary(Callback):
    """On rank 0, when the first phase starts, summarises every tracked module and hands the
    text table to ``process_fn`` (default: ``logging`` at INFO). The rows stay in
    ``summaries`` (``{attribute: [ModuleRow, ...]}``).

    Args:
        max_depth: submodule levels shown (0 = only the tracked module).
        process_fn: receives the table text.
        example_inputs: ``{module attribute: input}``; with one, forward FLOPs per submodule
            are counted with ``torch.utils.flop_counter`` (the input runs once under no_grad).

    Raises:
        ValueError: ``max_depth`` < 0.

    Example:
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> ms = ModuleSummary(example_inputs={"module": torch.zeros(1, 2)})
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(4, 2, 2), max_epochs=1,
        ...           callbacks=[ms])
        >>> r = ms.summaries["module"][0]; (r.num_parameters, r.flops)
        (6, 8)
    """

    def __init__(
        self,
        max_depth: int = 1,
        process_fn: Callable[[str], None] | None = None,
        example_inputs: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
            raise ValueError(
                f"max_depth={max_depth!r} is invalid: expected an int >= 0. Pass 0 for only "
                "the top-level modules."
            )
        self.max_depth = max_depth
        self.process_fn = process_fn or logger.info
        self.example_inputs = dict(example_inputs or {})
        self.summaries: dict[str, list[ModuleRow]] = {}

    def _summarize(self, unit: Any) -> None:
        if self.summaries or get_global_rank() != 0:
            return
        for name, module in unit.tracked_modules().items():
            rows = summarize(name, module, self.max_depth, self.example_inputs.get(name))
            self.summaries[name] = rows
            self.process_fn(format_table(rows))

    def on_train_start(self, state: State, unit: Any) -> None:
        self._summarize(unit)

    def on_eval_start(self, state: State, unit: Any) -> None:
        self._summarize(unit)

    def on_predict_start(self, state: State, unit: Any) -> None:
        self._summarize(unit)
