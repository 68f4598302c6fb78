"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)``.

Lightning's default ``TorchCheckpointIO`` writes through an fsspec transaction. For local paths
fsspec stages the bytes in a temporary file from :func:`tempfile.mkstemp` (the system temp dir,
often another filesystem) and then ``shutil.move``s it into place: across filesystems that is a
copy straight into the destination, so a process killed during the copy leaves a truncated
checkpoint, and nothing is fsync'ed. :class:`AtomicCheckpointIO` writes a temporary file *in the
destination directory*, fsyncs it, ``os.replace``s it over the target (atomic on POSIX and
Windows) and fsyncs the directory: a reader sees the old file or the new one, never a mix.

Loading always uses ``weights_only=True``: only tensors and plain Python containers/scalars are
unpickled. Everything ckconv and Lightning put in a checkpoint is of that kind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ckconv.app.errors import CheckpointError

__all__ = ["AtomicCheckpointIO", "CheckpointError", "atomic_torch_save", "load_checkpoint"]


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` so that ``path`` is either the old or the complete new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; clear errors for missing or bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: not a loadable checkpoint with weights_only=True ({type(err).__name__}: "
            f"{str(err).split('. ')[0].splitlines()[0] if str(err) else ''})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
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
