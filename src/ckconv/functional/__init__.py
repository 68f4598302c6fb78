"""Pure functions: convolutions, masks, neighbour search."""

from ckconv.functional.conv import (
    DIRECT_MAX_TAPS,
    DIRECT_MAX_TAPS_INFERENCE,
    conv,
    direct_conv,
    fft_conv,
    fft_size,
    padding_for,
    select_method,
    validate_conv_args,
)
from ckconv.functional.fft_engine import (
    DEFAULT_MEMORY_BUDGET,
    KernelSpectrum,
    good_fft_size,
    kernel_spectrum,
    spectrum_conv,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "DIRECT_MAX_TAPS",
    "DIRECT_MAX_TAPS_INFERENCE",
    "KernelSpectrum",
    "conv",
    "direct_conv",
    "fft_conv",
    "fft_size",
    "good_fft_size",
    "kernel_spectrum",
    "padding_for",
    "select_method",
    "spectrum_conv",
    "validate_conv_args",
]
