"""The ``torchkit`` command line: config-file runs of fit/train/evaluate/test/predict.

Needs the ``cli`` extra (``pip install 'torchkit[cli]'``, which brings jsonargparse). This
package is never imported by ``import torchkit``; jsonargparse is imported only when ``main``
runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

MISSING_EXTRA = (
    "torchkit: the command line needs jsonargparse, which is not installed. "
    "Install it with: pip install 'torchkit[cli]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchkit <subcommand> [--config run.yaml ...] [--key value ...]``.

    Args:
        argv: the arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        0 when the run (or the requested help/print) finished.

    Raises:
        SystemExit: with code 2 for bad input (a usage error, an invalid config, a run
            directory that does not match) or a missing ``cli`` extra, and 0 after
            ``--help`` / ``--print_config``.

    Example:
        >>> main(["--help"])  # doctest: +ELLIPSIS
        usage: torchkit <subcommand> ...
          fit             train with periodic evaluation (torchkit.fit)
        ...
        0
    """
    try:
        import jsonargparse  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        raise SystemExit(2) from None
    from torchkit.cli._app import run

    return run(list(sys.argv[1:] if argv is None else argv))
