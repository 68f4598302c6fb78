"""Optimisers and learning-rate schedules of the papers.

- CKCNN (CKConv Table 8): Adam, ReduceLROnPlateau on the validation metric.
- CCNN (CCNN App. C.2): AdamW, cosine annealing after a linear warm-up of 10 epochs.

Parameters fall into the three groups of :func:`ckconv.nn.param_groups`, found by module type:
mask parameters (their own lr and decay), the kernel-network parameters of every continuous
convolution, grid or point (no weight decay by default: the L2 penalty acts on the kernels they
generate, CCNN eq. 3) and everything else.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ckconv.app.config import OptimConfig
from ckconv.nn import param_groups

__all__ = [
    "build_optimizer",
    "build_scheduler",
    "cosine_warmup_factor",
    "optimizer_groups",
    "warmup_steps",
]

#: The largest share of a run's optimiser steps the cosine warm-up may take.
MAX_WARMUP_SHARE = 0.5


def optimizer_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """The groups of :func:`ckconv.nn.param_groups` (``default``, ``kernel_net``, ``mask``;
    empty ones left out) with the config's learning rates and weight decays."""
    return param_groups(
        model,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        kernel_net_weight_decay=cfg.kernel_net_weight_decay,
        mask_lr=cfg.mask_lr,
        mask_weight_decay=cfg.mask_weight_decay,
    )


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = optimizer_groups(model, cfg)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def cosine_warmup_factor(step: int, warmup_steps: int, total_steps: int, floor: float) -> float:
    """lr multiplier at optimiser step ``step``: linear ramp ``(step+1)/warmup`` for the first
    ``warmup_steps`` steps, then cosine from 1 down to ``floor`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps(cfg: OptimConfig, steps_per_epoch: int, total_steps: int) -> tuple[int, str]:
    """The cosine warm-up length in optimiser steps, and a note when it had to be shortened.

    ``optim.warmup_epochs`` is given in epochs for a run of the config's length; a run shrunk by
    an override (``trainer.max_epochs=1``, ``trainer.max_steps=...``) keeps its warm-up to at
    most :data:`MAX_WARMUP_SHARE` of its ``total_steps``, so the cosine part is never empty.
    The note (empty when nothing changed) says so, in epochs.
    """
    if cfg.scheduler != "cosine" or cfg.warmup_epochs <= 0:
        return 0, ""
    asked = round(cfg.warmup_epochs * steps_per_epoch)
    cap = int(MAX_WARMUP_SHARE * total_steps)
    if asked <= cap:
        return asked, ""
    note = (
        f"optim.warmup_epochs={cfg.warmup_epochs:g} does not fit this run of "
        f"{total_steps / steps_per_epoch:.3g} epoch(s) ({total_steps} optimiser steps): warm-up "
        f"shortened to {cap / steps_per_epoch:.3g} epoch(s) ({cap} step(s), "
        f"{MAX_WARMUP_SHARE:.0%} of the run)"
    )
    return cap, note


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    *,
    steps_per_epoch: int,
    total_steps: int,
    monitor: str,
    mode: str,
) -> dict[str, Any] | None:
    """A Lightning ``lr_scheduler`` config dict (or None for ``scheduler: none``)."""
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cosine":
        warmup, _ = warmup_steps(cfg, steps_per_epoch, total_steps)
        floor = cfg.min_lr_ratio

        def factor(step: int) -> float:
            return cosine_warmup_factor(step, warmup, total_steps, floor)

        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"scheduler": sched, "interval": "step", "frequency": 1, "name": "lr"}
    if cfg.scheduler == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
        return {
            "scheduler": sched,
            "interval": "epoch",
            "frequency": 1,
            "monitor": monitor,
            "strict": True,
            "name": "lr",
        }
    sched = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.step_size, gamma=cfg.step_gamma
    )
    return {"scheduler": sched, "interval": "epoch", "frequency": 1, "name": "lr"}
