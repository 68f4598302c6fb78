"""``ckconv plot kernels --checkpoint FILE``: kernel pictures and mask sizes of a trained model.

The checkpoint is one written by ``ckconv train`` (Lightning format with the run's config under
the ``"ckconv"`` key): :func:`model_from_checkpoint` rebuilds the model from that config (which
builds the task's datasets to learn the input shape, so the task's data must be readable) and
loads the weights.  Needs the ``app`` extra (lightning, matplotlib).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from torch import nn

from ckconv.viz.kernels import (
    format_mask_table,
    mask_sizes,
    plot_kernels,
    plot_mask_sizes,
    save_figure,
)

__all__ = ["main_plot_kernels", "model_from_checkpoint"]


def model_from_checkpoint(path: str | os.PathLike, *, data_root: str | None = None) -> nn.Module:
    """The model of a ``ckconv train`` checkpoint, with its weights, in eval mode.

    Args:
        path: a ``.ckpt`` file written by ``ckconv train``.
        data_root: where the task's data lives on this machine (overrides the stored
            ``task.root``); the task is built to read its input shape.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a ``ckconv train`` checkpoint, or its weights do not fit
            the model rebuilt from its config.
    """
    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.config import config_from_dict
    from ckconv.app.module import CHECKPOINT_KEY
    from ckconv.app.tasks import build_model_from_config, build_task

    ckpt = load_checkpoint(path)
    extra = ckpt.get(CHECKPOINT_KEY) or {}
    if "config" not in extra:
        raise ValueError(
            f"{path}: no ckconv config inside (not written by `ckconv train`); for a model "
            "object use ckconv.viz.plot_kernels(model) directly"
        )
    cfg = config_from_dict(extra["config"])
    if data_root is not None:
        cfg.task.root = str(data_root)
    model = build_model_from_config(cfg, build_task(cfg))
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit the model rebuilt from its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()


def main_plot_kernels(argv: list[str] | None = None) -> int:
    """``ckconv plot kernels``: draw the learned kernels of every layer of a checkpoint's model
    and the FlexConv mask sizes; print the mask-size table."""
    parser = argparse.ArgumentParser(
        prog="ckconv plot kernels",
        description=(
            "Pictures of a trained model's continuous kernels (1D: channel x position images; "
            "2D: tiles) and of its FlexConv mask sizes per layer."
        ),
    )
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by ckconv train")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for kernels.png and mask_sizes.png (default: the checkpoint's run folder)",
    )
    parser.add_argument("--data-root", default=None, help="the task's data folder on this machine")
    parser.add_argument("--max-layers", type=int, default=12, help="layers drawn (default 12)")
    parser.add_argument(
        "--max-channels", type=int, default=64, help="1D: channel rows per layer (default 64)"
    )
    parser.add_argument("--max-tiles", type=int, default=8, help="2D/3D: tiles per layer")
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args(argv)
    for name in ("max_layers", "max_channels", "max_tiles", "dpi"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    try:
        model = model_from_checkpoint(args.checkpoint, data_root=args.data_root)
    except (FileNotFoundError, ValueError) as err:
        print(f"ckconv plot kernels: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else _default_out(Path(args.checkpoint))
    try:
        fig = plot_kernels(
            model,
            max_layers=args.max_layers,
            max_channels=args.max_channels,
            max_tiles=args.max_tiles,
            title=f"learned kernels of {Path(args.checkpoint).name}",
        )
    except ValueError as err:  # a model without continuous convolutions (a baseline)
        print(f"ckconv plot kernels: {err}", file=sys.stderr)
        return 2
    written = [save_figure(fig, out / "kernels.png", dpi=args.dpi)]
    rows = mask_sizes(model)
    if rows:
        print(format_mask_table(rows))
        written.append(save_figure(plot_mask_sizes(model), out / "mask_sizes.png", dpi=args.dpi))
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
