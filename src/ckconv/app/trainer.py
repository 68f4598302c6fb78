"""The Lightning ``Trainer`` of a config: one process or a torchrun job (DDP), atomic checkpoint
writes, and the scalar metrics it reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckconv.app.config import Config, ConfigError
from ckconv.app.env import DistEnv, use_gpu

__all__ = ["make_trainer", "scalar_metrics"]


def make_trainer(cfg: Config, env: DistEnv, *, callbacks: list, loggers: list | bool, root: Path):
    """A ``lightning.Trainer`` for ``cfg.trainer`` in this process's place of the job ``env``."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from ckconv.app.callbacks import progress_bars_wanted
    from ckconv.app.checkpoint import AtomicCheckpointIO

    t = cfg.trainer
    kwargs: dict[str, Any] = {}
    if env.world_size > 1:
        from lightning.pytorch.strategies import DDPStrategy

        kwargs["strategy"] = DDPStrategy(process_group_backend="nccl" if use_gpu(cfg) else "gloo")
        kwargs["devices"] = env.local_world_size
        kwargs["num_nodes"] = env.num_nodes
        if t.sync_batchnorm and use_gpu(cfg):
            kwargs["sync_batchnorm"] = True
    else:
        if t.devices not in ("auto", 1) or t.num_nodes != 1:
            raise ConfigError(
                f"trainer.devices={t.devices!r} / trainer.num_nodes={t.num_nodes}: start several "
                "processes with torchrun (see the README); a single process trains on one device"
            )
        kwargs["devices"] = 1
    return L.Trainer(
        accelerator=t.accelerator,
        precision=t.precision,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        limit_train_batches=t.limit_train_batches or None,
        limit_val_batches=t.limit_val_batches or None,
        check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=cfg.optim.grad_clip or None,
        gradient_clip_algorithm=cfg.optim.grad_clip_algorithm if cfg.optim.grad_clip else None,
        deterministic=t.deterministic,
        enable_progress_bar=progress_bars_wanted(t.progress_bar) and env.is_zero,
        enable_model_summary=env.is_zero,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(root),
        **kwargs,
    )


def scalar_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """The entries of ``raw`` that are numbers, as floats."""
    out = {}
    for k, v in raw.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out
