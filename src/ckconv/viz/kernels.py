"""Pictures of a model's continuous kernels and FlexConv mask sizes.

:func:`plot_kernels` draws the kernel of every continuous convolution
(:class:`~ckconv.nn.ContinuousConv`: CKConv, FlexConv, PointConv, ...) of a model, as its
:meth:`~ckconv.nn.ContinuousConv.kernel` generates it at the training resolution, like CCNN
Fig. 12: 1D kernels as one ``channel x position`` image per layer (a FlexConv kernel is drawn
over its cropped extent inside ``[-1, 1]``, so the learned size is visible); 2D kernels as a row
of tiles (one per channel); 3D kernels as tiles of their middle slice.  :func:`mask_sizes`
lists each FlexConv's learned mask width and the kernel size it crops to, and
:func:`plot_mask_sizes` draws it.

matplotlib is an optional dependency: it is imported inside the functions, with the ``Agg``
backend, so the functions work on machines without a display.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ckconv._checks import positive_int, positive_number
from ckconv.nn import CKConv, ContinuousConv
from ckconv.nn import continuous_convs as _continuous_convs

__all__ = [
    "MaskSize",
    "continuous_convs",
    "format_mask_table",
    "mask_sizes",
    "plot_kernels",
    "plot_mask_sizes",
    "pyplot",
    "save_figure",
]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive ``Agg`` backend (imported on first use)."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'ckconv[app]' (or pip install matplotlib)"
        ) from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file, then a rename) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        pyplot().close(fig)
    return path


def continuous_convs(model: nn.Module) -> list[tuple[str, ContinuousConv]]:
    """``(qualified name, layer)`` of every continuous convolution
    (:class:`~ckconv.nn.ContinuousConv`: grid or point) in ``model``, in module order."""
    return [(name or "(model)", m) for name, m in _continuous_convs(model)]


@dataclass(frozen=True)
class MaskSize:
    """The learned size of one FlexConv layer.

    Attributes:
        layer: qualified module name.
        sigma: mask width per spatial dimension (positions span ``[-1, 1]``).
        kernel_size: kernel samples per dimension at the training rate, before cropping.
        cropped_size: samples per dimension inside the crop (where the mask exceeds its
            threshold): what the kernel net is evaluated on and the convolution uses.
        fraction: ``prod(cropped_size) / prod(kernel_size)``.
    """

    layer: str
    sigma: tuple[float, ...]
    kernel_size: tuple[int, ...]
    cropped_size: tuple[int, ...]
    fraction: float


@torch.no_grad()
def mask_sizes(model: nn.Module) -> list[MaskSize]:
    """The mask width and cropped kernel size of every grid convolution with a mask part
    (FlexConv) in ``model`` (module order).

    Examples:
        >>> from ckconv.nn import FlexConv
        >>> conv = FlexConv(2, 4, kernel_size=101)
        >>> row = mask_sizes(conv)[0]
        >>> row.kernel_size, row.cropped_size, round(row.sigma[0], 3)
        ((101,), (17,), 0.075)
    """
    rows = []
    for name, conv in continuous_convs(model):
        if not isinstance(conv, CKConv) or conv.kernel_mask is None:
            continue
        full = conv.kernel_size
        cropped = tuple(len(a) for a in _axes(conv))
        sigma = tuple(float(s) for s in _sigma(conv))
        rows.append(MaskSize(name, sigma, full, cropped, math.prod(cropped) / math.prod(full)))
    return rows


def format_mask_table(rows: list[MaskSize]) -> str:
    """:func:`mask_sizes` as a Markdown table."""
    header = ["layer", "sigma", "kernel size", "cropped size", "fraction"]
    body = [
        [
            r.layer,
            ", ".join(f"{s:.3f}" for s in r.sigma),
            "x".join(map(str, r.kernel_size)),
            "x".join(map(str, r.cropped_size)),
            f"{r.fraction:.1%}",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in body]
    return "\n".join(lines)


def _axes(conv: ContinuousConv, rate: float | None = None) -> list[torch.Tensor]:
    """Positions per dimension at which :meth:`ContinuousConv.kernel` samples the kernel."""
    return conv.kernel_axes(rate, device="cpu", dtype=torch.float64)


def _sigma(conv: ContinuousConv) -> torch.Tensor:
    """The mask part's width per dimension."""
    assert conv.kernel_mask is not None
    return conv.kernel_mask.sigma.detach().abs().cpu().expand(conv.data_dim)


def _half_steps(axes: list[torch.Tensor], full: tuple[int, ...], rate: float | None):
    """Half the sample spacing per dimension (the pixel half-width of the pictures)."""
    return [
        float(a[1] - a[0]) / 2 if len(a) > 1 else 1.0 / max(k - 1, 1) / float(rate or 1.0)
        for a, k in zip(axes, full)
    ]


