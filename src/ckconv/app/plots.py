"""Pictures of runs: training curves from ``metrics.csv`` (one run, or one metric over several
runs) and the learned continuous kernels.

matplotlib is imported inside the functions (an optional dependency) with the ``Agg`` backend, so
plotting works on machines without a display.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import nn

__all__ = ["metric_series", "plot_curves", "plot_kernels", "plot_runs"]


def _pyplot():
    from ckconv.viz.kernels import pyplot

    return pyplot()


def _save(fig, path: str | os.PathLike) -> None:
    from ckconv.viz.kernels import save_figure

    save_figure(fig, path, dpi=110)


def metric_series(
    rows: Sequence[Mapping[str, str]], key: str, *, window: float = 0
) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of ``key`` in the rows of a ``metrics.csv`` (rows without it skipped).

    ``window > 0`` replaces each value by the mean of the values logged within the last
    ``window`` steps up to it (a trailing mean: a per-step loss logged every 10 steps with
    ``window=500`` averages 50 values; a per-epoch metric is left as it is if epochs are longer).
    """
    if not window >= 0:
        raise ValueError(f"window must be >= 0 steps, got {window}")
    steps, values = [], []
    for row in rows:
        if row.get(key) not in (None, ""):
            steps.append(float(row["step"]))
            values.append(float(row[key]))
    if window > 0:
        smoothed, first, total = [], 0, 0.0
        for i, value in enumerate(values):
            total += value
            while steps[first] <= steps[i] - window:
                total -= values[first]
                first += 1
            if first == i:  # alone in its window: its own value, without the running sum's residue
                total = value
            smoothed.append(total / (i + 1 - first))
        values = smoothed
    return steps, values


def plot_curves(metrics_csv: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Training loss per step and validation loss / metric per epoch from ``metrics.csv``."""
    from ckconv.app.csvlog import read_metrics

    rows = read_metrics(metrics_csv)
    plt = _pyplot()

    val_keys = sorted({k for row in rows for k, v in row.items() if k.startswith("val/") and v})
    panels = 1 + len(val_keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.3), squeeze=False)
    ax = axes[0, 0]
    xs, ys = metric_series(rows, "train/loss")
    if xs:
        ax.plot(xs, ys, lw=0.8, alpha=0.5, label="train (step)")
    xs, ys = metric_series(rows, "train/loss_epoch")
    if xs:
        ax.plot(xs, ys, "o-", lw=1.5, ms=3, label="train (epoch mean)")
    xs, ys = metric_series(rows, "val/loss")
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
        xs, ys = metric_series(rows, key)
        ax.plot(xs, ys, "s-", lw=1.5, ms=3, color="C2")
        ax.set_xlabel("optimiser step")
        ax.set_title(key)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return Path(out)


def plot_runs(
    runs: Mapping[str, Sequence[Mapping[str, str]]],
    metrics: Sequence[str],
    *,
    window: float = 0,
    log: bool | None = None,
):
    """One panel per metric, one line per run: ``runs`` maps a label to the rows of that run's
    ``metrics.csv`` (:func:`ckconv.app.csvlog.read_metrics`); ``window`` smooths each curve
    (:func:`metric_series`); a panel's title names the window only where it averaged something,
    not over a per-epoch metric logged further apart. ``log=None`` uses a log scale where every
    value is positive.
    Returns the matplotlib figure (save it with :func:`ckconv.viz.save_figure`).

    Raises:
        ValueError: a metric no run has, naming it and the runs' metrics.
    """
    for key in metrics:
        if not any(row.get(key) for rows in runs.values() for row in rows):
            have = sorted({k for rows in runs.values() for row in rows for k, v in row.items()
                           if v and k not in ("epoch", "step")})  # fmt: skip
            raise ValueError(f"no run has the metric {key!r}; they have: {', '.join(have)}")
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(5.0 * len(metrics), 3.6), squeeze=False
    )  # fmt: skip
    for ax, key in zip(axes[0], metrics, strict=True):
        averaged = False  # whether any point is a mean of several logged values
        for label, rows in runs.items():
            steps, values = metric_series(rows, key, window=window)
            averaged |= any(b - a < window for a, b in itertools.pairwise(steps))
            if steps:
                ax.plot(steps, values, "-" if len(steps) > 60 else ".-", lw=1.2, label=label)
        ax.set_xlabel("optimiser step")
        ax.set_title(f"{key} (trailing mean over {window:g} steps)" if averaged else key)
        values = [y for line in ax.lines for y in line.get_ydata()]
        if log or (log is None and min(values) > 0):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
