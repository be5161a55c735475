"""Argument checks and the inference procedure for ``LiveModel``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from torchkit.live._tensors import is_sharded, state_tensors, unwrap
from torchkit.utils.device import copy_data_to_device

InferenceProcedure = Callable[..., Any]


def check_module(module: Any) -> torch.nn.Module:
    if not isinstance(module, torch.nn.Module):
        raise ValueError(
            f"module={module!r} is invalid: expected a torch.nn.Module. Pass the model you "
            "train, e.g. LiveModel.from_module(net)."
        )
    source = unwrap(module)
    if is_sharded(source):
        raise ValueError(
            f"module={type(module).__name__} is invalid: expected a module whose parameters "
            "are not sharded yet (it has DTensor parameters). Build the LiveModel before "
            "FSDP2 wraps the module (before AutoUnit(strategy='fsdp2'))."
        )
    return source


def check_buffers(buffers: Any) -> None:
    if isinstance(buffers, bool) or not isinstance(buffers, int) or buffers < 2:
        raise ValueError(
            f"buffers={buffers!r} is invalid: expected an int >= 2 (one current copy and one "
            "to write into). Pass buffers=3 so a slow reader never makes a publish skip."
        )


def check_dtype(dtype: Any) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(
            f"dtype={dtype!r} is invalid: expected None or a floating-point torch.dtype. "
            "Pass e.g. dtype=torch.bfloat16."
        )


def device_of(module: torch.nn.Module) -> torch.device:
    for tensor in state_tensors(module):
        return tensor.device
    return torch.device("cpu")


def _move_and_call(device: torch.device, module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    return module(*copy_data_to_device(args, device), **copy_data_to_device(kwargs, device))


def resolve_procedure(
    procedure: InferenceProcedure | str | None, module: torch.nn.Module, device: torch.device
) -> InferenceProcedure:
    if procedure is None:
        return functools.partial(_move_and_call, device)
    if isinstance(procedure, str):
        method = getattr(type(module), procedure, None)
        if not callable(method):
            raise ValueError(
                f"inference_procedure={procedure!r} is invalid: expected the name of a method "
                f"of {type(module).__name__}. Pass an existing method name or a callable "
                "(module, *args, **kwargs)."
            )
        return method
    if not callable(procedure):
        raise TypeError(
            f"inference_procedure={procedure!r} is invalid: expected a callable "
            "(module, *args, **kwargs), a method name or None."
        )
    return procedure
