"""``ckconv plot kernels --checkpoint FILE``: kernel pictures and mask sizes of a trained model;
``ckconv plot curves RUN [RUN ...]``: one metric of several runs in one picture.

The model comes from the checkpoint alone (:func:`ckconv.models.load_checkpoint`). Checkpoints
written before they stored their model spec are rebuilt from their run config, which reads the
task's data to learn the input shape (``--data-root`` points at it on another machine).
The pictures are :mod:`ckconv.viz`'s.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from ckconv._checks import InputError
from ckconv.app.checkpoint import rebuild_model, resolve_checkpoint
from ckconv.app.run_dir import RunPaths
from ckconv.nn import PointConv
from ckconv.viz.kernels import (
    format_mask_table,
    mask_sizes,
    plot_kernels,
    plot_mask_sizes,
    save_figure,
)

__all__ = ["main_plot_curves", "main_plot_kernels"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckconv plot kernels",
        description=(
            "Pictures of a trained model's continuous kernels (1D: channel x position images; "
            "2D: tiles) and of its FlexConv mask sizes per layer."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a .ckpt written by ckconv train, or a run folder (its best checkpoint)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="folder for kernels.png and mask_sizes.png (default: the checkpoint's run folder)",
    )
    parser.add_argument("--data-root", default=None, help="the task's data folder on this machine")
    parser.add_argument(
        "--max-layers", type=int, default=12, help="layers drawn (default %(default)s)"
    )
    parser.add_argument(
        "--max-channels",
        type=int,
        default=64,
        help="1D: channel rows per layer (default %(default)s)",
    )
    parser.add_argument(
        "--max-tiles", type=int, default=8, help="2D/3D: tiles per layer (default %(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="sample the kernels at RATE x the training resolution (e.g. 2: the finer grid)",
    )
    parser.add_argument("--dpi", type=int, default=110, help="resolution (default %(default)s)")
    return parser


def main_plot_kernels(argv: list[str] | None = None) -> int:
    """``ckconv plot kernels``: draw the learned kernels of every layer of a checkpoint's model
    and the FlexConv mask sizes; print the mask-size table."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("max_layers", "max_channels", "max_tiles", "dpi"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    overrides = [] if args.data_root is None else [("task.root", args.data_root)]
    try:
        checkpoint = resolve_checkpoint(args.checkpoint)
        model = rebuild_model(checkpoint, overrides).model
    except (FileNotFoundError, InputError) as err:  # a bad checkpoint or data root
        print(f"ckconv plot kernels: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else _default_out(checkpoint)
    try:
        fig = plot_kernels(
            model,
            max_layers=args.max_layers,
            max_channels=args.max_channels,
            max_tiles=args.max_tiles,
            rate=args.rate,
            title=f"learned kernels of {checkpoint.name}"
            + ("" if args.rate is None else f" at {args.rate:g}x the training resolution"),
        )
    except ValueError as err:  # a model without continuous convolutions (a baseline)
        print(f"ckconv plot kernels: {err}", file=sys.stderr)
        return 2
    written = [save_figure(fig, out / "kernels.png", dpi=args.dpi)]
    rows = mask_sizes(model)
    if rows:
        print(format_mask_table(rows))
        written.append(save_figure(plot_mask_sizes(model), out / "mask_sizes.png", dpi=args.dpi))
    elif any(isinstance(m, PointConv) for m in model.modules()):
        print("point convolutions: no grid kernel size to tabulate (the mask sigmas are in the "
              "picture's titles)")  # fmt: skip
    else:
        print("no FlexConv layers: the kernels have fixed sizes")
    print("wrote " + ", ".join(os.fspath(p) for p in written))
    return 0


def _default_out(checkpoint: Path) -> Path:
    """``<run>/plots`` for ``<run>/checkpoints/x.ckpt``, else the checkpoint's folder."""
    parent = checkpoint.resolve().parent
    if parent.name == "checkpoints":
        return parent.parent / "plots"
    return parent


_DEFAULT_METRIC = "val/loss"  # what ckconv plot curves draws without --metric


def _curves_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckconv plot curves",
        description=(
            "Metrics of several runs in one picture, one line per run, one panel per metric "
            "(e.g. the seeds of one config)."
        ),
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders of ckconv train, or metrics.csv files"
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=None,
        help=f"a column of metrics.csv, repeatable (default: {_DEFAULT_METRIC})",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=None,
        help="a legend label per RUN, in order (default: the run's config name and seed)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=0,
        help="smooth each curve by a trailing mean over this many optimiser steps (e.g. 500 for "
        "train/loss; per-epoch metrics keep their values; default %(default)s: no smoothing)",
    )
    parser.add_argument("--linear", action="store_true", help="a linear y axis (without it: "
                        "log where every value is positive)")  # fmt: skip
    parser.add_argument("--out", default="curves.png", help="the picture (default %(default)s)")
    parser.add_argument("--dpi", type=int, default=110, help="resolution (default %(default)s)")
    return parser


def _run_label(run: Path) -> str:
    """``<name> seed <seed>`` from the run folder's config.yaml, else the folder's name."""
    import yaml

    try:
        cfg = yaml.safe_load(RunPaths(run).config.read_text())
        return f"{cfg['name']} seed {cfg['seed']}"
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return run.name


def main_plot_curves(argv: list[str] | None = None) -> int:
    """``ckconv plot curves``: draw metrics of several runs' ``metrics.csv`` in one picture."""
    from ckconv.app.csvlog import read_metrics
    from ckconv.app.plots import plot_runs

    parser = _curves_parser()
    args = parser.parse_args(argv)
    if args.dpi < 1:
        parser.error(f"--dpi must be >= 1, got {args.dpi}")
    if not args.window >= 0:  # also refuses nan
        parser.error(f"--window must be >= 0 steps, got {args.window:g}")
    if args.label is not None and len(args.label) != len(args.runs):
        parser.error(f"--label given {len(args.label)} times for {len(args.runs)} runs")
    runs: dict[str, list[dict[str, str]]] = {}
    for i, given in enumerate(args.runs):
        path = Path(given)
        metrics_csv = path if path.is_file() else RunPaths(path).metrics
        try:
            rows = read_metrics(metrics_csv)
        except (UnicodeDecodeError, csv.Error):  # e.g. a picture given for a RUN
            rows = []
        if not rows or "step" not in rows[0]:
            print(f"ckconv plot curves: RUN {given!r}: no metrics in {os.fspath(metrics_csv)!r} (expected "
                  "a run folder of ckconv train or its metrics.csv)", file=sys.stderr)  # fmt: skip
            return 2
        folder = metrics_csv.parent
        label = args.label[i] if args.label else _run_label(folder)
        if label in runs:  # two runs of one config and seed: tell them apart by folder
            label = f"{label} ({folder.name})"
        if label in runs:
            parser.error(f"two runs are labelled {label!r}: give each RUN a --label")
        runs[label] = rows
    try:
        fig = plot_runs(
            runs, args.metric or [_DEFAULT_METRIC], window=args.window, log=False if args.linear else None
        )  # fmt: skip
    except ValueError as err:
        print(f"ckconv plot curves: --metric: {err}", file=sys.stderr)
        return 2
    print("wrote " + os.fspath(save_figure(fig, args.out, dpi=args.dpi)))
    return 0
