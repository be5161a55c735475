"""The ``callbacks:`` and ``loggers:`` lists: short names, path defaults, shared loggers."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonargparse import ArgumentParser

from torchkit.cli._errors import CLIError, from_parser_error
from torchkit.cli._parser import instantiate
from torchkit.utils.fs import join_url

__all__ = ["Component", "build_component", "check_components", "resolve_class"]

_SHARED_LOGGERS: Any = object()  # stands for the loggers list until it is built
_LOG_FILES = {
    "CSVLogger": "metrics.csv",
    "JSONLogger": "metrics.jsonl",
    "TensorBoardLogger": "tensorboard",
}


@dataclass
class Component:
    """A validated list entry: its class, parsed arguments and the CLI-filled ones."""

    key: str
    cls: type
    parser: ArgumentParser
    parsed: Any
    filled: dict[str, Any] = field(default_factory=dict)  # param -> value (or "loggers")


def resolve_class(key: str, class_path: Any, package: str) -> type:
    """Import ``class_path``; a bare name is looked up in ``package`` (``torchkit.callbacks``).

    Raises:
        CLIError: the class cannot be imported.
    """
    if not isinstance(class_path, str) or not class_path:
        raise CLIError(
            f"{key}.class_path",
            class_path,
            "expected a class name or a dotted import path",
            "Write e.g. class_path: TQDMProgressBar or class_path: my_pkg.MyCallback",
        )
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name or package)
        cls = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        known = importlib.import_module(package).__all__
        raise CLIError(
            f"{key}.class_path",
            class_path,
            f"expected an importable class ({type(exc).__name__}: {exc})",
            f"Use a dotted path your Python can import, or one of {package}'s names: "
            + ", ".join(known),
        ) from None
    if not inspect.isclass(cls):
        raise CLIError(f"{key}.class_path", class_path, "expected a class", "Name a class")
    return cls


def check_components(
    raw: list[Any] | None,
    kind: str,
    *,
    log_dir: str | None,
    ckpt_dir: str | None,
    has_loggers: bool,
) -> list[Component]:
    """Validate each entry of the ``kind`` list (``callbacks``/``loggers``), building nothing.

    Raises:
        CLIError: a bad class_path, a wrong kind of class, or bad init_args.
    """
    package = "torchkit.callbacks" if kind == "callbacks" else "torchkit.loggers"
    out = []
    for i, entry in enumerate(raw or []):
        key = f"{kind}[{i}]"
        spec = {"class_path": entry} if isinstance(entry, str) else dict(entry)
        unknown = set(spec) - {"class_path", "init_args"}
        if unknown or "class_path" not in spec:
            raise CLIError(
                key,
                entry,
                "expected {class_path: ..., init_args: {...}}",
                "Give each entry a class_path and optional init_args",
            )
        cls = resolve_class(key, spec["class_path"], package)
        _check_kind(key, cls, kind, spec["class_path"])
        init_args = spec.get("init_args") or {}
        if not isinstance(init_args, Mapping):
            raise CLIError(
                f"{key}.init_args",
                init_args,
                "expected a mapping",
                "Write init_args: {name: value}",
            )
        filled = _defaults(cls, set(init_args), kind, log_dir, ckpt_dir, has_loggers)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(
            cls, "init_args", instantiate=False, skip=set(filled), fail_untyped=False
        )
        try:
            parsed = parser.parse_object({"init_args": dict(init_args)})
        except Exception as exc:  # jsonargparse raises ArgumentError / TypeError subclasses
            names = [p for p in inspect.signature(cls).parameters if p != "self"]
            raise from_parser_error(str(exc), names, prefix=key) from None
        out.append(Component(key, cls, parser, parsed, filled))
    return out


def _check_kind(key: str, cls: type, kind: str, class_path: str) -> None:
    if kind == "callbacks":
        from torchkit.callbacks import Callback

        if not issubclass(cls, Callback):
            raise CLIError(
                f"{key}.class_path",
                class_path,
                "expected a torchkit Callback subclass",
                "List loggers under loggers:, callbacks under callbacks:",
            )
    elif not all(callable(getattr(cls, m, None)) for m in ("log", "log_dict", "close")):
        raise CLIError(
            f"{key}.class_path",
            class_path,
            "expected a MetricLogger (log, log_dict, close)",
            "Name a torchkit.loggers class or a compatible one",
        )


def _defaults(
    cls: type,
    given: set[str],
    kind: str,
    log_dir: str | None,
    ckpt_dir: str | None,
    has_loggers: bool,
) -> dict[str, Any]:
    """The arguments the CLI fills: ``dirpath``/``path`` under run_dir, shared ``loggers``."""
    params = inspect.signature(cls).parameters
    filled: dict[str, Any] = {}
    if "dirpath" in params and "dirpath" not in given and ckpt_dir is not None:
        filled["dirpath"] = ckpt_dir
    if kind == "loggers" and "path" in params and "path" not in given and log_dir is not None:
        default = _LOG_FILES.get(cls.__name__, _snake(cls.__name__.removesuffix("Logger")))
        filled["path"] = join_url(log_dir, default)
    for name in ("loggers", "logger"):
        if kind == "callbacks" and name in params and name not in given and has_loggers:
            filled[name] = _SHARED_LOGGERS
    return filled


def build_component(component: Component, shared_loggers: list[Any]) -> Any:
    """Build the entry's object: its parsed arguments plus the CLI-filled ones."""
    built = instantiate(component.parser, component.parsed)
    init_args = getattr(built, "init_args", None)
    kwargs = dict(vars(init_args)) if init_args is not None else {}
    for name, value in component.filled.items():
        kwargs[name] = shared_loggers if value is _SHARED_LOGGERS else value
    return component.cls(**kwargs)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "log"
