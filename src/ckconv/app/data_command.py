"""``ckconv data list``: every task, its input shape and whether its data is on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from ckconv.data.registry import TaskRow, default_root, list_tasks

__all__ = ["format_task_table", "main_data_list"]


def format_task_table(rows: list[TaskRow]) -> str:
    """Aligned text table of :func:`list_tasks` rows."""
    header = ("task", "shape", "classes", "found", "path")
    body = [
        (
            r.name,
            "x".join(str(s) for s in r.shape),
            "regression" if r.classes is None else str(r.classes),
            "yes" if r.found else "no",
            r.path,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(v.ljust(w) for v, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)).rstrip() for b in body]
    return "\n".join(lines)


def main_data_list(argv: list[str] | None = None) -> int:
    """``ckconv data list [--root DIR]``: print every task, its shape and whether its files exist."""
    parser = argparse.ArgumentParser(prog="ckconv data list", description=main_data_list.__doc__)
    parser.add_argument(
        "--root", type=Path, default=None, help="data directory (default: $CKCONV_DATA or ./data)"
    )
    args = parser.parse_args(argv)
    rows = list_tasks(args.root)
    print(format_task_table(rows))
    found = sum(r.found for r in rows)
    print(f"\n{found} of {len(rows)} tasks have their data (root: {args.root or default_root()})")
    return 0