def _channels(kernel: torch.Tensor) -> tuple[torch.Tensor, str]:
    """``(C_out, C_in, *K)`` or separable ``(C_in, 1, *K)`` -> ``(rows, *K)`` and a row label."""
    if kernel.shape[1] == 1:
        return kernel[:, 0], "channel"
    return kernel.reshape(-1, *kernel.shape[2:]), "out x in channel"


@torch.no_grad()
def plot_kernels(
    model: nn.Module,
    *,
    max_layers: int = 12,
    max_channels: int = 64,
    max_tiles: int = 8,
    rate: float | None = None,
    title: str | None = None,
):
    """Pictures of the learned kernels of every continuous convolution in ``model``.

    One row per layer (at most ``max_layers``).  1D: a ``channel x position`` image of at most
    ``max_channels`` channels (dense layers: the first ``out x in`` pairs), drawn over the
    kernel's positions in ``[-1, 1]`` (a FlexConv's cropped kernel covers only part of the
    axis; the dashed lines mark the crop).  2D: ``max_tiles`` tiles, one per channel.  3D: tiles
    of the middle slice along the first spatial axis.  Each row is titled with the layer's name,
    kernel size and, for a FlexConv, its mask width.  Colours are symmetric around 0 per layer.

    Args:
        model: any module containing continuous convolutions (or such a layer itself); point
            layers are drawn on their reference grid of offsets.
        max_layers, max_channels, max_tiles: caps on what is drawn.
        rate: sample the grid layers' kernels at ``rate`` times the training sampling rate (e.g. ``2.0``:
            the finer grid a model evaluated at twice the resolution uses, where high
            frequencies of Sine kernels show, CKConv Fig. 9); ``None`` is the training rate.
        title: figure title.

    Returns:
        A :class:`matplotlib.figure.Figure` (save it with :func:`save_figure`).

    Examples:
        >>> from ckconv.nn import FlexConv
        >>> fig = plot_kernels(FlexConv(3, 8, kernel_size=65, input_size=64))
        >>> len(fig.axes) >= 1
        True
    """
    for name, value in (
        ("max_layers", max_layers), ("max_channels", max_channels), ("max_tiles", max_tiles)
    ):  # fmt: skip
        positive_int(name, value)
    convs = continuous_convs(model)
    if not convs:
        raise ValueError(
            f"{type(model).__name__} has no continuous convolution (CKConv / FlexConv) to plot"
        )
    convs = convs[:max_layers]
    positive_number("rate", rate, allow_none=True)
    plt = pyplot()
    one_d = all(conv.data_dim == 1 for _, conv in convs)
    cols = 1 if one_d else max_tiles
    fig_w = 7.0 if one_d else 1.2 * cols
    row_h = 1.5
    fig, axes = plt.subplots(
        len(convs), cols, figsize=(fig_w, row_h * len(convs) + 0.5), squeeze=False
    )
    for row, (name, conv) in enumerate(convs):
        picture = _LayerPicture.of(name, conv, rate)
        if conv.data_dim == 1 and cols == 1:
            _draw_sequence_row(fig, axes[row, 0], picture, max_channels, row == len(convs) - 1)
        else:
            _draw_tile_row(axes[row], picture)
    where = "training resolution" if rate in (None, 1.0) else f"{rate:g}x the training resolution"
    fig.suptitle(title or f"learned kernels ({where})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


@dataclass
class _LayerPicture:
    """What one row of :func:`plot_kernels` draws of one layer."""

    head: str  # the row's title
    channels: torch.Tensor  # (channels, *cropped K)
    label: str  # what the channel axis counts
    lim: float  # symmetric colour limit
    axes: list[torch.Tensor]  # kernel positions per dimension
    halves: list[float]  # half a sample step per dimension (pixel edges)
    masked: bool  # a mask part crops the kernel (dashed crop lines)

    @classmethod
    def of(cls, name: str, conv: ContinuousConv, rate: float | None) -> _LayerPicture:
        # grid layers are drawn at ``rate``; point layers on their reference grid of offsets
        layer_rate = rate if isinstance(conv, CKConv) else None
        kernel = conv.kernel(layer_rate).detach().float().cpu()
        channels, label = _channels(kernel)
        full = conv.kernel_size if isinstance(conv, CKConv) else tuple(kernel.shape[2:])
        all_axes = _axes(conv, layer_rate)
        head = f"{name}: kernel {'x'.join(map(str, full))}"
        masked = conv.kernel_mask is not None
        if masked:
            sigma = ", ".join(f"{float(s):.3f}" for s in _sigma(conv))
            cropped = "x".join(map(str, channels.shape[1:]))
            head += f", mask sigma {sigma} -> {cropped} samples"
        lim = float(channels.abs().max()) or 1.0
        halves = list(_half_steps(all_axes, full, layer_rate))
        return cls(head, channels, label, lim, all_axes, halves, masked)


def _draw_sequence_row(fig, ax, picture: _LayerPicture, max_channels: int, last: bool) -> None:
    """A 1D layer: a ``channel x position`` image over ``[-1, 1]`` with its colour bar."""
    shown = picture.channels[:max_channels]
    axis, half, lim = picture.axes[0], picture.halves[0], picture.lim
    first, last_pos = float(axis[0]), float(axis[-1])
    image = ax.imshow(
        shown.numpy(),
        aspect="auto",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        interpolation="nearest",
        extent=(first - half, last_pos + half, shown.shape[0] - 0.5, -0.5),
    )
    ax.set_xlim(-1.0 - half, 1.0 + half)
    if picture.masked:
        for edge in (first - half, last_pos + half):
            ax.axvline(edge, color="0.3", lw=0.6, ls="--")
    ax.set_ylabel(picture.label if shown.shape[0] > 1 else "", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title(picture.head, fontsize=7, loc="left", pad=2)
    fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03).ax.tick_params(labelsize=6)
    if last:
        ax.set_xlabel("relative position", fontsize=7)


def _draw_tile_row(row_axes, picture: _LayerPicture) -> None:
    """2D / 3D tiles over ``[-1, 1]^2`` (3D: the middle slice of the first axis), one per
    channel, so the extent of a FlexConv's crop is visible; the dashed box marks the crop."""
    all_axes, channels, lim = picture.axes, picture.channels, picture.lim
    if len(all_axes) > 1:
        axes2, halves = all_axes[-2:], picture.halves[-2:]
    else:
        axes2, halves = [torch.zeros(1), all_axes[0]], [0.5, picture.halves[0]]
    box = (
        float(axes2[1][0]) - halves[1],
        float(axes2[1][-1]) + halves[1],
        float(axes2[0][-1]) + halves[0],
        float(axes2[0][0]) - halves[0],
    )
    for col, ax in enumerate(row_axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if col >= channels.shape[0]:
            ax.axis("off")
            continue
        tile = channels[col]
        if tile.dim() == 1:
            tile = tile.unsqueeze(0)
        while tile.dim() > 2:
            tile = tile[tile.shape[0] // 2]
        ax.imshow(
            tile.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", extent=box
        )
        ax.set_xlim(-1.0 - halves[1], 1.0 + halves[1])
        ax.set_ylim(1.0 + halves[0], -1.0 - halves[0])
        if picture.masked:
            xs = [box[0], box[1], box[1], box[0], box[0]]
            ax.plot(xs, [box[2], box[2], box[3], box[3], box[2]], color="0.3", lw=0.5, ls="--")
        if col == 0:  # the row's header spans the tiles: kept out of the layout
            text = ax.text(0.0, 1.06, picture.head, fontsize=7, transform=ax.transAxes, va="bottom")
            text.set_in_layout(False)


def plot_mask_sizes(model: nn.Module, *, title: str | None = None):
    """Bar chart of every FlexConv's cropped kernel size per dimension, as a fraction of its
    full kernel size (the learned kernel size, FlexConv paper Fig. 5 style).

    Returns:
        A :class:`matplotlib.figure.Figure`.
    """
    rows = mask_sizes(model)
    if not rows:
        raise ValueError(f"{type(model).__name__} has no FlexConv layer (no learned mask size)")
    plt = pyplot()
    dims = max(len(r.kernel_size) for r in rows)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(rows) * dims + 1.5), 3.0))
    width = 0.8 / dims
    for d in range(dims):
        xs = [i + (d - (dims - 1) / 2) * width for i in range(len(rows))]
        ys = [r.cropped_size[d] / r.kernel_size[d] if d < len(r.kernel_size) else 0.0 for r in rows]
        ax.bar(xs, ys, width=width * 0.95, label=f"dim {d}" if dims > 1 else None)
        for x, y, r in zip(xs, ys, rows):
            if d < len(r.kernel_size):
                ax.annotate(f"{r.cropped_size[d]}", (x, y), ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.layer for r in rows], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("cropped / full kernel size", fontsize=8)
    ax.tick_params(labelsize=7)
    if dims > 1:
        ax.legend(fontsize=7)
    ax.set_title(title or "learned FlexConv kernel sizes (numbers: samples)", fontsize=9)
    fig.tight_layout()
    return fig
