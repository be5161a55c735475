"""examples/ddp_torchrun.py runs under torchrun with 2 CPU processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from torchkit.utils import get_free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_torchrun.py"


@pytest.mark.distributed
@pytest.mark.slow
def test_ddp_torchrun_example() -> None:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        f"--master_port={get_free_port()}", str(EXAMPLE), "--epochs=1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sums = re.findall(r"rank=(\d) steps=(\d+) loss=\S+ checksum=(-?[0-9.]+)", proc.stdout)
    assert sorted(r for r, _, _ in sums) == ["0", "1"]
    assert {s for _, s, _ in sums} == {"4"}  # 8 batches per rank, k=2
    assert len({c for _, _, c in sums}) == 1  # identical weights on both ranks
