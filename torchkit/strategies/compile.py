"""``torch.compile`` for the auto units: checked options, per-block compile, compiled
autograd, a recompile watch and the CUDA-graph (``reduce-overhead``) step protocol."""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch

from torchkit.strategies.params import TorchCompileParams

logger = logging.getLogger(__name__)

EAGER_WARMUP_STEPS = 2


def check_compile_options(params: TorchCompileParams) -> None:
    """Raise before anything is compiled when ``params.options`` names an unknown inductor
    option (``torch.compile`` itself would fail only at the first forward).

    Args:
        params: the compile configuration.

    Raises:
        ValueError: an option inductor does not have, or options for a backend that takes
            none of ours to check (any other string backend is left to torch).

    Example:
        >>> check_compile_options(TorchCompileParams(backend="eager"))  # no options: fine
    """
    if not params.options or params.backend != "inductor":
        return
    import torch._inductor

    known = set(torch._inductor.list_options())
    unknown = sorted(set(params.options) - known)
    if unknown:
        hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
        close = ", ".join(f"{k!r} -> {v[0]!r}" for k, v in hints.items() if v)
        raise ValueError(
            f"options={params.options!r} is invalid: unknown inductor option(s) {unknown}. "
            f"See torch._inductor.list_options(){f' (did you mean {close}?)' if close else ''}."
        )


def apply_torch_compile(module: torch.nn.Module, params: TorchCompileParams) -> None:
    """Compile ``module`` in place (``nn.Module.compile``), or each submodule whose type is in
    ``params.recursive_module_types`` (outermost matches only). A module of torch's own classes
    (``nn.Sequential``...) is compiled through a function of torchkit's, which dynamo traces
    (see ``_compile_in_place``).

    Args:
        module: the prepared (possibly wrapped) module.
        params: the compile configuration.

    Raises:
        ValueError: ``recursive_module_types`` matches no submodule.

    Example:
        >>> m = torch.nn.Sequential(torch.nn.Linear(2, 2))
        >>> apply_torch_compile(m, TorchCompileParams(backend="eager",
        ...                     recursive_module_types=[torch.nn.Linear]))
        >>> m[0]._compiled_call_impl is not None
        True
    """
    check_compile_options(params)
    if params.disable:
        return
    kwargs: dict[str, Any] = {
        "fullgraph": params.fullgraph,
        "dynamic": params.dynamic,
        "backend": params.backend,
        "mode": params.mode,
        "options": params.options,
    }
    if not params.recursive_module_types:
        _compile_in_place(module, kwargs)
        return
    blocks = _outermost_matches(module, tuple(params.recursive_module_types))
    if not blocks:
        names = sorted({type(m).__name__ for m in module.modules()})
        raise ValueError(
            f"recursive_module_types={params.recursive_module_types!r} is invalid: no "
            f"submodule of {type(module).__name__} has one of these types (it has {names}). "
            "Pass the class of the repeated block, e.g. your TransformerBlock."
        )
    for block in blocks:
        _compile_in_place(block, kwargs)


def _compile_in_place(module: torch.nn.Module, kwargs: dict[str, Any]) -> None:
    """``module.compile(**kwargs)``, made to trace torch's own module classes too.

    Dynamo does not trace frames of torch's own files; it starts at the first frame below
    them. ``nn.Module.compile`` compiles ``_call_impl``, so a module whose ``forward`` is
    user code is traced from that forward, but a built-in one (``nn.Sequential`` of built-in
    layers, ``nn.TransformerEncoderLayer``) reaches only torch frames and would run eagerly
    without a word. For those, the compiled function is a small function of this file that
    calls ``_call_impl``: the trace starts there and inlines the module, as
    ``torch.compile(module)``'s wrapper does, without its ``_orig_mod.`` state-dict prefix.
    A ``DistributedDataParallel`` wrapper is traced the same way as before (its own frames
    skipped, the wrapped module compiled), so the rule applies to the module it wraps.
    """
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        inner = module.module
        if _forward_is_torchs(inner):
            _compile_in_place(inner, kwargs)
            return
    elif _forward_is_torchs(module) and hasattr(module, "_compiled_call_impl"):
        call_impl: Callable[..., Any] = module._call_impl

        def traced_call(*args: Any, **kw: Any) -> Any:
            return call_impl(*args, **kw)

        module._compiled_call_impl = torch.compile(traced_call, **kwargs)
        return
    module.compile(**kwargs)


def _forward_is_torchs(module: torch.nn.Module) -> bool:
    """True when ``module.forward`` is defined in torch itself (a built-in module class)."""
    forward = getattr(type(module), "forward", None)
    return str(getattr(forward, "__module__", "")).startswith("torch.")


def _matches(m: torch.nn.Module, types: tuple[Any, ...]) -> bool:
    # names are matched along the class hierarchy, so FSDP2's FSDP<Block> matches "Block"
    names = {c.__name__ for c in type(m).__mro__}
    return any(isinstance(m, t) if isinstance(t, type) else t in names for t in types)


def _outermost_matches(module: torch.nn.Module, types: tuple[Any, ...]) -> list[torch.nn.Module]:
    found: list[torch.nn.Module] = []

    def visit(m: torch.nn.Module) -> None:
        if _matches(m, types):
            found.append(m)  # its own matching children are compiled as part of it
            return
        for child in m.children():
            visit(child)

    visit(module)
    return found


