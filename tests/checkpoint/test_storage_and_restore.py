"""Atomic commit, discovery, corruption, write failures, bad input, memory://, weights only."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
import torch
from fsspec.implementations.memory import MemoryFileSystem

from tests.checkpoint.units import FitUnit, batches, names
from torchkit import train
from torchkit.callbacks import DistributedCheckpointSaver
from torchkit.checkpoint import (
    COMMIT_MARKER,
    BestCheckpointConfig,
    CheckpointMismatchError,
    CheckpointName,
    CheckpointSaveError,
    CorruptCheckpointError,
    RestoreOptions,
    export_module_weights,
    get_best_checkpoint_path,
    get_latest_checkpoint_path,
    load_module_weights,
)


class FailingFileSystem(MemoryFileSystem):
    """A memory filesystem whose writes fail with OSError (a full disk) once armed."""

    protocol = "failingfs"
    armed = False

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if self.armed and "w" in mode:
            raise OSError(28, "No space left on device")
        return super()._open(path, mode, **kwargs)


fsspec.register_implementation("failingfs", FailingFileSystem, clobber=True)


def _trained(dirpath: str, steps: int = 4, **kw: Any) -> tuple[FitUnit, DistributedCheckpointSaver]:
    unit = FitUnit()
    saver = DistributedCheckpointSaver(dirpath, save_every_n_train_steps=2, **kw)
    train(unit, batches(4), max_steps=steps, callbacks=[saver])
    return unit, saver


def test_checkpoint_name_round_trip() -> None:
    n = CheckpointName(2, 40, "eval/loss", 0.25)
    assert str(n) == "epoch_2_train_step_40_eval_loss=0.25"
    assert CheckpointName.parse(str(n)) == CheckpointName(2, 40, "eval_loss", 0.25)
    assert CheckpointName.parse("epoch_x_train_step_1") is None


def test_memory_round_trip_and_urls_keep_protocol() -> None:
    root = f"memory://rt-{uuid.uuid4().hex}"
    unit, _ = _trained(root)
    latest = get_latest_checkpoint_path(root)
    assert latest == f"{root}/epoch_0_train_step_4"
    fresh = FitUnit(seed=5)
    DistributedCheckpointSaver.restore(latest, fresh)
    assert all(torch.equal(a, b) for a, b in zip(unit.net.parameters(), fresh.net.parameters()))
    assert fresh.opt.state_dict()["state"][0]["step"] == unit.opt.state_dict()["state"][0]["step"]
    assert fresh.sched.last_epoch == 4 and fresh.train_progress.num_steps_completed == 4


def test_uncommitted_checkpoint_is_skipped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _trained(str(tmp_path))
    (tmp_path / "epoch_0_train_step_4" / COMMIT_MARKER).unlink()
    with caplog.at_level(logging.WARNING):
        latest = get_latest_checkpoint_path(str(tmp_path))
    assert latest == str(tmp_path / "epoch_0_train_step_2")
    assert "epoch_0_train_step_4" in caplog.text and "no .torchkit_committed" in caplog.text
    with pytest.raises(CorruptCheckpointError, match="is not committed"):
        DistributedCheckpointSaver.restore(str(tmp_path / "epoch_0_train_step_4"), FitUnit())


def test_truncated_committed_checkpoint_names_the_path(tmp_path: Path) -> None:
    _trained(str(tmp_path))
    ckpt = tmp_path / "epoch_0_train_step_4"
    data = next(ckpt.glob("*.distcp"))
    data.write_bytes(data.read_bytes()[:20])
    with pytest.raises(CorruptCheckpointError, match=f"{ckpt}.*truncated") as info:
        DistributedCheckpointSaver.restore(str(ckpt), FitUnit())
    assert isinstance(info.value, Exception)


def test_write_failure_surfaces_and_keeps_older_checkpoints() -> None:
    root = f"failingfs://ff-{uuid.uuid4().hex}"
    unit = FitUnit()
    saver = DistributedCheckpointSaver(root, save_every_n_train_steps=2)

    def arm(state: Any, u: Any) -> None:
        FailingFileSystem.armed = u.train_progress.num_steps_completed >= 3

    from torchkit.callbacks import Lambda

    try:
        with pytest.raises(CheckpointSaveError, match="No space left on device"):
            train(unit, batches(4), max_steps=8, callbacks=[Lambda(on_train_step_end=arm), saver])
    finally:
        FailingFileSystem.armed = False
    assert unit.train_progress.num_steps_completed == 4  # failed at the step-4 save
    assert names(saver.retained_checkpoints) == ["epoch_0_train_step_2"]
    latest = get_latest_checkpoint_path(root)
    assert latest is not None and latest.endswith("epoch_0_train_step_2")
    DistributedCheckpointSaver.restore(latest, FitUnit(seed=3))  # still loadable


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "epoch_0_train_step_1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DistributedCheckpointSaver.restore(missing, FitUnit())
    assert not DistributedCheckpointSaver.restore_from_latest(str(tmp_path / "nope"), FitUnit())
    assert not (tmp_path / "nope").exists()


def test_checkpoint_of_another_model_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    _trained(str(tmp_path))
    other = FitUnit()
    other.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))
    before = [p.clone() for p in other.net.parameters()]
    keys = r"missing keys \['1.bias', '1.weight'\], unexpected keys \['2.bias', '2.weight'\]"
    with pytest.raises(CheckpointMismatchError, match=keys):
        DistributedCheckpointSaver.restore(str(tmp_path / "epoch_0_train_step_4"), other)
    assert all(torch.equal(a, b) for a, b in zip(before, other.net.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"save_every_n_train_steps": 0}, "save_every_n_train_steps=0 is invalid"),
        ({"save_every_n_epochs": -1}, "save_every_n_epochs=-1 is invalid"),
        ({"save_every_n_eval_epochs": 1.5}, "save_every_n_eval_epochs=1.5 is invalid"),
        ({"keep_last_n_checkpoints": 0}, "keep_last_n_checkpoints=0 is invalid"),
    ],
)
def test_invalid_intervals_fail_before_writing(
    tmp_path: Path, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        DistributedCheckpointSaver(str(tmp_path / "ck"), **kwargs)
    assert not (tmp_path / "ck").exists()


def test_invalid_best_config_and_dirpath() -> None:
    with pytest.raises(ValueError, match="mode='best' is invalid"):
        BestCheckpointConfig("eval/loss", mode="best")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dirpath=3 is invalid"):
        DistributedCheckpointSaver(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode='up' is invalid"):
        get_best_checkpoint_path("memory://x", "eval/loss", "up")


def test_restore_options_skip_optimizer_and_non_strict(tmp_path: Path) -> None:
    unit, _ = _trained(str(tmp_path))
    fresh = FitUnit(seed=9)
    DistributedCheckpointSaver.restore(
        str(tmp_path / "epoch_0_train_step_4"), fresh,
        restore_options=RestoreOptions(restore_optimizers=False, restore_train_progress=False),
    )  # fmt: skip
    assert torch.equal(fresh.net[0].weight, unit.net[0].weight)
    assert not fresh.opt.state and fresh.train_progress.num_steps_completed == 0


def test_weights_only_from_checkpoint_and_plain_file(tmp_path: Path) -> None:
    unit, _ = _trained(str(tmp_path))
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    load_module_weights(net, str(tmp_path / "epoch_0_train_step_4"), module_name="net")
    assert torch.equal(net[2].weight, unit.net[2].weight)
    export_module_weights(unit.net, str(tmp_path / "final.pt"))
    sd = torch.load(tmp_path / "final.pt", weights_only=True)
    assert sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    bigger = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1), torch.nn.Linear(1, 1)
    )
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \['3.bias', '3.weight'\]"):
        load_module_weights(bigger, str(tmp_path / "final.pt"))
    load_module_weights(bigger, str(tmp_path / "final.pt"), strict=False)
    assert torch.equal(bigger[0].weight, unit.net[0].weight)


class _OverridingUnit(FitUnit):
    """Adds a module kept in a plain list and hides the LR scheduler, through tracked_*()."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.extra = [torch.nn.Linear(2, 2)]  # a list: not tracked by attribute assignment

    def tracked_modules(self) -> dict[str, torch.nn.Module]:
        return {**super().tracked_modules(), "extra": self.extra[0]}

    def tracked_lr_schedulers(self) -> dict[str, Any]:
        return {}


