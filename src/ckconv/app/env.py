"""This process's place in a ``torchrun`` job: rank and world size from the environment, the
process group, and seeding with ``seed + rank``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ckconv.app.config import Config, ConfigError

__all__ = ["DistEnv", "broadcast", "dist_env", "init_distributed", "seed_everything", "use_gpu"]


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job (a single process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    @property
    def num_nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))


def dist_env() -> DistEnv:
    """Read ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE`` (set by torchrun)."""
    env = os.environ

    def get(name: str, default: int) -> int:
        try:
            return int(env.get(name, default))
        except ValueError:
            raise ConfigError(f"environment variable {name}={env[name]!r} is not an int") from None

    world = get("WORLD_SIZE", 1)
    return DistEnv(
        rank=get("RANK", 0),
        local_rank=get("LOCAL_RANK", 0),
        world_size=world,
        local_world_size=get("LOCAL_WORLD_SIZE", world),
    )


def use_gpu(cfg: Config) -> bool:
    """Whether ``trainer.accelerator`` puts this run on a GPU."""
    acc = cfg.trainer.accelerator
    return acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())


def init_distributed(cfg: Config, env: DistEnv) -> None:
    """Join the torchrun job's process group (Lightning reuses an initialised group)."""
    if env.world_size <= 1 or torch.distributed.is_initialized():
        return
    backend = "nccl" if use_gpu(cfg) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(env.local_rank)
    torch.distributed.init_process_group(backend=backend, init_method="env://")


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (``obj`` itself outside a process group)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def seed_everything(seed: int, rank: int) -> None:
    """Seed python, numpy and torch with ``seed + rank`` (quietly)."""
    from lightning.fabric.utilities.seed import seed_everything as _seed

    _seed(seed + rank, workers=True, verbose=False)
