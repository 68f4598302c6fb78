"""Pictures: learned kernels per layer and FlexConv mask sizes (matplotlib, imported lazily)."""

from ckconv.viz.kernels import (
    MaskSize,
    continuous_convs,
    format_mask_table,
    mask_sizes,
    plot_kernels,
    plot_mask_sizes,
    pyplot,
    save_figure,
)

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
