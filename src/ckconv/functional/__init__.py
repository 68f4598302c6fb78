"""Pure functions: convolutions, continuous kernels, masks, irregular samples, point clouds."""

from ckconv.functional.batching import grid_to_points, lengths_to_mask, pack_points, pad_points
from ckconv.functional.ckconv import (
    apply_kernel,
    blur_kernel,
    ckconv,
    flexconv,
    kernel_axes,
    sample_kernel,
)
from ckconv.functional.conv import (
    DIRECT_MAX_TAPS,
    DIRECT_MAX_TAPS_INFERENCE,
    conv,
    direct_conv,
    fft_conv,
    fft_size,
    mix,
    padding_for,
    select_method,
    stream_conv,
    validate_conv_args,
)
from ckconv.functional.fft_engine import (
    DEFAULT_MEMORY_BUDGET,
    KernelSpectrum,
    good_fft_size,
    kernel_spectrum,
    spectrum_conv,
)
from ckconv.functional.irregular import density_weights, irregular_ckconv
from ckconv.functional.masks import crop_counts, cropped_gaussian_mask, gaussian_mask, mask_extent
from ckconv.functional.neighbors import (
    Neighbors,
    farthest_point_sampling,
    gather_neighbors,
    knn,
    radius_search,
    scipy_available,
)
from ckconv.functional.pointconv import (
    kernel_density,
    neighbor_weights,
    point_conv,
    point_flexconv,
    relative_positions,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "DIRECT_MAX_TAPS",
    "DIRECT_MAX_TAPS_INFERENCE",
    "KernelSpectrum",
    "Neighbors",
    "apply_kernel",
    "blur_kernel",
    "ckconv",
    "conv",
    "crop_counts",
    "cropped_gaussian_mask",
    "density_weights",
    "direct_conv",
    "farthest_point_sampling",
    "fft_conv",
    "fft_size",
    "flexconv",
    "gather_neighbors",
    "gaussian_mask",
    "good_fft_size",
    "grid_to_points",
    "irregular_ckconv",
    "kernel_axes",
    "kernel_density",
    "kernel_spectrum",
    "knn",
    "lengths_to_mask",
    "mask_extent",
    "mix",
    "neighbor_weights",
    "pack_points",
    "pad_points",
    "padding_for",
    "point_conv",
    "point_flexconv",
    "radius_search",
    "relative_positions",
    "sample_kernel",
    "scipy_available",
    "select_method",
    "spectrum_conv",
    "stream_conv",
    "validate_conv_args",
]
