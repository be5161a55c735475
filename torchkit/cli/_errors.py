"""Usage errors of the command line: one message format, exit code 2."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["NO_VALUE", "CLIError", "from_parser_error"]


class CLIError(Exception):
    """Bad input found before any side effect: printed to stderr, exit code 2.

    Args:
        key: the dotted key at fault (``unit.init_args.module``), or ``""``.
        value: the value received (shown with ``repr``), or ``NO_VALUE`` when there is none.
        rule: what was expected.
        fix: how to fix it.
    """

    def __init__(self, key: str, value: Any, rule: str, fix: str) -> None:
        self.key, self.value, self.rule, self.fix = key, value, rule, fix
        shown = "" if value is _NO_VALUE else f"={value!r}"
        where = f"{key}{shown} is invalid" if key else "the command is invalid"
        super().__init__(f"{where}: {rule.rstrip('.')}. {fix.rstrip('.')}.")


_NO_VALUE: Any = object()
NO_VALUE = _NO_VALUE

_KEY = re.compile(r'(?:Parser key|Key) "([^"]+)"')
_OPTION = re.compile(
    r"(?:Option|Key) '([^']+)' is not (?:accepted|expected)|[Uu]nrecognized arguments: (\S+)"
)
_REQUIRED = re.compile(r"the following arguments are required: (.+)")
_CLASS_PATH = re.compile(r"class_path '([^']+)'")
_GOT = re.compile(r"(?:Got value|Given value): (.+)")


def from_parser_error(message: str, known_keys: Iterable[str], prefix: str = "") -> CLIError:
    """A ``CLIError`` from a jsonargparse message: the innermost dotted key, the value, a fix."""
    keys = _KEY.findall(message)
    option = _OPTION.search(message)
    got = _GOT.findall(message)
    value = got[-1].strip() if got else _NO_VALUE
    # nested keys of a class_path's arguments live under its init_args
    sep = ".init_args." if "class_path" in message else "."
    key = sep.join(k for k in keys if k)
    if key.startswith("init_args."):  # a component parser's own key (callbacks[0].init_args...)
        key, sep = key, "."
    if option is not None:
        bad = (option.group(1) or option.group(2) or "").lstrip("-")
        classes = _CLASS_PATH.findall(message)
        names = _init_arg_names(classes[-1]) if classes else list(known_keys)
        close = difflib.get_close_matches(bad, names, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        nested = sep if key else ""
        full = ".".join(p for p in (prefix, key + nested + bad if key else bad) if p)
        return CLIError(
            full,
            _NO_VALUE,
            f"this key is not accepted here ({_last_line(message)})",
            f"{hint}See the accepted keys and their defaults with --print_config or --help",
        )
    required = _REQUIRED.search(message)
    if required is not None:
        names = [n.strip() for n in required.group(1).split(",")]
        full = ".".join(p for p in (prefix, key, names[0]) if p)
        return CLIError(
            full,
            _NO_VALUE,
            f"this key is required ({', '.join(names)} missing)",
            "Set it in the config file or with --key; paths (dirpath, path) "
            "default under run_dir when run_dir is set",
        )
    full = ".".join(p for p in (prefix, key) if p)
    detail = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return CLIError(
        full,
        value,
        f"expected a value of the right type and range ({detail})",
        "Correct the value in the config file or the --key override; --help lists each key's type",
    )


def _last_line(message: str) -> str:
    return message.strip().splitlines()[-1].strip() if message.strip() else message


def _init_arg_names(class_path: str) -> list[str]:
    """The constructor parameters of ``class_path`` (empty when it cannot be imported)."""
    import importlib
    import inspect

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return [p for p in inspect.signature(cls).parameters if p != "self"]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []
