"""What the HF units share: argument checks, forward argument names, label shifting, token sums."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Literal

import torch

LossMode = Literal["model", "token_sum"]
LOSS_MODES: tuple[str, ...] = ("model", "token_sum")
IGNORE_INDEX = -100
"""Label value that the losses and counts leave out (the transformers convention)."""

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def check_pretrained(module: Any) -> None:
    """Refuse anything that is not a transformers ``PreTrainedModel``.

    Raises:
        ValueError: ``module`` is not a ``PreTrainedModel``.
    """
    from transformers import PreTrainedModel

    if not isinstance(module, PreTrainedModel):
        raise ValueError(
            f"module={type(module).__name__} instance is invalid: expected a transformers "
            "PreTrainedModel (e.g. AutoModelForCausalLM.from_config(config)). For another "
            "torch.nn.Module, subclass torchkit.AutoUnit and write compute_loss."
        )


def check_label_key(label_key: Any) -> None:
    """Raises: ValueError: ``label_key`` is not a non-empty string."""
    if not isinstance(label_key, str) or not label_key:
        raise ValueError(
            f"label_key={label_key!r} is invalid: expected the non-empty name of the batch key "
            "that holds the labels, e.g. 'labels'."
        )


def forward_arg_names(module: torch.nn.Module) -> frozenset[str]:
    """The names ``module.forward`` takes as named arguments (``**kwargs`` left out).

    Called once per unit, at construction: the step never inspects signatures.
    """
    params = inspect.signature(module.forward).parameters
    return frozenset(name for name, p in params.items() if p.kind in _NAMED)


def is_encoder_decoder(module: torch.nn.Module) -> bool:
    """True for encoder-decoder models (T5, BART...), whose labels feed the decoder."""
    return bool(getattr(getattr(module, "config", None), "is_encoder_decoder", False))


def is_causal_lm(module: torch.nn.Module) -> bool:
    """True for decoder-only language models, whose logit ``t`` predicts token ``t + 1``.

    A model counts as causal when its class is registered for ``AutoModelForCausalLM`` or
    its name ends like one (``...ForCausalLM``, ``...LMHeadModel``), so remote-code models
    such as MPT are found too.
    """
    if is_encoder_decoder(module):
        return False
    name = type(module).__name__
    if name.endswith(_CAUSAL_SUFFIXES):
        return True
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:  # pragma: no cover - a transformers layout we do not know
        return False
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        names = value if isinstance(value, (tuple, list)) else (value,)
        if name in names:
            return True
    return False


def resolve_shift(shift_labels: Any, module: torch.nn.Module) -> bool:
    """``shift_labels``, or whether ``module`` is a causal LM when it is None.

    Raises:
        ValueError: ``shift_labels`` is not a bool or None.
    """
    if shift_labels is None:
        return is_causal_lm(module)
    if not isinstance(shift_labels, bool):
        raise ValueError(
            f"shift_labels={shift_labels!r} is invalid: expected True, False or None. Leave it "
            "None to shift for causal language models only."
        )
    return shift_labels


def as_batch(data: Any) -> Mapping[str, Any]:
    """The batch as a mapping of model inputs.

    Raises:
        TypeError: the batch is not a mapping (dict, ``BatchEncoding``...).
    """
    if not isinstance(data, Mapping):
        raise TypeError(
            f"The batch is a {type(data).__name__}: expected a mapping of model inputs such as "
            "{'input_ids': ..., 'attention_mask': ..., 'labels': ...} (what a transformers "
            "tokenizer or data collator returns). Collate your batches into a dict."
        )
    return data


def align(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> tuple[Any, Any]:
    """Logits and labels that pair up position by position: for a causal LM logit ``t`` is
    paired with label ``t + 1``. Token-level outputs are flattened to ``[N, V]`` / ``[N]``."""
    if shift:
        logits, labels = logits[..., :-1, :], labels[..., 1:]
    if logits.ndim > 2:
        logits = logits.reshape(-1, logits.shape[-1])
        labels = labels.reshape(-1)
    return logits, labels


def token_sum(
    logits: torch.Tensor, labels: torch.Tensor, shift: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(summed cross-entropy, number of labels that are not -100)`` for one micro-batch.

    Both stay on the device (no host sync). The loss is computed in fp32.
    """
    flat_logits, flat_labels = align(logits, labels, shift)
    loss_sum = torch.nn.functional.cross_entropy(
        flat_logits.float(), flat_labels, ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss_sum, (flat_labels != IGNORE_INDEX).sum()


def missing_labels_error(label_key: str, batch: Mapping[str, Any], needed_for: str) -> ValueError:
    return ValueError(
        f"label_key={label_key!r} is invalid for this batch: it has no {label_key!r} key (its "
        f"keys: {sorted(batch)}), and {needed_for} needs the labels. Add the labels to the "
        "batch, or set label_key to the key that holds them."
    )


def no_model_loss_error(module: torch.nn.Module, label_key: str) -> ValueError:
    return ValueError(
        f"loss='model' is invalid here: {type(module).__name__} returned no loss, so it got no "
        f"labels (the batch key label_key={label_key!r} is missing, or the model has no "
        "'labels' argument). Put the labels in the batch under label_key, or pass "
        "loss='token_sum' to compute the loss from the logits."
    )


def output_field(outputs: Any, name: str) -> Any:
    """``outputs.<name>`` of a ``ModelOutput``.

    Raises:
        TypeError: the model returned a plain tuple (``return_dict=False`` in its config).
    """
    try:
        return getattr(outputs, name)
    except AttributeError:
        raise TypeError(
            f"The model returned a {type(outputs).__name__} without .{name}: expected a "
            "transformers ModelOutput. Set model.config.return_dict = True (the default)."
        ) from None
