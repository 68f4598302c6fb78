"""The LightningModule that trains any ``ckconv.models`` network on a task.

Loss: cross-entropy (classification, per step for copy memory / char LM) or mean squared error
(regression), plus ``lambda * kernel_l2(model)`` (CCNN eq. 3) when ``optim.kernel_l2 > 0``.
Metrics (torchmetrics, exact across processes): accuracy, bits per character, AUROC or MSE.

Checkpoints carry, next to Lightning's own state, the model's ``"model_spec"`` (its registry name
and keyword arguments: :func:`ckconv.models.load_checkpoint` rebuilds the model from the file
alone) and a ``"ckconv"`` entry of plain types: the resolved config (so ``ckconv eval`` rebuilds
the task) and the random-number states of every process (so a resumed run draws the same
dropout masks as an uninterrupted one).
"""

from __future__ import annotations

import math
import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ckconv.app.config import OptimConfig
from ckconv.app.optim import build_optimizer, build_scheduler
from ckconv.app.tasks import Objective
from ckconv.grids import as_rates
from ckconv.models.checkpoint import SPEC_KEY, ModelSpec

__all__ = ["TaskModule", "get_rng_state", "set_rng_state", "split_batch"]

CHECKPOINT_KEY = "ckconv"
FORMAT_VERSION = 1


def get_rng_state() -> dict[str, Any]:
    """torch, numpy and python random states as plain types (loadable with weights_only=True)."""
    # numpy's legacy global generator is what third-party code seeds and draws from
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, pystate, pygauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "state": list(pystate), "gauss": pygauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _all_gather_objects(obj: Any) -> list[Any]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        out: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(out, obj)
        return out
    return [obj]