def mark_cudagraph_step() -> None:
    """Start a new CUDA-graph step: outputs of earlier replays may be overwritten from here
    (``torch.compiler.cudagraph_mark_step_begin``)."""
    torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]


class _CompiledStep:
    """Entered around each micro-batch's forward and backward (the auto units' step context).

    ``reduce-overhead``: the first ``EAGER_WARMUP_STEPS`` optimizer steps run eagerly
    (``torch.compiler.set_stance("force_eager")``), so the optimizer's lazily created state
    exists before any graph is captured; every micro-batch then starts a new CUDA-graph step
    (``torch.compiler.cudagraph_mark_step_begin``), which accumulation needs. Compiled
    autograd wraps the backward in ``torch._dynamo.compiled_autograd``.
    """

    def __init__(
        self,
        *,
        mark_steps: bool,
        optimizer_steps: Callable[[], int] | None,
        autograd: Callable[[], Any] | None,
    ) -> None:
        self._mark_steps = mark_steps
        self._optimizer_steps = optimizer_steps
        self._autograd = autograd
        self._open: list[Any] = []

    def __enter__(self) -> None:
        steps = self._optimizer_steps
        if steps is not None and steps() < EAGER_WARMUP_STEPS:
            self._enter(torch.compiler.set_stance("force_eager"))
        if self._mark_steps:
            mark_cudagraph_step()
        if self._autograd is not None:
            self._enter(self._autograd())

    def _enter(self, cm: Any) -> None:
        cm.__enter__()
        self._open.append(cm)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        while self._open:
            self._open.pop().__exit__(kind, exc, tb)


def compiled_step_context(
    params: TorchCompileParams | None, optimizer_steps: Callable[[], int]
) -> _CompiledStep | None:
    """The context the auto units enter around each micro-batch, or None when compile needs
    none (the common case: no call per step).

    Args:
        params: the compile configuration (None: not compiled).
        optimizer_steps: returns the optimizer steps taken so far (eager warm-up count).

    Returns:
        A reusable context manager, or None.

    Example:
        >>> compiled_step_context(TorchCompileParams(backend="eager"), lambda: 0) is None
        True
    """
    if params is None or params.disable:
        return None
    reduce_overhead = params.mode == "reduce-overhead"
    autograd = _compiled_autograd(params) if params.compiled_autograd else None
    if not reduce_overhead and autograd is None:
        return None
    warmup: Callable[[], int] | None = None
    if reduce_overhead and hasattr(torch.compiler, "set_stance"):
        warmup = optimizer_steps
    elif reduce_overhead:  # torch < 2.6
        logger.warning(
            "mode='reduce-overhead': this torch has no torch.compiler.set_stance, so the "
            "first %d optimizer steps are captured instead of run eagerly.",
            EAGER_WARMUP_STEPS,
        )
    return _CompiledStep(mark_steps=reduce_overhead, optimizer_steps=warmup, autograd=autograd)


def _compiled_autograd(params: TorchCompileParams) -> Callable[[], Any] | None:
    """A factory of compiled-autograd contexts, or None (with one warning) when this torch
    has no compiled autograd. The API is private, so it is looked up defensively."""
    try:
        from torch._dynamo import compiled_autograd
    except ImportError:
        enable = None
    else:
        enable = getattr(compiled_autograd, "_enable", None) or getattr(
            compiled_autograd, "enable", None
        )
    if enable is None:
        logger.warning(
            "compiled_autograd=True is ignored: torch %s has no "
            "torch._dynamo.compiled_autograd; the backward pass runs uncompiled.",
            torch.__version__,
        )
        return None
    compiler = functools.partial(
        torch.compile, backend=params.backend, fullgraph=params.fullgraph, dynamic=params.dynamic
    )
    return functools.partial(enable, compiler)


def compiled_graph_count() -> int:
    """Graphs dynamo compiled in this process so far (0 where the counter is unavailable)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(counters["stats"]["unique_graphs"])


class RecompileWatch:
    """Counts the graphs compiled since it was built and warns once past a threshold.

    The counter is dynamo's process-wide one: graphs other compiled code builds meanwhile
    count too. Checked at train epoch ends, never per step.

    Args:
        threshold: warn when more graphs than this were compiled.

    Example:
        >>> RecompileWatch(8).num_graphs
        0
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._baseline = compiled_graph_count()
        self._warned = False

    @property
    def num_graphs(self) -> int:
        """Graphs compiled since the watch was built."""
        return compiled_graph_count() - self._baseline

    def check(self) -> None:
        """Warn (once) when more than ``threshold`` graphs were compiled."""
        if self._warned:
            return
        n = self.num_graphs
        if n > self.threshold:
            self._warned = True
            logger.warning(
                "torch.compile built %d graphs since this unit was created (threshold %d): "
                "something recompiles, e.g. a Python number or a changing shape reaching the "
                "compiled code. Run with TORCH_LOGS=recompiles to see why; drop_last=True "
                "avoids a ragged last batch.",
                n,
                self.threshold,
            )
