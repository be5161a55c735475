"""fsspec helpers."""

from __future__ import annotations

import pathlib

from torchkit.utils import get_filesystem
from torchkit.utils.fs import join_url, protocol_of, unstrip_protocol, url_to_fs


def test_memory_filesystem_keeps_its_protocol() -> None:
    fs, inner = url_to_fs("memory://torchkit-test/a")
    assert protocol_of(fs) == "memory"
    with fs.open(inner, "w") as f:
        f.write("x")
    url = unstrip_protocol(fs, inner)
    assert url.startswith("memory://")
    fs2, inner2 = url_to_fs(url)  # the URL leads back to the same file
    assert protocol_of(fs2) == "memory" and fs2.cat(inner2) == b"x"
    assert protocol_of(get_filesystem("memory://y")) == "memory"
    fs.rm(inner)


def test_local_paths(tmp_path: pathlib.Path) -> None:
    fs, inner = url_to_fs(str(tmp_path / "f.txt"))
    assert protocol_of(fs) in ("file", "local")
    fs.pipe(inner, b"data")
    assert (tmp_path / "f.txt").read_bytes() == b"data"
    assert unstrip_protocol(fs, inner) == inner  # local paths stay plain paths
    fs2, _ = url_to_fs(f"file://{tmp_path}")
    assert protocol_of(fs2) in ("file", "local")


def test_join_url() -> None:
    assert join_url("memory://root/", "/a/", "b") == "memory://root/a/b"
    assert join_url("/tmp/x", "y") == "/tmp/x/y"
