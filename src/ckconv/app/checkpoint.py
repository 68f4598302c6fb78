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
"""

from __future__ import annotations

import os
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ckconv.models.checkpoint import CheckpointError, atomic_torch_save, read_checkpoint

__all__ = ["AtomicCheckpointIO", "CheckpointError", "atomic_torch_save", "load_checkpoint"]


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The contents of a Lightning checkpoint (:func:`ckconv.models.read_checkpoint`: clear
    errors for missing or bad files), which must hold a ``state_dict``."""
    ckpt = read_checkpoint(path, map_location)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a ckconv/Lightning checkpoint (no 'state_dict')")
    return ckpt


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
