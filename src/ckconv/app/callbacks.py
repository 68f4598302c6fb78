"""Lightning callbacks of the training app."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

__all__ = ["BestCheckpoint", "EpochLines", "LastCheckpoint", "progress_bars_wanted"]


def progress_bars_wanted(asked: bool, stream: Any = None) -> bool:
    """Progress bars only when the config asks for them and stdout is a terminal: redirected to
    a file, every redraw would become a line of the log."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(asked) and bool(isatty and isatty())


class EpochLines(Callback):
    """One line per training epoch, with the validation metrics when it validated, for runs
    without a progress bar: ``epoch 3/15  train/loss_epoch 0.5123  val/acc 76.21 %
    val/loss 0.6123  (4.1 s)``. Accuracies print as percentages (:func:`format_metric`). The
    seconds are the epoch's wall time in this process: after a resume mid-epoch, the part it ran."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self._t0 = 0.0
        self._validated = False

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    @staticmethod
    def _metrics(trainer: L.Trainer, prefixes: tuple[str, ...]) -> str:
        from ckconv.app.metrics import format_metric
        from ckconv.app.trainer import scalar_metrics

        metrics = scalar_metrics(trainer.callback_metrics)
        keys = sorted(k for k in metrics if k.startswith(prefixes) and k != "train/loss")
        return "  ".join(f"{k} {format_metric(k, metrics[k])}" for k in keys)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch gets no on_train_epoch_start for that epoch: its line then
        # times the part of the epoch this process ran.
        self._t0 = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()
        self._validated = False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._validated = True  # (Lightning validates before the epoch's end: on its line)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        prefixes = ("train/", "val/") if self._validated else ("train/",)
        seconds = time.perf_counter() - self._t0
        self._print(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  "
            f"step {trainer.global_step}  {self._metrics(trainer, prefixes)}  ({seconds:.1f} s)"
        )


class LastCheckpoint(Callback):
    """Keep ``last.ckpt`` current: every ``every_n_steps`` optimiser steps, after the first batch of
    every epoch after the first, and when training ends.

    All saves but the final one happen at the end of a training batch, the state Lightning
    restarts mid-epoch from (it restores the loop counters; the batch sampler and random states
    are restored by ckconv), and never after the last batch of an epoch: that state precedes the
    epoch's validation and epoch-level scheduler step, which Lightning does not replay on restart.
    Saving after the first batch of the next epoch instead makes "one checkpoint per epoch"
    exact to resume, at the cost of redoing at most one batch.
    """

    def __init__(self, path: str | Path, every_n_steps: int = 0) -> None:
        self.path = Path(path)
        self.every_n_steps = int(every_n_steps)
        self._prev_step = -1
        self._saved_epoch = -1

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_epoch = trainer.current_epoch

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        step = trainer.global_step
        stepped, self._prev_step = step != self._prev_step, step
        if not stepped:
            return  # accumulating gradients: saving now would lose them
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's validation and scheduler step are still to come
        if trainer.max_steps > 0 and step >= trainer.max_steps:
            return  # training ends here; on_train_end saves
        n = self.every_n_steps
        periodic = bool(n) and step % n == 0
        epoch_start = 0 < trainer.current_epoch != self._saved_epoch
        if periodic or epoch_start:
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` keeping one best checkpoint, with ties broken by a second metric.

    Lightning replaces the best checkpoint only when the monitored value strictly improves, so
    with a metric that saturates (a copy-memory accuracy of 100 %, a small validation set's
    accuracy) ``best.ckpt`` stays at the first epoch that reached the best value, however much
    training improved after it. Here a later validation with an equal monitored value replaces it
    when ``tie_break`` (e.g. ``"val/loss"``) is lower than at the kept checkpoint, as the CKConv
    reference code keeps its best weights. The kept ``tie_break`` value is part of the
    callback's state, so a resumed run goes on comparing against it.

    Args:
        tie_break: a logged metric, lower is better; None: Lightning's rule alone.
        **kwargs: :class:`~lightning.pytorch.callbacks.ModelCheckpoint`'s (``save_top_k`` 1).
    """

    def __init__(self, *, tie_break: str | None = None, **kwargs: Any) -> None:
        if kwargs.setdefault("save_top_k", 1) != 1:
            raise ValueError(
                f"BestCheckpoint keeps one checkpoint, got save_top_k={kwargs['save_top_k']}"
            )
        super().__init__(**kwargs)
        self.tie_break = tie_break
        self.best_tie_break_score: float | None = None

    def check_monitor_top_k(self, trainer: L.Trainer, current: Any = None) -> bool:
        better = super().check_monitor_top_k(trainer, current)
        value = trainer.callback_metrics.get(self.tie_break) if self.tie_break else None
        tie = None if value is None else float(value)
        if not better and tie is not None and current is not None and self.best_k_models:
            kept = self.best_k_models[self.kth_best_model_path]
            tied = float(current) == float(kept)
            lower = self.best_tie_break_score is None or tie < self.best_tie_break_score
            better = trainer.strategy.reduce_boolean_decision(tied and lower)
        if better:  # the checkpoint about to be written holds this value
            self.best_tie_break_score = tie
        return better

    @property
    def state_key(self) -> str:
        # a ModelCheckpoint's key, so runs saved before this class resume with their best score
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_tie_break_score": self.best_tie_break_score}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_tie_break_score = state_dict.get("best_tie_break_score")
