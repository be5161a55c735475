"""Read logs back with the standard library, from any fsspec URL."""

from __future__ import annotations

import csv
import json
from typing import Any

import fsspec


def read_csv(url: str) -> list[dict[str, str]]:
    with fsspec.open(url, "r") as f:
        return list(csv.DictReader(f))


def read_jsonl(url: str) -> list[dict[str, Any]]:
    with fsspec.open(url, "r") as f:
        return [json.loads(line) for line in f if line.strip()]
