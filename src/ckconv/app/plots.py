"""Pictures of a run: training curves from ``metrics.csv`` and the learned continuous kernels.

matplotlib is imported inside the functions (an optional dependency) with the ``Agg`` backend, so
plotting works on machines without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

__all__ = ["plot_curves", "plot_kernels"]


def _pyplot():
    from ckconv.viz.kernels import pyplot

    return pyplot()


def _save(fig, path: str | os.PathLike) -> None:
    from ckconv.viz.kernels import save_figure

    save_figure(fig, path, dpi=110)


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


def plot_kernels(
    model: nn.Module,
    out: str | os.PathLike,
    *,
    rate: float | None = None,
    max_layers: int = 6,
) -> Path | None:
    """The run's kernel picture: :func:`ckconv.viz.plot_kernels` of the first ``max_layers``
    continuous convolutions, sampled at the training rate or at ``rate`` times it, written to
    ``out``. Returns None if the model has no continuous convolution (e.g. a baseline)."""
    from ckconv.viz.kernels import continuous_convs
    from ckconv.viz.kernels import plot_kernels as draw

    if not continuous_convs(model):
        return None
    where = "training rate" if rate in (None, 1, 1.0) else f"{rate:g}x the training rate"
    fig = draw(
        model, rate=rate, max_layers=max_layers, title=f"learned kernels, sampled at {where}"
    )
    _save(fig, out)
    return Path(out)
