"""HFAutoUnit on tiny config-built GPT-2 / BERT: loss modes, accumulation, metrics, inputs."""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

import pytest
import torch

from tests.integrations.hf.tiny import (
    VOCAB,
    concat,
    frozen_sgd,
    grads,
    lm_batch,
    max_grad_diff,
    reference_grads,
    tiny_bert,
    tiny_gpt2,
    tiny_t5,
)
from torchkit import evaluate, fit, test, train
from torchkit.callbacks import Lambda, MetricsLogger
from torchkit.integrations.hf import HFAutoUnit
from torchkit.loggers import InMemoryLogger

TORCHKIT_DIR = str(__import__("pathlib").Path(__import__("torchkit").__file__).parent)


def step_losses() -> tuple[list[torch.Tensor], Lambda]:
    seen: list[torch.Tensor] = []

    def keep(state: Any, unit: Any) -> None:
        seen.append(state.train_state.step_output[0])

    return seen, Lambda(on_train_step_end=keep)


def test_model_loss_equals_the_models_own_loss() -> None:
    model = tiny_gpt2()
    batch = lm_batch([10, 7, 4])
    expected = copy.deepcopy(model)(**batch).loss.detach()
    unit = HFAutoUnit(module=model, loss="model", device="cpu")
    assert unit.shift_labels is True  # detected: GPT-2 is a causal LM
    seen, cb = step_losses()
    train(unit, [batch], max_epochs=1, callbacks=[cb])
    assert torch.equal(seen[0], expected)


# two micro-batches with very different amounts of -100 padding: 10 + 3 and 6 + 2 tokens
MICRO = (lm_batch([10, 3], seed=1), lm_batch([6, 2], seed=2))


def accumulated_grads(loss: str) -> dict[str, torch.Tensor]:
    unit = HFAutoUnit(
        module=tiny_gpt2(), loss=loss, optimizer=frozen_sgd, gradient_accumulation_steps=2,
        zero_grad_at_train_step_start=True, device="cpu",
    )  # fmt: skip
    train(unit, list(MICRO), max_epochs=1)
    assert unit.num_optimizer_steps == 1
    return grads(unit.module)


def test_token_sum_accumulation_equals_one_step_on_the_concatenated_batch() -> None:
    expected = reference_grads(tiny_gpt2(), concat(*MICRO))
    assert max_grad_diff(accumulated_grads("token_sum"), expected) <= 1e-6


def test_model_loss_accumulation_differs_from_the_concatenated_batch() -> None:
    # why token_sum exists: the mean of per-micro-batch means overweights short batches
    expected = reference_grads(tiny_gpt2(), concat(*MICRO))
    assert max_grad_diff(accumulated_grads("model"), expected) > 1e-4


def test_token_sum_reports_the_per_token_mean_and_eval_loss_is_the_mean() -> None:
    batch = lm_batch([10, 3])
    expected = copy.deepcopy(tiny_gpt2())(**batch).loss.detach()
    unit = HFAutoUnit(module=tiny_gpt2(), loss="token_sum", optimizer=frozen_sgd, device="cpu")
    seen, cb = step_losses()
    train(unit, [batch], max_epochs=1, callbacks=[cb])
    torch.testing.assert_close(seen[0], expected, atol=1e-6, rtol=0)
    eval_seen: list[torch.Tensor] = []
    keep = Lambda(on_eval_step_end=lambda s, u: eval_seen.append(s.eval_state.step_output[0]))
    evaluate(unit, [batch], callbacks=[keep])
    torch.testing.assert_close(eval_seen[0], expected, atol=1e-6, rtol=0)


def test_encoder_decoder_token_sum_is_unshifted_and_gets_its_decoder_inputs() -> None:
    # T5 builds decoder_input_ids from the labels, and its logit t predicts label t
    batch = lm_batch([10, 4], seed=4)
    source = {"input_ids": lm_batch([10, 10], seed=5)["input_ids"], "labels": batch["labels"]}
    expected = reference_grads(tiny_t5(), source)
    unit = HFAutoUnit(module=tiny_t5(), loss="token_sum", optimizer=frozen_sgd,
                      zero_grad_at_train_step_start=True, device="cpu")  # fmt: skip
    assert unit.shift_labels is False
    train(unit, [source], max_epochs=1)
    assert max_grad_diff(grads(unit.module), expected) <= 1e-6


