"""FlexConv: continuous kernels with a learnable Gaussian mask that sets their size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ckconv._checks import (
    ArgumentValueError,
    choice,
    open_unit,
    padding_modes,
    positive_number,
)
from ckconv.functional.conv import Method, PaddingMode
from ckconv.grids import RateLike, grid_step
from ckconv.nn.base import KernelNetArg
from ckconv.nn.ckconv import CKConv, KernelSizeArg, resolve_kernel_size
from ckconv.nn.gaussian_mask import GaussianMask

__all__ = ["FlexConv", "GaussianMask", "min_init_sigma"]


def min_init_sigma(kernel_size: Sequence[int], threshold: float, causal: bool) -> float:
    """The narrowest initial mask whose crop keeps the centre tap's neighbours in every
    dimension: ``step / sqrt(-2 ln threshold)`` for the coarsest grid step ``2 / (K - 1)``.

    Below it a centred FlexConv's initial crop is its centre tap alone, where a kernel net of
    relative positions has no shape to learn and the default MAGNet outputs exactly 0
    (``sin(0)``), so the CCNN re-weighting cannot scale it.  A causal crop always keeps the
    present and one past tap (0 for causal kernels).
    """
    if causal:
        return 0.0
    step = max(grid_step(k) for k in kernel_size)
    return step / math.sqrt(-2.0 * math.log(threshold))


class FlexConv(CKConv):
    r"""FlexConv (Romero et al., 2022): a CKConv whose kernel is multiplied by a learnable
    Gaussian mask and cropped where the mask falls below ``mask_threshold``.

    The kernel network is evaluated only on the cropped grid, so small learned kernels are
    cheap; the crop follows ``sigma`` as it trains.  With ``separable=True`` this is the
    SepFlexConv of the CCNN.  The mask is a :class:`GaussianMask` part held as
    ``kernel_mask`` (``CKConv(..., kernel_mask=GaussianMask(...))`` computes the same with
    another default kernel net).

    Args:
        in_channels: input channels (as in :class:`CKConv`, like ``out_channels``, ``data_dim``,
            ``kernel_size``, ``input_size``, ``separable``, ``causal``, ``bias``,
            ``init_gain``, ``method``, ``weighting`` and ``padding_mode``; on a circular axis
            the mask crop and the one-period crop both apply).
        kernel_net: default a :class:`~ckconv.kernelnets.MAGNet` (32 hidden, 3 hidden layers) whose
            Gabor centres are initialised within ``1.667 * mask_init_sigma`` of the mask centre.
        mask_init_sigma: initial mask width (0.075 as in the papers); raised to
            :func:`min_init_sigma` where the kernel grid is so coarse that the initial crop
            would keep the centre tap alone (centred kernels under about 14 samples).
        mask_threshold: crop threshold ``tau`` (0.1).

    The CCNN re-weighting uses ``|Omega|`` = the number of kernel samples inside the crop at
    initialisation.

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``

    Examples:
        >>> conv = FlexConv(3, 8, data_dim=2, kernel_size=33, separable=True)
        >>> conv(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 8, 32, 32])
    """

    kernel_mask: GaussianMask

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        *,
        kernel_size: KernelSizeArg = "same",
        input_size: int | Sequence[int] | None = None,
        kernel_net: KernelNetArg = None,
        separable: bool = False,
        causal: bool = False,
        bias: bool = True,
        init_gain: float | None = 1.0,
        mask_init_sigma: float = 0.075,
        mask_threshold: float = 0.1,
        method: Method = "auto",
        weighting: Literal["none", "density"] = "none",
        padding_mode: PaddingMode = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        choice("data_dim", data_dim, (1, 2, 3))
        modes = padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
        circular = tuple(m == "circular" for m in modes)
        ks = resolve_kernel_size(kernel_size, input_size, data_dim, causal, circular)
        if min(ks) < 2:
            raise ArgumentValueError(
                f"FlexConv needs at least 2 kernel samples per dimension, got kernel_size="
                f"{kernel_size!r} (input_size={input_size!r}): a one-sample kernel sits at offset "
                "0, which the mask cannot crop and where the default MAGNet is 0; use CKConv or a "
                "pointwise linear layer",
                "kernel_size",
            )
        threshold = open_unit("mask_threshold", mask_threshold)
        init_sigma = positive_number("mask_init_sigma", mask_init_sigma)
        mask = GaussianMask(
            data_dim,
            causal=causal,
            init_sigma=max(init_sigma, min_init_sigma(ks, threshold, causal)),
            threshold=threshold,
            device=device,
            dtype=dtype,
        )
        super().__init__(
            in_channels,
            out_channels,
            data_dim,
            kernel_size=kernel_size,
            input_size=input_size,
            kernel_net=kernel_net,
            separable=separable,
            causal=causal,
            bias=bias,
            init_gain=init_gain,
            method=method,
            weighting=weighting,
            kernel_mask=mask,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )

    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module:
        from ckconv.kernelnets import MAGNet

        return MAGNet(
            self.data_dim,
            n_out,
            init_extent=self.kernel_mask.init_extent,
            causal=self.causal,
            **factory,
        )

    def cropped_kernel_size(self, rate: RateLike | None = None) -> tuple[int, ...]:
        """Kernel samples per dimension after the mask crop (no input-size crop)."""
        return tuple(a.shape[0] for a in self.kernel_axes(rate, device="cpu", dtype=torch.float64))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_init_sigma={self.kernel_mask.init_sigma}"
