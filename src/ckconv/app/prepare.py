"""The pre-flight of a run: build the task, model, data module and LightningModule of a config
and check that they fit together before any training starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ckconv.app.config import Config, ConfigError, config_to_dict
from ckconv.app.env import DistEnv, dist_env, seed_everything, use_gpu
from ckconv.app.optim import warmup_steps
from ckconv.app.preprocess import preprocessing_record
from ckconv.app.tasks import (
    TaskBundle,
    build_model_from_config,
    build_task,
    model_spec,
    resolve_config,
)

__all__ = ["Prepared", "check_output", "prepare"]


def check_output(model: nn.Module, bundle: TaskBundle) -> None:
    """One forward pass on two training items before any training: sizes that cannot work fail
    here, with the config key to change."""
    from ckconv.app.datamodule import collate_fn
    from ckconv.app.module import split_batch

    ds = bundle.datasets["train"]
    items = [ds[i] for i in range(min(2, len(ds)))]
    batch = collate_fn(bundle.collate)(items)
    x, keywords, y = split_batch(batch)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x, **keywords)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"model: a forward pass on task {bundle.name!r} inputs failed: {err}"
        ) from None
    finally:
        model.train(was_training)
    o = bundle.objective
    if o.classification:
        want = (x.shape[0], bundle.out_channels, *y.shape[1:])
    else:
        want = tuple(y.shape)
    if tuple(out.shape) != tuple(want):
        hint = " (per-step task: set model.head: none)" if o.per_step else ""
        raise ConfigError(
            f"model.head: the model outputs {tuple(out.shape)} for a batch of 2, the task "
            f"{bundle.name!r} needs {tuple(want)}{hint}"
        )


@dataclass
class Prepared:
    """A run's parts, built and checked before training starts; ``notes`` are the adjustments
    made to the config for this run (printed before training)."""

    cfg: Config
    env: DistEnv
    bundle: TaskBundle
    model: nn.Module
    datamodule: Any
    module: Any
    steps_per_epoch: int
    total_steps: int
    notes: tuple[str, ...] = ()


def _check_trainer(cfg: Config, env: DistEnv) -> None:
    t = cfg.trainer
    if t.tensorboard:
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ConfigError(
                "trainer.tensorboard: needs the tensorboard package (pip install tensorboard)"
            )
    if t.batch_size % env.world_size:
        raise ConfigError(
            f"trainer.batch_size: {t.batch_size} is not divisible by the {env.world_size} "
            "training processes (it is the global batch size)"
        )


def prepare(
    cfg: Config, env: DistEnv | None = None, datasets: dict[str, Any] | None = None
) -> Prepared:
    """Build and check the task, model, data module and LightningModule of ``cfg`` (no training).

    ``datasets`` (``{"train", "val", "test"}``, see :func:`ckconv.app.tasks.build_task`) replace
    the task table's. ``Prepared.cfg`` is the config as the run records it
    (:func:`~ckconv.app.tasks.resolve_config`: the default model named, ``task.path``
    absolute). Raises :class:`ConfigError` naming the key for anything that cannot run.
    """
    from ckconv.app.datamodule import TaskDataModule
    from ckconv.app.module import TaskModule

    env = env or dist_env()
    t = cfg.trainer
    _check_trainer(cfg, env)
    seed_everything(cfg.seed, env.rank)
    bundle = build_task(cfg, datasets)
    cfg = resolve_config(cfg, bundle)
    model = build_model_from_config(cfg, bundle)
    check_output(model, bundle)
    if env.world_size > 1 and t.sync_batchnorm and not use_gpu(cfg):
        from ckconv.app.syncbn import convert_batchnorm

        model = convert_batchnorm(model)  # torch's SyncBatchNorm is GPU-only
    try:
        dm = TaskDataModule(
            bundle.datasets,
            batch_size=t.batch_size,
            eval_batch_size=t.eval_batch_size or t.batch_size,
            seed=cfg.seed,
            drop_last=t.drop_last,
            num_workers=t.num_workers,
            collate=bundle.collate,
            rank=env.rank,
            world_size=env.world_size,
        )
    except ValueError as err:
        raise ConfigError(f"trainer.batch_size: {err}") from None
    batches = len(dm.train_sampler)
    if t.limit_train_batches:
        batches = min(batches, t.limit_train_batches)
    steps_per_epoch = max(1, -(-batches // t.accumulate_grad_batches))
    total = steps_per_epoch * t.max_epochs
    if t.max_steps > 0:
        total = min(total, t.max_steps)
    module = TaskModule(
        model,
        bundle.objective,
        cfg.optim,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        config=config_to_dict(cfg),
        model_spec=model_spec(cfg, bundle),
        input_preprocessing=preprocessing_record(bundle),
    )
    _, warmup_note = warmup_steps(cfg.optim, steps_per_epoch, total)
    notes = tuple(f"{split} split: held out of the training data, {how}"
                  for split, how in bundle.held_out.items())  # fmt: skip
    notes += bundle.notes
    notes += (warmup_note,) if warmup_note else ()
    return Prepared(cfg, env, bundle, model, dm, module, steps_per_epoch, total, notes)
