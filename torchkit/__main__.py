"""``python -m torchkit``: the ``torchkit`` command line (needs ``torchkit[cli]``)."""

from __future__ import annotations

from torchkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
