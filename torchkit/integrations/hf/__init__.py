"""Hugging Face transformers: ``HFAutoUnit``, ``HFAutoPredictUnit`` and the ``HFExport`` callback.

Needs the ``hf`` extra (``pip install 'torchkit[hf]'``); ``import torchkit`` never imports it.
"""

from __future__ import annotations

try:
    import transformers  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "torchkit.integrations.hf needs Hugging Face transformers (>= 4.46), which is not "
        "installed. Install the extra: pip install 'torchkit[hf]'."
    ) from exc

from torchkit.integrations.hf.hf_auto_predict_unit import HFAutoPredictUnit
from torchkit.integrations.hf.hf_auto_unit import HFAutoUnit
from torchkit.integrations.hf.hf_export import HFExport

__all__ = ["HFAutoPredictUnit", "HFAutoUnit", "HFExport"]
