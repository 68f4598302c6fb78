"""``metrics.csv`` of a run, continued exactly by ``--resume``.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts in a non-empty folder,
which loses the history of a resumed run. :class:`ResumableCSVLogger` keeps the rows of an existing
file that were logged before the checkpoint being resumed (``step`` below the checkpoint's
``global_step``: rows are logged at the number of optimiser steps done) and appends from there, so
a killed-and-resumed run ends with the same file as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["ResumableCSVLogger", "read_metrics"]


def read_metrics(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``metrics.csv`` (a torn last line from a killed writer is dropped)."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


class ResumableCSVLogger(Logger):
    """Append-only CSV of logged metrics (one row per logging call, a ``step`` column).

    Args:
        path: the CSV file.
        keep_before_step: on resume, keep the existing rows whose ``step`` is below this (the
            resumed checkpoint's ``global_step``) and drop the rest; None starts a fresh file.
    """

    def __init__(self, path: str | os.PathLike, keep_before_step: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._keys: list[str] = []
        self._pending: list[dict[str, Any]] = []
        self._rows = 0
        if keep_before_step is not None and rank_zero_only.rank == 0:
            rows = [r for r in read_metrics(self.path) if float(r["step"]) < keep_before_step]
            for row in rows:
                for k in row:
                    if k not in self._keys:
                        self._keys.append(k)
            self._rewrite(rows)
            self._rows = len(rows)
        elif rank_zero_only.rank == 0 and self.path.exists():
            self.path.unlink()

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return self.path.parent.name

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @property
    def num_rows(self) -> int:
        """Rows logged so far (written or pending)."""
        return self._rows

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The resolved config is written as ``config.yaml`` by the run; nothing to do here."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row: dict[str, Any] = {}
        for k, v in metrics.items():
            row[k] = v.item() if hasattr(v, "item") else v
        row["step"] = step if step is not None else self._rows
        self._pending.append(row)
        self._rows += 1

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        from ckconv.app.run_dir import atomic_write_text

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._ordered_keys(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def _ordered_keys(self) -> list[str]:
        rest = sorted(k for k in self._keys if k not in ("epoch", "step"))
        return [k for k in ("epoch", "step") if k in self._keys] + rest

    @rank_zero_only
    def save(self) -> None:
        if not self._pending:
            return
        new = [k for row in self._pending for k in row if k not in self._keys]
        if new or not self.path.exists():
            old = read_metrics(self.path)
            for k in new:
                if k not in self._keys:
                    self._keys.append(k)
            self._rewrite(old + self._pending)
        else:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=self._ordered_keys(), lineterminator="\n")
            writer.writerows(self._pending)
            with self.path.open("a", newline="") as f:
                f.write(buf.getvalue())
        self._pending = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
