"""``HFExport``: write the trained model with ``save_pretrained``, atomically, on rank 0."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from typing import Any

import torch

from torchkit.callbacks.callback import Callback
from torchkit.integrations.hf._common import check_pretrained
from torchkit.loop.state import State
from torchkit.utils.distributed import barrier, get_global_rank
from torchkit.utils.fs import protocol_of, url_to_fs

__all__ = ["HFExport"]

logger = logging.getLogger(__name__)


class HFExport(Callback):
    """Saves the unit's ``PreTrainedModel`` (and a tokenizer) so ``from_pretrained`` loads it.

    The full state dict is gathered on every rank (FSDP/FSDP2 shards included, so every rank
    must run the callback), then rank 0 writes ``save_pretrained`` into a hidden temporary
    folder next to ``dirpath`` and renames it to ``dirpath``: a reader sees the previous
    export or the new one, never a partial folder. A process killed during the write leaves
    only the hidden folder (``.<name>.tmp-*``), removed by the next export. Each export
    replaces the previous one. Local paths are renamed atomically; other fsspec URLs are
    written locally, uploaded under the temporary name, then moved (as atomic as the store).

    Args:
        dirpath: the folder to write (local path or fsspec URL).
        tokenizer: also saved (``tokenizer.save_pretrained``) when given.
        on_train_end: export when training ends.
        every_n_epochs: also export after every n-th completed train epoch.

    Raises:
        ValueError: an empty ``dirpath``, ``every_n_epochs`` < 1, nothing to export
            (``on_train_end=False`` without ``every_n_epochs``), or (at train start) a unit
            whose module is not a ``PreTrainedModel``.
        TypeError: a tokenizer without ``save_pretrained``.

    Example:
        >>> import tempfile, torch
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> from torchkit import train
        >>> from torchkit.integrations.hf import HFAutoUnit
        >>> config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16,
        ...                     bos_token_id=0, eos_token_id=0)
        >>> unit = HFAutoUnit(module=GPT2LMHeadModel(config), device="cpu")
        >>> ids = torch.randint(0, 50, (2, 8))
        >>> out = tempfile.mkdtemp() + "/model"
        >>> _ = train(unit, [{"input_ids": ids, "labels": ids}], max_epochs=1,
        ...           callbacks=[HFExport(out)])
        >>> loaded = GPT2LMHeadModel.from_pretrained(out)
        >>> bool(torch.equal(loaded.transformer.wte.weight, unit.module.transformer.wte.weight))
        True
    """

    def __init__(
        self,
        dirpath: str,
        *,
        tokenizer: Any = None,
        on_train_end: bool = True,
        every_n_epochs: int | None = None,
    ) -> None:
        if not isinstance(dirpath, (str, os.PathLike)) or not str(dirpath).strip("/"):
            raise ValueError(
                f"dirpath={dirpath!r} is invalid: expected the folder to export to, e.g. "
                "'runs/exp1/hf_model'."
            )
        if every_n_epochs is not None and (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise ValueError(
                f"every_n_epochs={every_n_epochs!r} is invalid: expected an int >= 1 or None. "
                "Use 1 to export after every epoch."
            )
        if not on_train_end and every_n_epochs is None:
            raise ValueError(
                "on_train_end=False is invalid without every_n_epochs: the callback would "
                "never export. Set on_train_end=True or every_n_epochs."
            )
        if tokenizer is not None and not callable(getattr(tokenizer, "save_pretrained", None)):
            raise TypeError(
                f"tokenizer={type(tokenizer).__name__} instance is invalid: expected an object "
                "with save_pretrained (a transformers tokenizer or processor)."
            )
        self.dirpath = str(dirpath).rstrip("/")
        self.tokenizer = tokenizer
        self.on_train_end_export = on_train_end
        self.every_n_epochs = every_n_epochs
        self._last_exported_step = -1

    def on_train_start(self, state: State, unit: Any) -> None:
        check_pretrained(_model_of(unit))  # fail before training, not after it

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        n = self.every_n_epochs
        if n is not None and unit.train_progress.num_epochs_completed % n == 0:
            self.export(unit)

    def on_train_end(self, state: State, unit: Any) -> None:
        if self.on_train_end_export:
            self.export(unit)

    def export(self, unit: Any) -> None:
        """Export ``unit``'s model now (every rank calls this; rank 0 writes)."""
        step = unit.train_progress.num_steps_completed
        if step == self._last_exported_step:
            return  # the weights did not change since the last export
        from torchkit.checkpoint.weights import _full_state_dict

        state_dict = _full_state_dict(unit.module)  # a collective under FSDP
        if get_global_rank() == 0:
            write_pretrained(_model_of(unit), state_dict, self.dirpath, self.tokenizer)
        self._last_exported_step = step
        barrier()  # every rank returns once the export is in place


def _model_of(unit: Any) -> Any:
    module = getattr(unit, "module", None)
    strategy = getattr(unit, "strategy", None)
    if module is not None and strategy is not None:
        return strategy.unwrap(module)
    return module


def write_pretrained(
    model: Any, state_dict: dict[str, torch.Tensor], dirpath: str, tokenizer: Any = None
) -> None:
    """``save_pretrained`` into a temporary folder, then rename it to ``dirpath``."""
    fs, inner = url_to_fs(dirpath)
    if protocol_of(fs) in ("file", "local"):
        _write_local(model, state_dict, os.path.abspath(inner), tokenizer)
        return
    parent, name = _split(inner)
    with tempfile.TemporaryDirectory() as local:
        _save(model, state_dict, local, tokenizer)
        staging = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
        for root, _, files in os.walk(local):
            for file in files:
                rel = os.path.relpath(os.path.join(root, file), local)
                fs.put_file(os.path.join(root, file), f"{staging}/{rel}")
        if fs.exists(inner):
            fs.rm(inner, recursive=True)
        fs.mv(staging, inner, recursive=True)


def _write_local(model: Any, state_dict: dict[str, torch.Tensor], target: str, tok: Any) -> None:
    parent, name = _split(target)
    os.makedirs(parent, exist_ok=True)
    for entry in os.listdir(parent):  # leftovers of an export that was killed
        if entry.startswith((f".{name}.tmp-", f".{name}.old-")):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    staging = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    try:
        _save(model, state_dict, staging, tok)
    except BaseException:  # a failed write (disk full...) leaves nothing behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.exists(target):
        # a directory cannot be renamed over a non-empty one: move the old one aside first
        old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, target)
    logger.info("Exported %s to %s", type(model).__name__, target)


def _save(model: Any, state_dict: dict[str, torch.Tensor], folder: str, tokenizer: Any) -> None:
    # the tokenizer first: a kill while the weights are written then leaves a folder whose
    # weights file is truncated, which from_pretrained refuses
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    model.save_pretrained(folder, state_dict=state_dict)


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or ".", name
