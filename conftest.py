"""Doctest collection: skip the optional integrations whose extra is not installed."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    [] if importlib.util.find_spec("transformers") else ["torchkit/integrations/hf/*"]
)