@pytest.mark.parametrize("loss", ["model", "token_sum"])
def test_train_and_eval_steps_read_nothing_on_the_host(loss: str, host_syncs: list[str]) -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), loss=loss, gradient_accumulation_steps=2, device="cpu")
    fit(unit, list(MICRO) * 2, [MICRO[0]], max_epochs=1)
    assert unit.num_optimizer_steps == 2
    assert host_syncs == []


def classification_data(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Class c draws its 8 tokens from its own band of 30 ids: separable by token id."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        labels = torch.randint(0, 3, (16,), generator=g)
        ids = 5 + 30 * labels[:, None] + torch.randint(0, 30, (16, 8), generator=g)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return out


def test_bert_classification_reaches_accuracy_through_torchmetrics() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    unit = HFAutoUnit(
        module=tiny_bert(), device="cpu", metrics={"accuracy": MulticlassAccuracy(num_classes=3)},
        optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3),
    )  # fmt: skip
    assert unit.shift_labels is False  # a classifier: no shift
    lg = InMemoryLogger()
    fit(unit, classification_data(20, seed=0), classification_data(4, seed=1), max_epochs=1,
        callbacks=[MetricsLogger(lg, every_n_steps=100)])  # fmt: skip
    assert unit.train_progress.num_steps_completed == 20
    accuracy = [row["eval/accuracy"] for row in lg.log_buffer.values() if "eval/accuracy" in row]
    assert accuracy and accuracy[-1] >= 0.9


def test_token_metrics_are_updated_on_shifted_labels() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    model = tiny_gpt2()
    batch = lm_batch([10, 5])
    logits = copy.deepcopy(model)(**batch).logits
    ref = MulticlassAccuracy(num_classes=VOCAB, ignore_index=-100, average="micro")
    ref.update(logits[:, :-1].reshape(-1, VOCAB), batch["labels"][:, 1:].reshape(-1))
    metric = MulticlassAccuracy(num_classes=VOCAB, ignore_index=-100, average="micro")
    unit = HFAutoUnit(module=model, metrics=metric, training=False, device="cpu")
    evaluate(unit, [batch])
    assert torch.equal(metric.compute(), ref.compute())


def test_the_test_phase_uses_a_copy_of_the_metrics_and_logs_test_values() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    model = tiny_gpt2()
    batch = lm_batch([10, 5])
    ref_model = copy.deepcopy(model).eval()
    with torch.no_grad():
        out = ref_model(**batch)
    ref = MulticlassAccuracy(num_classes=VOCAB, ignore_index=-100, average="micro")
    ref.update(out.logits[:, :-1].reshape(-1, VOCAB), batch["labels"][:, 1:].reshape(-1))
    metric = MulticlassAccuracy(num_classes=VOCAB, ignore_index=-100, average="micro")
    unit = HFAutoUnit(module=model, metrics=metric, training=False, device="cpu")
    lg = InMemoryLogger()
    test(unit, [batch], callbacks=[MetricsLogger(lg)])
    assert lg.log_buffer[1]["test/accuracy"] == pytest.approx(float(ref.compute()))
    assert lg.log_buffer[1]["test/loss"] == pytest.approx(float(out.loss), rel=1e-5)
    assert not metric.update_called  # the eval metrics are not the test metrics


