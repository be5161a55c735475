"""``TQDMProgressBar``: one tqdm bar per train/eval/predict epoch with loss and metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, TextIO

from torchkit.callbacks._logging_utils import check_interval
from torchkit.callbacks._metric_state import (
    get_metric_state,
    loss_mark,
    peek_train_loss,
    publish_eval,
    publish_test,
    publish_train,
)
from torchkit.callbacks.callback import Callback
from torchkit.loop.state import PhaseState, State
from torchkit.utils.distributed import get_global_rank


def epoch_total(phase_state: PhaseState, progress: Any) -> int | None:
    """Steps the current epoch will run in all, counting those already done (``None`` when
    nothing bounds it).

    A loader with ``state_dict`` (``StatefulDataLoader``) resumes where it stopped, so a
    mid-epoch resume runs ``len - done`` more steps; a plain loader starts over and runs
    ``len`` more.
    """
    done = progress.num_steps_completed_in_epoch
    total = math.inf
    try:
        n = len(phase_state.dataloader)  # type: ignore[arg-type]
    except (TypeError, NotImplementedError):
        n = None
    if n is not None:
        resumable = callable(getattr(phase_state.dataloader, "state_dict", None))
        total = n if resumable else done + n
    if phase_state.max_steps_per_epoch is not None:
        total = min(total, phase_state.max_steps_per_epoch)
    if phase_state.max_steps is not None:
        total = min(total, done + phase_state.max_steps - progress.num_steps_completed)
    return None if total == math.inf else max(int(total), done)


class TQDMProgressBar(Callback):
    """Draws a tqdm bar per epoch on rank 0: train (``Train Epoch 1``), eval, predict, test.

    The bar's total is the number of steps the epoch will really run: the loader length capped
    by ``max_steps_per_epoch`` and by the steps ``max_steps`` leaves; after a mid-epoch resume
    the bar starts at the steps already done. Every ``refresh_rate`` steps the bar advances.

    The train postfix shows ``loss=<mean loss since the bar's last read>`` plus the ``metrics``
    you name, looked up in ``state.metrics``: the values last published by a ``MetricsLogger``
    or at an epoch end. Reading it costs a host sync, so the bar reads
    it only at a refresh at least ``mininterval`` seconds after its previous read (tqdm would
    not draw it sooner) and at the end of each epoch. The read happens at the next step's
    hook, after every callback of the refresh step ran. When another callback (a
    ``MetricsLogger``) published the train values since the bar's last read, the bar shows
    those with no sync. Otherwise it reads the loss mean without publishing. Either way a
    logger's windows stay whole. The eval postfix shows the epoch's eval values when the
    epoch ends. A named set of ``Evaluators`` gets its own bar, ``Eval <name> Epoch <k>``
    (``k`` counts that set's evaluations). The test bar's postfix shows the test values
    (``test/loss``, ``unit.test_metrics``) and the ``metrics`` found in ``state.metrics`` when
    the test epoch ends.

    Args:
        refresh_rate: steps between bar updates.
        file: stream the bars write to (default ``sys.stderr``).
        metrics: extra ``state.metrics`` names for the postfix, e.g. ``("train/accuracy",)``.
        mininterval: tqdm's own throttle: at most one redraw per this many seconds (counts
            stay exact; the last state is always drawn when the bar closes). It also spaces
            the postfix reads. 0 draws and reads at every refresh.

    Raises:
        ValueError: ``refresh_rate`` < 1.

    Example:
        >>> import io
        >>> from torchkit import train
        >>> from torchkit.testing import DummyTrainUnit, generate_random_dataloader
        >>> buf = io.StringIO()
        >>> _ = train(DummyTrainUnit(2), generate_random_dataloader(8, 2, 2), max_epochs=1,
        ...           callbacks=[TQDMProgressBar(refresh_rate=2, file=buf)])
        >>> "4/4" in buf.getvalue() and "loss=" in buf.getvalue()
        True
    """

    records_step_losses = True

    def __init__(
        self,
        refresh_rate: int = 1,
        file: TextIO | None = None,
        metrics: Sequence[str] = (),
        mininterval: float = 0.1,
    ) -> None:
        self.refresh_rate = check_interval(
            "refresh_rate", refresh_rate, "Pass e.g. refresh_rate=10 to redraw every 10 steps"
        )
        self.file = file
        self.metrics = tuple(metrics)
        self.mininterval = mininterval
        self._enabled = get_global_rank() == 0
        self._bars: dict[str, Any] = {}
        self._shown: dict[str, int] = {}
        self._postfix_time = -math.inf
        self._postfix_due = False
        self._read_key = -1
        self._mark = (-1, 0)

    # -- bar management ---------------------------------------------------------------------
    def _open(self, phase: str, state: State, progress: Any) -> None:
        if not self._enabled or phase in self._bars:
            return
        from tqdm import tqdm

        phase_state = getattr(state, f"{phase}_state")
        done = progress.num_steps_completed_in_epoch
        label = {"train": "Train", "eval": "Eval", "predict": "Predict", "test": "Test"}[phase]
        epoch = progress.num_epochs_completed + 1
        own = phase_state.set_progress.get(phase_state.name) if phase == "eval" else None
        if own is not None:  # a named set of Evaluators: its name and its own epoch count
            label, epoch = f"Eval {phase_state.name}", own.num_epochs_completed + 1
        self._bars[phase] = tqdm(
            desc=f"{label} Epoch {epoch}",
            total=epoch_total(phase_state, progress),
            initial=done,
            file=self.file,
            leave=not self._bars,  # a bar nested under a train bar disappears when done
            position=len(self._bars),  # an eval bar inside a train epoch goes below it
            mininterval=self.mininterval,
            dynamic_ncols=False,
        )
        self._shown[phase] = done

    def _advance(self, phase: str, progress: Any, postfix: dict[str, float] | None) -> None:
        bar = self._bars.get(phase)
        if bar is None:
            return
        if postfix:
            bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        done = progress.num_steps_completed_in_epoch or progress.num_steps_completed_in_prev_epoch
        bar.update(done - self._shown[phase])
        self._shown[phase] = done

    def _close(self, phase: str) -> None:
        bar = self._bars.pop(phase, None)
        if bar is not None:
            bar.refresh()  # draw the final count and postfix even when tqdm throttled them
            bar.close()

    def _train_postfix(self, state: State, unit: Any) -> dict[str, float]:
        """At epoch end: publish (cached when a logger already did at this step)."""
        published = publish_train(state, unit)
        acc = get_metric_state(state).train
        self._read_key, self._mark = acc.published_key, loss_mark(state)
        return self._with_metrics(state, published.get("train/loss"))

    def _peek_postfix(self, state: State) -> dict[str, float]:
        """Mid-epoch: show what another callback published since the last read, else the mean
        loss since the last read without publishing; a logger's windows stay whole."""
        acc = get_metric_state(state).train
        # rank 0 only, at times of its own: nothing here may be a collective
        if acc.published_key > self._read_key:  # a MetricsLogger published: no sync at all
            loss = acc.published.get("train/loss")
            self._read_key, self._mark = acc.published_key, loss_mark(state)
        else:
            loss, self._mark = peek_train_loss(state, self._mark)
        return self._with_metrics(state, loss)

    def _with_metrics(self, state: State, loss: float | None) -> dict[str, float]:
        postfix = {"loss": loss} if loss is not None else {}
        postfix.update({m: state.metrics[m] for m in self.metrics if m in state.metrics})
        return postfix

    # -- train ------------------------------------------------------------------------------
    def on_train_epoch_start(self, state: State, unit: Any) -> None:
        self._open("train", state, unit.train_progress)

    def on_train_start(self, state: State, unit: Any) -> None:
        self._postfix_due, self._read_key, self._mark = False, -1, (-1, 0)  # a new run
        if unit.train_progress.num_steps_completed_in_epoch > 0:
            # A mid-epoch resume skips on_train_epoch_start: open the bar where the run is.
            self._open("train", state, unit.train_progress)

    def on_train_step_end(self, state: State, unit: Any) -> None:
        if self._postfix_due:
            # due since the previous step: read now, after every callback's hooks of that step
            # ran, so a logger that published there is reused rather than read again
            self._postfix_due = False
            bar = self._bars.get("train")
            if bar is not None:
                postfix = self._peek_postfix(state)
                if postfix:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()})
        progress = unit.train_progress
        if progress.num_steps_completed_in_epoch % self.refresh_rate == 0:
            # the postfix costs a host sync: read it only when the bar can redraw it
            now = time.monotonic()
            if now - self._postfix_time >= self.mininterval:
                self._postfix_time = now
                self._postfix_due = True
            self._advance("train", progress, None)

    def on_train_epoch_end(self, state: State, unit: Any) -> None:
        self._postfix_due = False
        # every rank publishes: torchmetrics' compute() is a collective
        postfix = self._train_postfix(state, unit)
        if "train" in self._bars:
            self._advance("train", unit.train_progress, postfix)
        self._close("train")

    def on_train_end(self, state: State, unit: Any) -> None:
        self._close("train")

    # -- eval -------------------------------------------------------------------------------
    def on_eval_start(self, state: State, unit: Any) -> None:
        if unit.eval_progress.num_steps_completed_in_epoch > 0:
            self._open("eval", state, unit.eval_progress)

    def on_eval_epoch_start(self, state: State, unit: Any) -> None:
        self._open("eval", state, unit.eval_progress)

    def on_eval_step_end(self, state: State, unit: Any) -> None:
        progress = unit.eval_progress
        if progress.num_steps_completed_in_epoch % self.refresh_rate == 0:
            self._advance("eval", progress, None)

    def on_eval_epoch_end(self, state: State, unit: Any) -> None:
        values = publish_eval(state, unit)
        cut = len(state.eval_state._metric_prefix) + 1 if state.eval_state is not None else 5
        postfix = {k[cut:]: v for k, v in values.items()}  # eval/loss, eval/val/loss -> loss
        self._advance("eval", unit.eval_progress, postfix)
        self._close("eval")

    def on_eval_end(self, state: State, unit: Any) -> None:
        self._close("eval")

    # -- predict ----------------------------------------------------------------------------
    def on_predict_epoch_start(self, state: State, unit: Any) -> None:
        self._open("predict", state, unit.predict_progress)

    def on_predict_step_end(self, state: State, unit: Any) -> None:
        progress = unit.predict_progress
        if progress.num_steps_completed_in_epoch % self.refresh_rate == 0:
            self._advance("predict", progress, None)

    def on_predict_epoch_end(self, state: State, unit: Any) -> None:
        self._advance("predict", unit.predict_progress, None)
        self._close("predict")

    def on_predict_end(self, state: State, unit: Any) -> None:
        self._close("predict")

    # -- test (fit's test_dataloader, or test()) --------------------------------------------
    def on_test_epoch_start(self, state: State, unit: Any) -> None:
        self._open("test", state, unit.test_progress)

    def on_test_step_end(self, state: State, unit: Any) -> None:
        progress = unit.test_progress
        if progress.num_steps_completed_in_epoch % self.refresh_rate == 0:
            self._advance("test", progress, None)

    def on_test_epoch_end(self, state: State, unit: Any) -> None:
        # the test loss mean and test_metrics, then the ``metrics=`` keys found in state.metrics
        postfix = {k[5:]: v for k, v in publish_test(state, unit).items()}  # test/loss -> loss
        postfix.update(self._with_metrics(state, None))
        self._advance("test", unit.test_progress, postfix)
        self._close("test")

    def on_test_end(self, state: State, unit: Any) -> None:
        self._close("test")

    def on_exception(self, state: State, unit: Any, exc: BaseException) -> None:
        for phase in list(self._bars):
            self._close(phase)