def split_batch(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """``(x, keywords, y)`` of a collated batch: the model is called as ``model(x, **keywords)``.

    Batch types with a ``model_inputs()`` method (``TimestampBatch``: values plus ``times`` and
    ``mask``; ``PaddedBatch``) say what the model gets; any other batch is ``(x, y, ...)``.
    """
    inputs = getattr(batch, "model_inputs", None)
    if callable(inputs):
        x, keywords = inputs()
        return x, dict(keywords), batch.y
    return batch[0], {}, batch[1]


class TaskModule(L.LightningModule):
    """Train / evaluate ``model`` on a task with the objective's loss and metric.

    Batches reach the model through :func:`split_batch`: timestamp-route batches as
    ``model(values, times=..., mask=...)`` (the model holds its ``weighting``), every other
    batch as ``model(x)``.

    Args:
        model: any network with ``forward(x, *, rate=None)`` (and ``times``, ``mask``
            keywords for timestamped batches).
        objective: loss and metric (:func:`ckconv.app.tasks.objective_for`).
        optim: optimiser / schedule settings.
        steps_per_epoch: optimiser steps per epoch (for the warm-up length).
        total_steps: optimiser steps of the whole run (for the cosine schedule).
        config: the resolved run config as plain data, stored in checkpoints.
        model_spec: how to rebuild ``model`` (:func:`ckconv.app.tasks.model_spec`), stored in
            checkpoints; None stores none (such checkpoints rebuild through the config).
        input_preprocessing: the task's input preprocessing
            (:func:`ckconv.app.preprocess.preprocessing_record`), stored in checkpoints for
            ``ckconv export``.
        eval_rate: sampling-rate ratio passed to the model in validation / test
            (``ckconv eval --rate``); None is the training rate. Timestamped batches count
            their times in samples of their own rate: the model gets ``times / eval_rate``
            (times in training samples) instead of a rate.
        eval_blur: with ``eval_rate > 1``, blur the finer kernels (CKConv App. E.3;
            ``ckconv eval --blur``).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optim: OptimConfig,
        *,
        steps_per_epoch: int = 1,
        total_steps: int = 1,
        config: dict[str, Any] | None = None,
        model_spec: ModelSpec | None = None,
        input_preprocessing: dict[str, Any] | None = None,
        eval_rate: Any = None,
        eval_blur: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.objective = objective
        self.optim_cfg = optim
        self.steps_per_epoch = int(steps_per_epoch)
        self.total_steps = int(total_steps)
        self.config = config or {}
        self.model_spec = model_spec
        self.input_preprocessing = input_preprocessing
        self.eval_rate = eval_rate
        self.eval_blur = bool(eval_blur)
        self._pending_rng: dict[str, Any] | None = None
        self.val_metric = self._make_metric()
        self.test_metric = self._make_metric()
        self.val_loss = self._mean()
        self.test_loss = self._mean()
        self.train_loss = self._mean()  # epoch mean; its running sums go into checkpoints

    # ------------------------------------------------------------------ metrics and losses
    def _mean(self):
        from torchmetrics import MeanMetric

        return MeanMetric()

    def _make_metric(self):
        from torchmetrics import MeanMetric, MeanSquaredError
        from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

        o = self.objective
        if o.metric == "acc":
            return MulticlassAccuracy(num_classes=o.num_classes, average="micro")
        if o.metric == "auroc":
            return BinaryAUROC()
        if o.metric == "bpc":
            return MeanMetric()
        return MeanSquaredError()

    @property
    def metric_name(self) -> str:
        return self.objective.metric

    def forward(self, x: torch.Tensor, rate: Any = None, **keywords: torch.Tensor) -> torch.Tensor:
        """``model(x)``, or ``model(x, times=..., mask=...)`` for timestamped
        inputs; ``rate`` is passed on for grids and turns timestamps into training samples."""
        if "times" in keywords:
            if rate is not None:
                keywords["times"] = keywords["times"] / as_rates(rate, 1)[0]
            return self.model(x, **keywords)
        if keywords:
            return self.model(x, **keywords)
        if rate is None:
            return self.model(x)
        if self.eval_blur:
            return self.model(x, rate=rate, blur=True)
        return self.model(x, rate=rate)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        o = self.objective
        if o.classification:
            if o.per_step and out.dim() != y.dim() + 1:
                raise ValueError(
                    f"per-step targets {tuple(y.shape)} need per-step logits (N, C, L), got "
                    f"{tuple(out.shape)}; build the model with head='none'"
                )
            return F.cross_entropy(out, y)
        target = y.to(out.dtype)
        if out.shape != target.shape:
            raise ValueError(f"model output {tuple(out.shape)} != target {tuple(target.shape)}")
        return F.mse_loss(out, target)

    def _update_metric(
        self, metric, out: torch.Tensor, y: torch.Tensor, loss: torch.Tensor
    ) -> None:
        o = self.objective
        if o.scored_steps is not None:  # e.g. copy memory: only the recalled digits count
            out, y = out[..., -o.scored_steps :], y[..., -o.scored_steps :]
        if o.metric == "acc":
            metric.update(out.argmax(1), y)
        elif o.metric == "auroc":
            metric.update(out.softmax(1)[:, 1], y)
        elif o.metric == "bpc":
            metric.update(loss.detach() / math.log(2.0), weight=y.numel())
        else:
            metric.update(out.detach(), y.to(out.dtype))

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, keywords, y = split_batch(batch)
        out = self(x, **keywords)
        loss = self._loss(out, y)
        total = loss
        row = {"train/loss": loss.detach()}
        if self.optim_cfg.kernel_l2 > 0:
            from ckconv.nn import kernel_l2

            reg = kernel_l2(self.model)
            total = loss + self.optim_cfg.kernel_l2 * reg
            row["train/kernel_l2"] = reg.detach()
        n = y.shape[0]
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True,
                 logger=False, batch_size=n)  # fmt: skip
        self.train_loss.update(loss.detach(), weight=n)
        self.log("train/loss_epoch", self.train_loss, on_step=False, on_epoch=True)
        self._log_step_row(row, batch_idx)
        return total

    def _log_step_row(self, row: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Write this step's training metrics to the loggers *now*, before the checkpoint a
        callback may write at the end of this batch (Lightning itself logs step metrics after
        that point, so a run killed in between would lose the row on resume)."""
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 1)))
        if (batch_idx + 1) % every:
            return
        metrics = {k: float(v) for k, v in row.items()}
        metrics["epoch"] = self.current_epoch
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)
            logger.save()

    def _eval_step(self, batch: Any, metric, loss_mean, prefix: str) -> None:
        x, keywords, y = split_batch(batch)
        out = self(x, self.eval_rate, **keywords)
        loss = self._loss(out, y)
        weight = y.numel() if self.objective.per_step else y.shape[0]
        loss_mean.update(loss.detach(), weight=weight)
        self._update_metric(metric, out, y, loss)
        self.log(f"{prefix}/loss", loss_mean, on_step=False, on_epoch=True, prog_bar=False)
        self.log(f"{prefix}/{self.metric_name}", metric, on_step=False, on_epoch=True,
                 prog_bar=True)  # fmt: skip

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.val_metric, self.val_loss, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.test_metric, self.test_loss, "test")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "mark_progress"):
            dm.mark_progress(self.current_epoch, batch_idx + 1)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optim_cfg)
        sched = build_scheduler(
            optimizer,
            self.optim_cfg,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            monitor=f"val/{self.metric_name}",
            mode=self.objective.mode,
        )
        if sched is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": sched}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Per process: random states and the running training-loss sums of the current epoch
        # (a checkpoint written mid-epoch continues the epoch mean exactly).
        mine = {
            "rng": get_rng_state(),
            "train_loss": {k: v.detach().cpu() for k, v in self.train_loss.metric_state.items()},
        }
        states = _all_gather_objects(mine)
        if self.model_spec is not None:
            checkpoint[SPEC_KEY] = self.model_spec.to_dict()
        checkpoint[CHECKPOINT_KEY] = {
            "format_version": FORMAT_VERSION,
            "config": self.config,
            "processes": states,
        }
        if self.input_preprocessing is not None:  # what `ckconv export` puts before the model
            checkpoint[CHECKPOINT_KEY]["input_preprocessing"] = self.input_preprocessing

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get(CHECKPOINT_KEY)
        if not extra:
            return
        states = extra.get("processes") or []
        if len(states) != self.trainer.world_size:
            return  # another number of processes: fresh random streams, epoch mean restarts
        mine = states[self.global_rank]
        self._pending_rng = mine["rng"]
        for key, value in mine["train_loss"].items():
            setattr(self.train_loss, key, value.to(self.device))
