"""Config dataclasses for ``torch.compile``, activation checkpointing and SWA / EMA."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

_AC_IMPLS = ("reentrant", "no_reentrant")
_AVG_METHODS = ("ema", "swa")
_ANNEAL = ("linear", "cos")


_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TorchCompileParams:
    """Arguments for ``torch.compile``, applied in place with ``module.compile`` after the
    strategy has wrapped the module (so ``state_dict`` keys keep their names).

    Args:
        fullgraph: fail on graph breaks instead of falling back to eager.
        dynamic: dynamic-shape mode (None: automatic).
        backend: the compiler backend.
        mode: ``"default"``, ``"reduce-overhead"`` (CUDA graphs), ``"max-autotune"``,
            ``"max-autotune-no-cudagraphs"`` or None. With ``"reduce-overhead"`` AutoUnit
            marks each micro-batch as a new CUDA-graph step, clones the loss it returns,
            zeroes gradients in place and runs its first two optimizer steps eagerly.
        options: inductor options (``torch._inductor.list_options()``); not with ``mode``.
        disable: leave the module uncompiled (keeps a config around, switched off).
        recursive_module_types: compile each submodule of these types (classes, or class
            names as strings) instead of the whole module, e.g. a transformer block; a
            match nested inside another match is compiled as part of it.
        compiled_autograd: also compile the backward pass with compiled autograd (a private
            torch API: one warning, and a plain backward, where this torch lacks it).
        recompile_warning_threshold: warn once when more graphs than this were compiled
            since the unit was built (checked at each train epoch end): usually a Python
            scalar or a changing shape reaching the compiled code.

    Raises:
        ValueError: an unknown ``mode``, ``mode`` with ``options``, or a threshold < 1.
        TypeError: ``recursive_module_types`` holds something other than module classes or
            names.

    Example:
        >>> TorchCompileParams(backend="eager").backend
        'eager'
        >>> TorchCompileParams(recursive_module_types=[torch.nn.Linear]).recursive_module_types
        (<class 'torch.nn.modules.linear.Linear'>,)
    """

    fullgraph: bool = False
    dynamic: bool | None = None
    backend: str | Callable[..., Any] = "inductor"
    mode: str | None = None
    options: dict[str, Any] | None = None
    disable: bool = False
    recursive_module_types: Sequence[type[torch.nn.Module] | str] = ()
    compiled_autograd: bool = False
    recompile_warning_threshold: int = 8

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in _COMPILE_MODES:
            raise ValueError(
                f"mode={self.mode!r} is invalid: expected None or one of {_COMPILE_MODES}. "
                "Use mode='reduce-overhead' for CUDA graphs."
            )
        if self.mode is not None and self.options:
            raise ValueError(
                f"mode={self.mode!r} with options={self.options!r} is invalid: torch.compile "
                "takes one of them. Put the mode's settings into options, or drop options."
            )
        threshold = self.recompile_warning_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ValueError(
                f"recompile_warning_threshold={threshold!r} is invalid: expected an int >= 1. "
                "Pass e.g. 8 (torch's own recompile limit)."
            )
        types = self.recursive_module_types
        if isinstance(types, (str, type)):
            types = (types,)
        for t in types:
            if not isinstance(t, str) and not (
                isinstance(t, type) and issubclass(t, torch.nn.Module)
            ):
                raise TypeError(
                    f"recursive_module_types={self.recursive_module_types!r} is invalid: "
                    f"expected torch.nn.Module subclasses or class names, got {t!r}. Pass e.g. "
                    "recursive_module_types=[TransformerBlock]."
                )
        object.__setattr__(self, "recursive_module_types", tuple(types))


@dataclass(frozen=True)
class ActivationCheckpointParams:
    """Activation checkpointing of the submodules ``check_fn`` selects.

    Args:
        checkpoint_impl: ``"no_reentrant"`` (recommended) or ``"reentrant"``.
        check_fn: ``check_fn(submodule) -> bool``; True wraps that submodule.

    Raises:
        ValueError: an unknown ``checkpoint_impl``.

    Example:
        >>> p = ActivationCheckpointParams(check_fn=lambda m: isinstance(m, torch.nn.Linear))
        >>> p.checkpoint_impl
        'no_reentrant'
    """

    checkpoint_impl: Literal["reentrant", "no_reentrant"] = "no_reentrant"
    check_fn: Callable[[torch.nn.Module], bool] = field(default=lambda _: True)

    def __post_init__(self) -> None:
        if self.checkpoint_impl not in _AC_IMPLS:
            raise ValueError(
                f"checkpoint_impl={self.checkpoint_impl!r} is invalid: expected one of "
                f"{_AC_IMPLS}. Use 'no_reentrant'."
            )


@dataclass(frozen=True)
class SWALRParams:
    """An ``SWALR`` schedule used once SWA / EMA averaging has started.

    Args:
        anneal_steps_or_epochs: how many steps (or epochs) to anneal to ``swa_lrs``.
        anneal_strategy: ``"linear"`` or ``"cos"``.
        swa_lrs: the target learning rate (one per param group, or one for all).

    Raises:
        ValueError: a negative anneal length or an unknown strategy.

    Example:
        >>> SWALRParams(anneal_steps_or_epochs=5, swa_lrs=0.01).anneal_strategy
        'linear'
    """

    anneal_steps_or_epochs: int
    anneal_strategy: Literal["linear", "cos"] = "linear"
    swa_lrs: float | list[float] = 0.05

    def __post_init__(self) -> None:
        if self.anneal_steps_or_epochs < 0:
            raise ValueError(
                f"anneal_steps_or_epochs={self.anneal_steps_or_epochs!r} is invalid: expected >= 0."
            )
        if self.anneal_strategy not in _ANNEAL:
            raise ValueError(
                f"anneal_strategy={self.anneal_strategy!r} is invalid: expected one of {_ANNEAL}."
            )


@dataclass(frozen=True)
class SWAParams:
    """Stochastic weight averaging or an exponential moving average of the weights.

    Built on ``torch.optim.swa_utils.AveragedModel`` with ``use_buffers=True`` by default,
    so BatchNorm running statistics are averaged too. Updates happen every
    ``step_or_epoch_update_freq`` optimizer steps (or epochs, following ``step_lr_interval``)
    once ``warmup_steps_or_epochs`` have passed. The averaged model is ``unit.swa_model``.

    Args:
        warmup_steps_or_epochs: optimizer steps (or epochs) before the first update.
        step_or_epoch_update_freq: update every this many optimizer steps (or epochs).
        averaging_method: ``"ema"`` or ``"swa"`` (equal-weight running mean).
        ema_decay: EMA decay in [0, 1].
        use_lit: the LiT EMA warmup: ``decay = min(ema_decay, (1 + n) / (10 + n))``.
        use_buffers: average buffers (BatchNorm statistics) as well as parameters.
        swalr_params: an ``SWALR`` schedule that replaces the LR scheduler after warmup.

    Raises:
        ValueError: a bad frequency, warmup, decay or method.

    Example:
        >>> SWAParams(warmup_steps_or_epochs=1, step_or_epoch_update_freq=1).averaging_method
        'ema'
    """

    warmup_steps_or_epochs: int
    step_or_epoch_update_freq: int
    averaging_method: Literal["ema", "swa"] = "ema"
    ema_decay: float = 0.999
    use_lit: bool = False
    use_buffers: bool = True
    swalr_params: SWALRParams | None = None

    def __post_init__(self) -> None:
        if self.warmup_steps_or_epochs < 0:
            raise ValueError(
                f"warmup_steps_or_epochs={self.warmup_steps_or_epochs!r} is invalid: expected >= 0."
            )
        if self.step_or_epoch_update_freq < 1:
            raise ValueError(
                f"step_or_epoch_update_freq={self.step_or_epoch_update_freq!r} is invalid: "
                "expected >= 1. Use 1 to update after every step (or epoch)."
            )
        if self.averaging_method not in _AVG_METHODS:
            raise ValueError(
                f"averaging_method={self.averaging_method!r} is invalid: expected one of "
                f"{_AVG_METHODS}."
            )
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay={self.ema_decay!r} is invalid: expected 0 <= x <= 1.")
