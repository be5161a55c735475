"""SystemResourcesMonitor logs real host figures (RSS > 0)."""

from __future__ import annotations

import pytest

from tests.callbacks._units import ClassifierUnit, loader
from torchkit import train
from torchkit.callbacks import SystemResourcesMonitor
from torchkit.loggers import InMemoryLogger


def test_logs_rss_cpu_vm_and_swap_every_n_steps() -> None:
    lg = InMemoryLogger()
    mon = SystemResourcesMonitor(lg, logging_interval="step", every_n_steps=2)
    train(ClassifierUnit(), loader(16, 4), max_epochs=1, callbacks=[mon])
    assert sorted(lg.log_buffer) == [2, 4]
    row = lg.log_buffer[4]
    rss = [v for k, v in row.items() if "rss" in k]
    assert rss and rss[0] > 0
    assert 0.0 < row["system/vm_percent"] <= 100.0
    assert row["system/cpu_percent"] >= 0.0
    assert 0.0 <= row["system/swap_percent"] <= 100.0


def test_epoch_interval() -> None:
    lg = InMemoryLogger()
    train(ClassifierUnit(), loader(8, 4), max_epochs=2, callbacks=[SystemResourcesMonitor(lg)])
    assert sorted(lg.log_buffer) == [2, 4]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"every_n_steps=-1 is invalid"):
        SystemResourcesMonitor(InMemoryLogger(), "step", every_n_steps=-1)
    with pytest.raises(ValueError, match=r"logging_interval='hour' is invalid"):
        SystemResourcesMonitor(InMemoryLogger(), "hour")  # type: ignore[arg-type]


def test_step_interval_logs_every_step_by_default_as_tnt() -> None:
    lg = InMemoryLogger()
    mon = SystemResourcesMonitor(lg, logging_interval="step")
    train(ClassifierUnit(), loader(16, 4), max_epochs=1, callbacks=[mon])
    assert sorted(lg.log_buffer) == [1, 2, 3, 4]


def test_every_n_steps_with_the_epoch_interval_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="torchkit.callbacks.system_resources_monitor"):
        SystemResourcesMonitor(InMemoryLogger(), every_n_steps=10)
    assert "every_n_steps=10 has no effect with logging_interval='epoch'" in caplog.text
