"""Errors the ``ckconv`` command reports as one line (exit code 2) instead of a traceback."""

from __future__ import annotations

from ckconv.models.checkpoint import CheckpointError

__all__ = ["CheckpointError"]
