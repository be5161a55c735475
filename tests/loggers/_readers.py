"""Read logs back with the standard library, from any fsspec URL."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from torchkit.utils.fs import url_to_fs


def read_csv(url: str) -> list[dict[str, str]]:
    with fsspec.open(url, "r") as f:
        return list(csv.DictReader(f))


def read_jsonl(url: str) -> list[dict[str, Any]]:
    with fsspec.open(url, "r") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_text(url: str) -> str:
    with fsspec.open(url, "r") as f:
        return str(f.read())


def write_text(url: str, text: str) -> None:
    fs, inner = url_to_fs(url)
    fs.makedirs(fs._parent(inner), exist_ok=True)
    with fs.open(inner, "w") as f:
        f.write(text)


def fresh_url(where: str, tmp_path: Path, name: str) -> Iterator[str]:
    """For a fixture: a file location on disk (``"local"``) or in fsspec's process-global
    memory store (``"memory"``, removed afterwards)."""
    if where == "local":
        yield str(tmp_path / "d" / name)
        return
    url = f"memory://{uuid.uuid4().hex}/{name}"
    yield url
    fs, inner = url_to_fs(url)
    if fs.exists(fs._parent(inner)):
        fs.rm(fs._parent(inner), recursive=True)
