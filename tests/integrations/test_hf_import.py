"""``torchkit.integrations.hf`` is optional: never imported by torchkit, and clear without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# transformers is made unimportable (as if not installed) before torchkit is imported
_PROBE = """
import json, sys
sys.modules["transformers"] = None
import torchkit, torchkit.integrations
result = {"imported": sorted(m for m in sys.modules if m.startswith("torchkit.integrations"))}
try:
    import torchkit.integrations.hf
except ImportError as exc:
    result["error"] = str(exc)
print(json.dumps(result))
"""


def test_without_transformers_the_hf_package_names_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
        timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["imported"] == ["torchkit.integrations"]  # torchkit itself imports none
    assert "pip install 'torchkit[hf]'" in result["error"]
