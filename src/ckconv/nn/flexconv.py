"""FlexConv: continuous kernels with a learnable Gaussian mask that sets their size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ckconv._checks import open_unit, positive_number
from ckconv.functional.conv import Method, PaddingMode
from ckconv.grids import RateLike
from ckconv.nn.base import KernelNetArg
from ckconv.nn.ckconv import CKConv, KernelSizeArg
from ckconv.nn.gaussian_mask import GaussianMask

__all__ = ["FlexConv", "GaussianMask"]


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
        mask_init_sigma: initial mask width (0.075 as in the papers).
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
        mask = GaussianMask(
            data_dim,
            causal=causal,
            init_sigma=positive_number("mask_init_sigma", mask_init_sigma),
            threshold=open_unit("mask_threshold", mask_threshold),
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