def test_extra_batch_keys_are_dropped_without_inspecting_signatures_per_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), loss="token_sum", device="cpu")
    in_step, calls = [False], []
    original = inspect.signature

    def counting(*args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_code.co_filename
        if in_step[0] and caller.startswith(TORCHKIT_DIR):
            calls.append(caller)
        return original(*args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting)
    # the loop inspects the step method once per phase; a step itself must never inspect
    flag = Lambda(
        on_train_step_start=lambda s, u: in_step.__setitem__(0, True),
        on_train_step_end=lambda s, u: in_step.__setitem__(0, False),
    )
    batch = {**lm_batch([10, 6]), "idx": torch.arange(2), "source": ["a", "b"]}
    assert "idx" not in unit.model_inputs(batch) and "source" not in unit.model_inputs(batch)
    train(unit, [batch] * 3, max_epochs=1, callbacks=[flag])
    assert unit.num_optimizer_steps == 3
    assert calls == []


def test_label_key_names_the_batch_key_that_holds_the_labels() -> None:
    batch = lm_batch([10, 4])
    expected = copy.deepcopy(tiny_gpt2())(**batch).loss.detach()
    renamed = {"input_ids": batch["input_ids"], "target": batch["labels"]}
    renamed["attention_mask"] = batch["attention_mask"]
    unit = HFAutoUnit(module=tiny_gpt2(), label_key="target", device="cpu")
    assert unit.model_inputs(renamed)["labels"] is renamed["target"]
    seen, cb = step_losses()
    train(unit, [renamed], max_epochs=1, callbacks=[cb])
    assert torch.equal(seen[0], expected)


def test_lr_scheduler_factory_steps_per_optimizer_step() -> None:
    unit = HFAutoUnit(
        module=tiny_gpt2(), device="cpu",
        optimizer=lambda p: torch.optim.SGD(p, lr=1.0),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
    )  # fmt: skip
    train(unit, [lm_batch([10, 10])] * 3, max_epochs=1)
    assert unit.optimizer is not None
    assert unit.optimizer.param_groups[0]["lr"] == pytest.approx(0.125)


def test_default_optimizer_is_adamw_lr_5e_5() -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), device="cpu")
    assert isinstance(unit.optimizer, torch.optim.AdamW)
    assert unit.optimizer.param_groups[0]["lr"] == 5e-5


# ---- bad input -------------------------------------------------------------------------------


def test_a_module_that_is_not_a_pretrained_model_is_refused() -> None:
    with pytest.raises(ValueError, match=r"module=Linear instance is invalid: expected a "):
        HFAutoUnit(module=torch.nn.Linear(2, 2), device="cpu")


def test_an_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match=r"loss='mean' is invalid: expected one of"):
        HFAutoUnit(module=tiny_gpt2(), loss="mean", device="cpu")  # type: ignore[arg-type]


def test_token_sum_without_the_label_key_names_it() -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), loss="token_sum", device="cpu")
    batch = lm_batch([10, 4])
    del batch["labels"]
    with pytest.raises(ValueError, match=r"label_key='labels' is invalid for this batch: it has"):
        train(unit, [batch], max_epochs=1)


def test_model_loss_without_labels_says_how_to_fix() -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), device="cpu")
    batch = lm_batch([10, 4])
    del batch["labels"]
    with pytest.raises(ValueError, match=r"loss='model' is invalid here: GPT2LMHeadModel"):
        train(unit, [batch], max_epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"label_key": ""}, ValueError, r"label_key='' is invalid"),
        ({"shift_labels": "yes"}, ValueError, r"shift_labels='yes' is invalid"),
        ({"optimizer": 0.1}, TypeError, r"optimizer=0.1 is invalid: expected a callable"),
        ({"lr_scheduler": "linear"}, TypeError, r"lr_scheduler='linear' is invalid"),
        ({"metrics": ["acc"]}, TypeError, r"metrics=\['acc'\] is invalid"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        HFAutoUnit(module=tiny_gpt2(), device="cpu", **kwargs)


def test_a_batch_that_is_not_a_mapping_is_refused() -> None:
    unit = HFAutoUnit(module=tiny_gpt2(), device="cpu")
    ids = torch.randint(0, VOCAB, (2, 8))
    with pytest.raises(TypeError, match=r"The batch is a tuple: expected a mapping"):
        train(unit, [(ids, ids)], max_epochs=1)
