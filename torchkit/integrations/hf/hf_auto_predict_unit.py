"""``HFAutoPredictUnit``: logits, generated ids or decoded text from a transformers model."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from torchkit.integrations.hf._common import (
    as_batch,
    check_label_key,
    check_pretrained,
    forward_arg_names,
    output_field,
)
from torchkit.loop.state import State
from torchkit.strategies.params import TorchCompileParams
from torchkit.strategies.precision import Precision
from torchkit.strategies.strategy import Strategy
from torchkit.units.auto_predict_unit import AutoPredictUnit

__all__ = ["HFAutoPredictUnit"]

Batch = Mapping[str, Any]


class HFAutoPredictUnit(AutoPredictUnit[Batch]):
    """Predicts with a transformers ``PreTrainedModel`` from dict batches.

    Each step returns the logits of ``module(**inputs)``, or, with ``generate`` set, the ids
    of ``generate(**inputs, **generate_kwargs)`` (prompt included, ``[B, T + new]``), decoded
    to a list of strings with ``tokenizer.batch_decode(ids, skip_special_tokens=True)`` when
    a tokenizer is given. ``inputs`` are the batch keys ``forward`` takes (worked out once,
    here), without the labels. Under DDP, ``generate`` runs on the wrapped model
    (``self.module.module``); under FSDP1 inside ``summon_full_params(recurse=False)`` so a
    tied LM head is whole; FSDP2 works as is (each layer gathers its shard), but slowly.

    Args:
        module: the ``PreTrainedModel``.
        generate: False for logits; True or a dict of ``generate`` keyword arguments (e.g.
            ``{"max_new_tokens": 5, "do_sample": False}``) for generated ids.
        tokenizer: decodes the generated ids (anything with ``batch_decode``); needs
            ``generate``. Decoding reads the ids to the host at every step.
        label_key: the batch key holding labels, which is never passed to the model.
        device: see ``AutoPredictUnit``.
        strategy: see ``AutoPredictUnit``.
        precision: see ``AutoPredictUnit``.
        torch_compile_params: see ``AutoPredictUnit``.
        enable_prefetch: see ``AutoPredictUnit``.

    Raises:
        ValueError: ``module`` is not a ``PreTrainedModel``, a bad ``generate`` or
            ``label_key``, or a tokenizer without ``generate``.
        TypeError: a tokenizer without ``batch_decode``, or (at a step) a batch that is not
            a mapping.

    Example:
        >>> import torch
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> from torchkit import predict
        >>> from torchkit.callbacks import Lambda
        >>> config = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16,
        ...                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
        >>> unit = HFAutoPredictUnit(module=GPT2LMHeadModel(config), device="cpu",
        ...                          generate={"max_new_tokens": 3, "do_sample": False})
        >>> batch = {"input_ids": torch.randint(1, 50, (2, 4)), "idx": 7}
        >>> outs = []
        >>> keep = Lambda(on_predict_step_end=lambda state, unit: outs.append(
        ...     state.predict_state.step_output))
        >>> predict(unit, [batch], callbacks=[keep])
        >>> outs[0].shape  # the prompt and 3 new tokens
        torch.Size([2, 7])
    """

    def __init__(
        self,
        *,
        module: torch.nn.Module,
        generate: bool | Mapping[str, Any] = False,
        tokenizer: Any = None,
        label_key: str = "labels",
        device: torch.device | str | None = None,
        strategy: str | Strategy | None = None,
        precision: str | torch.dtype | Precision | None = None,
        torch_compile_params: TorchCompileParams | None = None,
        enable_prefetch: bool = True,
    ) -> None:
        check_pretrained(module)
        generate_kwargs = _generate_kwargs(generate)
        _check_tokenizer(tokenizer, generate_kwargs)
        check_label_key(label_key)
        names = forward_arg_names(module)  # once: never per step
        super().__init__(
            module=module,
            device=device,
            strategy=strategy,
            precision=precision,
            torch_compile_params=torch_compile_params,
            enable_prefetch=enable_prefetch,
        )
        self.generate_kwargs = generate_kwargs
        self.tokenizer = tokenizer
        self.label_key = label_key
        self._input_keys = names - {"labels", label_key}
        self._gather = _full_params_context(self.strategy)

    def predict_step(self, state: State, data: Batch) -> Any:
        batch = as_batch(data)
        inputs = {k: v for k, v in batch.items() if k in self._input_keys}
        with self.precision.autocast():
            if self.generate_kwargs is None:
                outputs = output_field(self.module(**inputs), "logits")
            else:
                outputs = self._generate(inputs)
        if self.tokenizer is not None:
            outputs = self.tokenizer.batch_decode(outputs, skip_special_tokens=True)
        self.on_predict_step_end(state, data, self.predict_progress.num_steps_completed, outputs)
        return outputs

    def _generate(self, inputs: dict[str, Any]) -> Any:
        # DDP's forward is not the model's generate: call it on the wrapped model
        model: Any = self.strategy.unwrap(self.module)
        with self._gather(self.module):
            return model.generate(**inputs, **(self.generate_kwargs or {}))


def _generate_kwargs(generate: Any) -> dict[str, Any] | None:
    if generate is False:
        return None
    if generate is True:
        return {}
    if isinstance(generate, Mapping) and all(isinstance(k, str) for k in generate):
        return dict(generate)
    raise ValueError(
        f"generate={generate!r} is invalid: expected False (logits), True or a dict of "
        "generate() keyword arguments, e.g. {'max_new_tokens': 20, 'do_sample': False}."
    )


def _check_tokenizer(tokenizer: Any, generate_kwargs: dict[str, Any] | None) -> None:
    if tokenizer is None:
        return
    if not callable(getattr(tokenizer, "batch_decode", None)):
        raise TypeError(
            f"tokenizer={type(tokenizer).__name__} instance is invalid: expected a tokenizer "
            "with batch_decode (a transformers PreTrainedTokenizer(Fast))."
        )
    if generate_kwargs is None:
        raise ValueError(
            "tokenizer is given but generate=False: the tokenizer decodes generated ids, and "
            "logits are not decoded. Pass generate=True (or a dict of generate kwargs), or "
            "drop the tokenizer."
        )


def _full_params_context(strategy: Strategy) -> Any:
    """``f(module) -> context`` that makes an FSDP1 root's own parameters whole."""
    from torchkit.strategies.fsdp import FSDPStrategy

    if not isinstance(strategy, FSDPStrategy):
        return lambda module: contextlib.nullcontext()
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    return lambda module: FSDP.summon_full_params(module, writeback=False, recurse=False)