def test_tracked_overrides_decide_app_state_and_the_checkpoint(tmp_path: Path) -> None:
    unit = _OverridingUnit()
    assert sorted(unit.app_state()) == ["eval_progress", "extra", "net", "opt", "train_progress"]
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_train_steps=2)
    train(unit, batches(4), max_steps=2, callbacks=[saver])
    fresh = _OverridingUnit(seed=7)
    DistributedCheckpointSaver.restore(str(tmp_path / "epoch_0_train_step_2"), fresh)
    assert torch.equal(fresh.extra[0].weight, unit.extra[0].weight)  # the added module
    assert fresh.sched.last_epoch == 0  # the hidden scheduler was neither saved nor restored
    assert fresh.train_progress.num_steps_completed == 2


class _MetricUnit(FitUnit):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        import torchmetrics

        self.seen = torchmetrics.SumMetric()

    def train_step(self, state: Any, data: Any) -> torch.Tensor:
        self.seen.update(torch.tensor(1.0))
        return super().train_step(state, data)


@pytest.mark.parametrize("restore_metrics", [True, False])
def test_restore_metrics_option(tmp_path: Path, restore_metrics: bool) -> None:
    saver = DistributedCheckpointSaver(str(tmp_path), save_every_n_train_steps=2)
    train(_MetricUnit(), batches(4), max_steps=2, callbacks=[saver])
    fresh = _MetricUnit(seed=3)
    opts = RestoreOptions(restore_metrics=restore_metrics)
    DistributedCheckpointSaver.restore(
        str(tmp_path / "epoch_0_train_step_2"), fresh, restore_options=opts
    )
    assert float(fresh.seen.compute()) == (2.0 if restore_metrics else 0.0)


def test_restore_options_take_tnt_positional_order() -> None:
    opts = RestoreOptions(True, False, True, True, False)  # modules, train, eval, predict, optim
    assert (opts.restore_train_progress, opts.restore_optimizers) == (False, False)
    with pytest.raises(TypeError):
        RestoreOptions(*([True] * 9))  # torchkit's own fields are keyword-only
