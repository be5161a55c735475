"""Version checks (TNT's ``torchtnt.utils.version``)."""

from __future__ import annotations

import torch


def is_torch_version_geq(version: str) -> bool:
    """True when the running torch is at least ``version`` (PEP 440 ordering).

    Compares through ``torch.__version__`` (a ``TorchVersion``), so no extra dependency is
    needed; local tags such as ``+cpu`` do not change the result for the release part.

    Args:
        version: a version string such as ``"2.4.0"``.

    Raises:
        TypeError: ``version`` is not a string.

    Example:
        >>> is_torch_version_geq("2.4.0"), is_torch_version_geq("99.0")
        (True, False)
    """
    if not isinstance(version, str):
        raise TypeError(
            f"version={version!r} is invalid: expected a version string. Pass e.g. '2.4.0'."
        )
    return bool(torch.__version__ >= version)


__all__ = ["is_torch_version_geq"]
