"""``torchkit --help``: import time over ``import torch``, and what the help lists.

    python benchmarks/cli_import.py            # 5 rounds, median
    python benchmarks/cli_import.py --quick    # 1 round

Bar (issue 14): under 1 s over ``import torch``; the help lists the subcommands, no classes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wall(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, out.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else 5
    help_code = (
        "import sys; from torchkit.cli import main; sys.argv = ['torchkit', '--help']; main()"
    )
    torch_s, cli_s, text = [], [], ""
    for _ in range(rounds):  # interleaved, so machine load hits both alike
        torch_s.append(_wall("import torch")[0])
        elapsed, text = _wall(help_code)
        cli_s.append(elapsed)
    over = statistics.median(cli_s) - statistics.median(torch_s)
    lines = [ln for ln in text.splitlines() if ln.startswith("  ")]
    print(f"import torch            median {statistics.median(torch_s):.3f} s")
    print(f"torchkit --help         median {statistics.median(cli_s):.3f} s")
    print(f"over import torch       {over:.3f} s (bar: < 1 s)")
    print(f"help lists {len(lines)} entries: {', '.join(ln.split()[0] for ln in lines)}")


if __name__ == "__main__":
    main()
