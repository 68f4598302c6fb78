"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)``.

Lightning's default ``TorchCheckpointIO`` writes through an fsspec transaction. For local paths
fsspec stages the bytes in a temporary file from :func:`tempfile.mkstemp` (the system temp dir,
often another filesystem) and then ``shutil.move``s it into place: across filesystems that is a
copy straight into the destination, so a process killed during the copy leaves a truncated
checkpoint, and nothing is fsync'ed. :class:`AtomicCheckpointIO` writes through
:func:`ckconv.models.checkpoint.atomic_torch_save` (a temporary file *in the destination
directory*, fsync'ed and ``os.replace``d over the target): a reader sees the old file or the
new one, never a mix.

Loading always uses ``weights_only=True``: only tensors and plain Python containers/scalars are
unpickled. Everything ckconv and Lightning put in a checkpoint is of that kind.

:func:`rebuild_model` is how the commands (``ckconv export``, ``ckconv plot``) get a checkpoint's
model: from its model spec (:mod:`ckconv.models.checkpoint`), or, for checkpoints written before
they stored one, through the run config and the task (the migration path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from ckconv.models.checkpoint import (
    CheckpointError,
    ModelSpec,
    atomic_torch_save,
    model_from_checkpoint,
    read_checkpoint,
)

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "RebuiltModel",
    "atomic_torch_save",
    "load_checkpoint",
    "rebuild_model",
    "resolve_checkpoint",
]


def resolve_checkpoint(
    path: str | os.PathLike,
    *,
    prefer: Literal["best", "last"] = "best",
    name: str = "--checkpoint",
) -> Path:
    """The checkpoint file a command argument names: a file as given, or for a run folder
    (``<out_dir>/<name>/<version>/``) its ``checkpoints/best.ckpt`` (``prefer="best"``: what
    ``eval``, ``plot`` and ``export`` read, ``last.ckpt`` when the run has no best yet) or its
    ``checkpoints/last.ckpt`` (``prefer="last"``: where ``train --resume`` continues).

    A path that does not exist is returned as given (reading it raises the one-line error);
    a folder without those files raises FileNotFoundError naming ``name`` and the folder.
    """
    from ckconv.app.run_dir import RunPaths

    path = Path(path)
    if not path.is_dir():
        return path
    run = RunPaths(path)
    order = (run.best, run.last) if prefer == "best" else (run.last,)
    for candidate in order:
        if candidate.is_file():
            return candidate
    wanted = " or ".join(f"checkpoints/{c.name}" for c in order)
    raise FileNotFoundError(
        f"{name}: the folder {str(path)!r} has no {wanted} (give a .ckpt file or a run folder "
        "written by ckconv train)"
    )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The contents of a Lightning checkpoint (:func:`ckconv.models.read_checkpoint`: clear
    errors for missing or bad files), which must hold a ``state_dict``."""
    ckpt = read_checkpoint(path, map_location)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a ckconv/Lightning checkpoint (no 'state_dict')")
    return ckpt


@dataclass(frozen=True)
class RebuiltModel:
    """A checkpoint's model (eval mode) and the spatial input size it was trained at (None when
    the checkpoint does not say, e.g. point-cloud models)."""

    model: nn.Module
    input_size: tuple[int, ...] | None


def rebuild_model(
    path: str | os.PathLike, overrides: list[tuple[str, Any]] | None = None
) -> RebuiltModel:
    """The model of any checkpoint ckconv writes: from its model spec (torch and
    ``ckconv.models`` only), else, for ``ckconv train`` checkpoints written before they stored
    one, from the run config and the task's data (``overrides`` may change ``task.*`` keys,
    e.g. the data root). ``path`` may be a run folder (:func:`resolve_checkpoint`)."""
    path = resolve_checkpoint(path)
    contents = read_checkpoint(path)
    spec = ModelSpec.of(contents, str(path))
    if spec is not None:
        size = spec.kwargs.get("input_size")
        if isinstance(size, int):
            size = (size,)
        return RebuiltModel(
            model_from_checkpoint(contents, str(path)), None if size is None else tuple(size)
        )
    from ckconv.app.evaluation import load_model

    model, _, bundle = load_model(path, overrides)
    return RebuiltModel(model.eval(), tuple(bundle.spec.input_size))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO``: atomic local writes, ``weights_only=True`` reads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = lambda storage, loc: storage, weights_only: Any = None
    ) -> dict[str, Any]:
        if weights_only is False:
            raise ValueError("ckconv loads checkpoints with weights_only=True only")
        return load_checkpoint(path, map_location=map_location)
