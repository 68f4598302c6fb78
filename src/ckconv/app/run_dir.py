"""The run folder: ``<out_dir>/<name>/<version>/`` with the resolved config, metrics, checkpoints
and pictures::

    config.yaml            the resolved config (after overrides)
    metrics.csv            every logged metric, one row per logging call
    checkpoints/last.ckpt  the latest state (every ``checkpoint_every_n_steps`` and each epoch)
    checkpoints/best.ckpt  the best validation score so far (ties: the lower val/loss)
    curves.png             training curves
    kernels.png            the learned continuous kernels (when the model has any)
    summary.json           best validation (best.ckpt, its epoch), last validation, test metrics
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ckconv.models.checkpoint import atomic_write

__all__ = ["RunPaths", "atomic_write_text", "new_run_dir", "write_json"]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`~ckconv.models.checkpoint.atomic_write`."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class RunPaths:
    """Names of the files in a run folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    config = property(lambda self: self.root / "config.yaml")
    metrics = property(lambda self: self.root / "metrics.csv")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / "last.ckpt")
    best = property(lambda self: self.root / "checkpoints" / "best.ckpt")
    curves = property(lambda self: self.root / "curves.png")
    kernels = property(lambda self: self.root / "kernels.png")
    summary = property(lambda self: self.root / "summary.json")

    def __repr__(self) -> str:
        return f"RunPaths({str(self.root)!r})"


def new_run_dir(out_dir: str | os.PathLike, name: str, version: str | None) -> Path:
    """Create and return a fresh run folder. ``version=None`` names it by the local time
    (``20240131-142501``, with ``-1``, ``-2`` ... appended if that exists)."""
    parent = Path(out_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    if version is not None:
        path = parent / version
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(
                f"run folder {str(path)!r} exists; pass --resume to continue it, or choose "
                "another trainer.version"
            )
        path.mkdir(exist_ok=True)
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a new run folder under {str(parent)!r}")
