"""Errors the ``ckconv`` command reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A file that is not a readable ckconv checkpoint (truncated, corrupt, not ours)."""
