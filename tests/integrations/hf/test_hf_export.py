"""HFExport: ``from_pretrained`` reproduces the trained model; a killed export leaves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.integrations.hf.tiny import lm_batch, tiny_gpt2, tiny_tokenizer
from torchkit import train
from torchkit.integrations.hf import HFAutoUnit, HFExport

ROOT = Path(__file__).resolve().parents[3]


def trained_unit(epochs: int = 1, callbacks: list[Any] | None = None) -> HFAutoUnit:
    unit = HFAutoUnit(
        module=tiny_gpt2(), device="cpu", optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2)
    )
    train(unit, [lm_batch([10, 6]), lm_batch([8, 8])], max_epochs=epochs, callbacks=callbacks)
    return unit


def logits(model: torch.nn.Module) -> torch.Tensor:
    batch = lm_batch([10, 7], seed=5)
    del batch["labels"]
    with torch.no_grad():
        return model.eval()(**batch).logits


def test_from_pretrained_reproduces_the_trained_logits_exactly(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "export"
    unit = trained_unit(callbacks=[HFExport(str(out), tokenizer=tiny_tokenizer())])
    loaded = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(logits(loaded), logits(unit.module))
    assert AutoTokenizer.from_pretrained(out).convert_tokens_to_ids("w7") == 7
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary folder left


def test_every_n_epochs_replaces_the_export_with_the_latest_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import GPT2LMHeadModel

    from torchkit.integrations.hf import hf_export

    out = tmp_path / "export"
    seen: list[torch.Tensor] = []
    write = hf_export.write_pretrained

    def write_and_load(*args: Any) -> None:
        write(*args)
        seen.append(logits(GPT2LMHeadModel.from_pretrained(out)))

    monkeypatch.setattr(hf_export, "write_pretrained", write_and_load)
    unit = trained_unit(epochs=2, callbacks=[HFExport(str(out), every_n_epochs=1)])
    assert len(seen) == 2  # after epochs 1 and 2; train end has the same weights: skipped
    assert not torch.equal(seen[0], seen[1])
    assert torch.equal(seen[1], logits(unit.module))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


# The child trains, exports once (complete), then trains on and is SIGKILLed half-way
# through writing the weights of the second export.
_KILLED_EXPORT = """
import os, signal, sys
import safetensors.torch
import torch
import transformers.modeling_utils as mu
from tests.integrations.hf.tiny import lm_batch, tiny_gpt2
from torchkit import train
from torchkit.integrations.hf import HFAutoUnit, HFExport

out = sys.argv[1]

def half_then_die(tensors, filename, metadata=None):
    data = safetensors.torch.save(tensors, metadata=metadata)
    with open(filename, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

unit = HFAutoUnit(module=tiny_gpt2(), device="cpu",
                  optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
export = HFExport(out, every_n_epochs=1)
train(unit, [lm_batch([10, 6])], max_epochs=1, callbacks=[export])
torch.save(unit.module.state_dict(), out + ".first.pt")
mu.safe_save_file = half_then_die
train(unit, [lm_batch([10, 6])], max_epochs=2, callbacks=[export])
"""


@pytest.mark.slow
def test_a_kill_during_export_leaves_no_folder_from_pretrained_accepts(tmp_path: Path) -> None:
    from transformers import GPT2LMHeadModel

    out = tmp_path / "export"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_EXPORT), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-2000:]
    leftovers = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "export"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".export.tmp-")
    assert (leftovers[0] / "config.json").exists()  # killed in the middle of the weights
    with pytest.raises(Exception):  # noqa: B017 - whatever from_pretrained raises for it
        GPT2LMHeadModel.from_pretrained(leftovers[0])
    # dirpath still holds the first, complete export
    expected = tiny_gpt2()
    expected.load_state_dict(torch.load(tmp_path / "export.first.pt"))
    assert torch.equal(logits(GPT2LMHeadModel.from_pretrained(out)), logits(expected))
    # the next export clears the leftover
    trained_unit(callbacks=[HFExport(str(out))])
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["export"]


def test_a_failed_write_keeps_the_previous_export_and_leaves_no_staging_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.modeling_utils as mu
    from transformers import GPT2LMHeadModel

    out = tmp_path / "export"
    unit = trained_unit(callbacks=[HFExport(str(out))])
    before = logits(unit.module)

    def disk_full(tensors: Any, filename: str, metadata: Any = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mu, "safe_save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trained_unit(callbacks=[HFExport(str(out))])
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
    assert torch.equal(logits(GPT2LMHeadModel.from_pretrained(out)), before)


def test_an_export_without_a_pretrained_model_fails_before_training(tmp_path: Path) -> None:
    from torchkit.testing import DummyTrainUnit, generate_random_dataloader

    unit = DummyTrainUnit(2)
    with pytest.raises(ValueError, match=r"module=.* instance is invalid: expected a transformers"):
        train(unit, generate_random_dataloader(4, 2, 2), max_epochs=1,
              callbacks=[HFExport(str(tmp_path / "x"))])  # fmt: skip
    assert unit.train_progress.num_steps_completed == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dirpath": ""}, ValueError, r"dirpath='' is invalid"),
        ({"every_n_epochs": 0}, ValueError, r"every_n_epochs=0 is invalid"),
        ({"on_train_end": False}, ValueError, r"on_train_end=False is invalid without every_n"),
        ({"tokenizer": object()}, TypeError, r"tokenizer=object instance is invalid"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HFExport(**{"dirpath": "out", **kwargs})


def test_an_fsspec_url_is_written_through_a_staging_folder() -> None:
    import fsspec

    unit = trained_unit(callbacks=[HFExport("memory://hf_export/model")])
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/hf_export/model", detail=False))
    assert "config.json" in names and "model.safetensors" in names
    assert [p.rsplit("/", 1)[-1] for p in fs.ls("/hf_export", detail=False)] == ["model"]
    assert unit.num_optimizer_steps == 2
    fs.rm("/hf_export", recursive=True)
