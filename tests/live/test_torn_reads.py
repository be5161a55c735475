"""No torn reads: readers never see weights from two publishes, nor from another step."""

from __future__ import annotations

import pytest
import torch

from tests.live.torn_reads import assert_no_torn_reads, run_torn_read_check
from torchkit.live import LiveModel


class InPlaceLiveModel(LiveModel):
    """Mutation control: publishes by writing the current copy in place, held or not."""

    def _free_slot(self) -> int | None:
        return self._current


def test_no_torn_reads_with_two_reader_threads() -> None:
    report = run_torn_read_check()
    assert_no_torn_reads(report)
    assert report.reads >= 50


def test_mutation_control_in_place_publisher_is_caught() -> None:
    report = run_torn_read_check(InPlaceLiveModel)
    with pytest.raises(AssertionError, match="reads"):
        assert_no_torn_reads(report)
    assert report.torn + report.wrong_step > 0


@pytest.mark.gpu
def test_no_torn_reads_cuda_reader_streams_with_delayed_copies() -> None:
    assert torch.cuda.is_available()
    report = run_torn_read_check(device="cuda", sleep_cycles=200_000)
    assert_no_torn_reads(report)
