"""BatchPrefetcher's side-stream path (pin, copy, record every leaf, event, wait), run on a
CPU with stand-in streams, and its one-time dataloader advice."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, NamedTuple

import pytest
import torch

from tests.units._streams import RecordingStreams, Stream
from torchkit.units._prefetch import BatchPrefetcher, dataloader_advice
from torchkit.utils import copy_data_to_device

CPU = torch.device("cpu")


class Leaf:
    """A duck-typed batch leaf counting its moves and stream records."""

    def __init__(self, streams: RecordingStreams) -> None:
        self.streams = streams
        self.moves: list[tuple[torch.device, bool, bool]] = []
        self.recorded: list[Any] = []

    def to(self, device: torch.device, non_blocking: bool = False) -> Leaf:
        self.moves.append((device, non_blocking, self.streams.in_copy))
        return self

    def record_stream(self, stream: Any) -> None:
        self.recorded.append(stream)


@dataclasses.dataclass
class Meta:
    z: Any


class NT(NamedTuple):
    w: Any


def nested(streams: RecordingStreams) -> tuple[dict[str, Any], list[Leaf]]:
    leaves = [Leaf(streams) for _ in range(5)]
    x, a, b, z, w = leaves
    return {"x": x, "y": [a, (b,)], "meta": Meta(z), "nt": NT(w), "id": "not a leaf"}, leaves


def _prefetcher(streams: RecordingStreams, loader: Any = None) -> BatchPrefetcher:
    def move(state: Any, data: Any, non_blocking: bool) -> Any:
        return copy_data_to_device(data, CPU, non_blocking=non_blocking)

    return BatchPrefetcher(move, CPU, enabled=True, loader_of=lambda state: loader, streams=streams)


def test_every_nested_leaf_is_moved_and_recorded_exactly_once() -> None:
    streams = RecordingStreams()
    batches = [nested(streams) for _ in range(3)]
    prefetcher = _prefetcher(streams)
    it = iter([b for b, _ in batches])
    for k, (_, leaves) in enumerate(batches):
        out = prefetcher.fetch(None, it)
        assert out["meta"].z is leaves[3] and out["nt"].w is leaves[4] and out["id"] == "not a leaf"
        for leaf in leaves:
            # moved once, asynchronously, with the side stream current; recorded once on
            # the compute stream
            assert leaf.moves == [(CPU, True, True)]
            assert leaf.recorded == [streams.compute_stream]
        # one event per batch; the compute stream waited for this batch's before it was used
        assert streams.compute_stream.waited == streams.events[: k + 1]
    with pytest.raises(StopIteration):
        prefetcher.fetch(None, it)
    assert len(streams.events) == 3 and streams.pinned == 3


def test_copy_data_to_device_records_every_leaf_on_the_given_stream() -> None:
    streams = RecordingStreams()
    batch, leaves = nested(streams)
    stream = Stream()
    copy_data_to_device(batch, CPU, non_blocking=True, stream_to_record=stream)  # type: ignore[arg-type]
    assert all(leaf.moves == [(CPU, True, False)] for leaf in leaves)
    assert all(leaf.recorded == [stream] for leaf in leaves)


def test_a_moved_leaf_without_record_stream_is_a_clear_error() -> None:
    class Movable:
        def to(self, device: torch.device, non_blocking: bool = False) -> Movable:
            return self

    prefetcher = _prefetcher(RecordingStreams())
    with pytest.raises(TypeError, match=r"enable_prefetch=True is invalid for a batch holding a "
                       r"Movable: .* no \.record_stream\(stream\)"):  # fmt: skip
        prefetcher.fetch(None, iter([{"m": Movable()}]))


def test_loader_advice_and_pinning_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    data = torch.utils.data.TensorDataset(torch.arange(8.0).view(4, 2))
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=0, pin_memory=False)
    prefetcher = _prefetcher(RecordingStreams(pageable=True), loader)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # two epochs
            it = iter(loader)
            got = [prefetcher.fetch(None, it) for _ in range(2)]
            prefetcher.reset()
    assert [len(b[0]) for b in got] == [2, 2]
    messages = [r.message for r in caplog.records]
    assert len(messages) == 3, messages
    assert messages[0].startswith("DataLoader(num_workers=0)")
    assert messages[1].startswith("DataLoader(pin_memory=False) with enable_prefetch=True")
    assert "pinned on the training thread" in messages[2]


def test_a_good_loader_gets_no_advice() -> None:
    loader = torch.utils.data.DataLoader(range(4), num_workers=2, pin_memory=True)
    assert dataloader_advice(loader, prefetch=True) == []
    assert len(dataloader_advice(torch.utils.data.DataLoader(range(4)), prefetch=False)) == 1


def test_a_cpu_prefetcher_touches_no_streams_and_gives_no_advice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loader = torch.utils.data.DataLoader(range(4))
    prefetcher = BatchPrefetcher(None, CPU, enabled=True, loader_of=lambda s: loader)
    with caplog.at_level(logging.WARNING):
        it = iter(loader)
        assert [int(prefetcher.fetch(None, it)) for _ in range(4)] == [0, 1, 2, 3]
    assert prefetcher.is_last and caplog.records == []
