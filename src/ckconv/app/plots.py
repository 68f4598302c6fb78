"""Pictures of a run: training curves from ``metrics.csv`` and the learned continuous kernels.

matplotlib is imported inside the functions (an optional dependency) with the ``Agg`` backend, so
plotting works on machines without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["plot_curves", "plot_kernels"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_curves(metrics_csv: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Training loss per step and validation loss / metric per epoch from ``metrics.csv``."""
    from ckconv.app.csvlog import read_metrics

    rows = read_metrics(metrics_csv)
    plt = _pyplot()

    def series(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for row in rows:
            if row.get(key) not in (None, ""):
                xs.append(float(row["step"]))
                ys.append(float(row[key]))
        return xs, ys

    val_keys = sorted({k for row in rows for k, v in row.items() if k.startswith("val/") and v})
    panels = 1 + len(val_keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.3), squeeze=False)
    ax = axes[0, 0]
    xs, ys = series("train/loss")
    if xs:
        ax.plot(xs, ys, lw=0.8, alpha=0.5, label="train (step)")
    xs, ys = series("train/loss_epoch")
    if xs:
        ax.plot(xs, ys, "o-", lw=1.5, ms=3, label="train (epoch mean)")
    xs, ys = series("val/loss")
    if xs:
        ax.plot(xs, ys, "s-", lw=1.5, ms=3, label="val")
    ax.set_xlabel("optimiser step")
    ax.set_title("loss")
    if ax.lines:
        ax.legend(fontsize=8)
        if min(min(line.get_ydata()) for line in ax.lines) > 0:
            ax.set_yscale("log")
    for i, key in enumerate(val_keys):
        ax = axes[0, 1 + i]
        xs, ys = series(key)
        ax.plot(xs, ys, "s-", lw=1.5, ms=3, color="C2")
        ax.set_xlabel("optimiser step")
        ax.set_title(key)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return Path(out)


@torch.no_grad()
def plot_kernels(
    model: nn.Module,
    out: str | os.PathLike,
    *,
    rate: float | None = None,
    max_layers: int = 6,
    max_channels: int = 8,
) -> Path | None:
    """The kernels of the first ``max_layers`` continuous convolutions (rows), a few channels each,
    sampled at the training rate or at ``rate`` times it.

    1D kernels are drawn as curves, 2D kernels as images (3D: the middle slice). Returns None if
    the model has no continuous convolution.
    """
    from ckconv.nn import CKConv

    convs = [m for m in model.modules() if isinstance(m, CKConv)][:max_layers]
    if not convs:
        return None
    plt = _pyplot()
    dims = convs[0].data_dim
    cols = 1 if dims == 1 else max_channels
    fig, axes = plt.subplots(
        len(convs), cols, figsize=(7.5 if dims == 1 else 1.3 * cols, 1.6 * len(convs)),
        squeeze=False,
    )  # fmt: skip
    for row, conv in enumerate(convs):
        k = conv.kernel(rate).detach().float().cpu()  # (C_out, C_in, *K) or (C_in, 1, *K)
        flat = k.reshape(-1, *k.shape[2:])
        picks = flat[: max_channels if dims != 1 else min(max_channels, flat.shape[0])]
        if conv.data_dim == 1:
            ax = axes[row, 0]
            x = torch.linspace(-1, 1, picks.shape[-1])
            for c in range(picks.shape[0]):
                ax.plot(x.numpy(), picks[c].numpy(), lw=0.9)
            ax.set_ylabel(f"layer {row}", fontsize=8)
            ax.tick_params(labelsize=7)
        else:
            for c in range(cols):
                ax = axes[row, c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= picks.shape[0]:
                    ax.axis("off")
                    continue
                img = picks[c]
                while img.dim() > 2:  # 3D: the middle slice
                    img = img[img.shape[0] // 2]
                lim = float(img.abs().max()) or 1.0
                ax.imshow(img.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
                if c == 0:
                    ax.set_ylabel(f"layer {row}", fontsize=8)
    size = "x".join(str(s) for s in convs[0].kernel(rate).shape[2:])
    where = "training rate" if rate in (None, 1, 1.0) else f"{rate}x the training rate"
    fig.suptitle(f"learned continuous kernels, sampled at {where} ({size} taps)", fontsize=9)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return Path(out)
