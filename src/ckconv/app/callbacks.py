"""Lightning callbacks of the training app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["LastCheckpoint"]


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
