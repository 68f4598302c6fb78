"""FlexConv: continuous kernels with a learnable Gaussian mask that sets their size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ckconv.functional.ckconv import flexconv as flexconv_fn
from ckconv.functional.ckconv import flexconv_axes, meshgrid, sample_kernel
from ckconv.functional.conv import Method
from ckconv.functional.masks import gaussian_mask
from ckconv.grids import RateLike, rate_scale
from ckconv.nn.ckconv import CKConv, KernelNetArg, KernelSizeArg

__all__ = ["FlexConv", "GaussianMask"]


class GaussianMask(nn.Module):
    r"""Learnable Gaussian mask :math:`m(x) = \exp(-\tfrac12 \sum_d (x_d-\mu_d)^2/(\sigma_d^2+10^{-8}))`.

    ``sigma`` is learnable per dimension; ``mu`` is fixed (``+1`` causal, ``0`` centred).
    Optimiser helpers find mask parameters by this module type
    (:func:`ckconv.nn.param_groups`).

    Args:
        data_dim: spatial dimensions.
        causal: centre the mask on the current sample (+1) instead of 0.
        init_sigma: initial width (the papers use 0.075).
        threshold: mask value below which kernel positions are cropped.

    Shape:
        - Input: positions ``(..., D)``
        - Output: ``(...)``
    """

    mu: torch.Tensor

    def __init__(
        self,
        data_dim: int,
        *,
        causal: bool = False,
        init_sigma: float = 0.075,
        threshold: float = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not (math.isfinite(init_sigma) and init_sigma > 0):
            raise ValueError(f"init_sigma must be positive, got {init_sigma!r}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        self.data_dim = data_dim
        self.causal = causal
        self.init_sigma = init_sigma
        self.threshold = threshold
        self.sigma = nn.Parameter(torch.empty(data_dim, device=device, dtype=dtype))
        self.register_buffer(
            "mu", torch.full((data_dim,), 1.0 if causal else 0.0, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.sigma, self.init_sigma)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return gaussian_mask(positions, self.mu.to(positions.dtype), self.sigma.to(positions.dtype))

    def extra_repr(self) -> str:
        return (
            f"data_dim={self.data_dim}, causal={self.causal}, init_sigma={self.init_sigma}, "
            f"threshold={self.threshold}"
        )


class FlexConv(CKConv):
    r"""FlexConv (Romero et al., 2022): a CKConv whose kernel is multiplied by a learnable
    Gaussian mask and cropped where the mask falls below ``mask_threshold``.

    The kernel network is evaluated only on the cropped grid, so small learned kernels are
    cheap; the crop follows ``sigma`` as it trains.  With ``separable=True`` this is the
    SepFlexConv of the CCNN.

    Args:
        in_channels: input channels (as in :class:`CKConv`, like ``out_channels``, ``data_dim``,
            ``kernel_size``, ``input_size``, ``separable``, ``causal``, ``bias``,
            ``init_gain`` and ``method``).
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # Read by _build_submodules(), which CKConv.__init__ calls before building the kernel
        # net (the default MAGNet's extent depends on the mask width).
        self._mask_args = {"init_sigma": mask_init_sigma, "threshold": mask_threshold}
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
            device=device,
            dtype=dtype,
        )

    def _build_submodules(self, factory: dict[str, Any]) -> None:
        self.mask = GaussianMask(self.data_dim, causal=self.causal, **self._mask_args, **factory)
        del self._mask_args

    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module:
        from ckconv.kernelnets import MAGNet

        return MAGNet(
            self.data_dim,
            n_out,
            init_extent=min(1.0, 1.667 * self.mask.init_sigma),
            causal=self.causal,
            **factory,
        )

    def init_kernel_numel(self) -> int:
        """Kernel samples inside the crop at the initial ``sigma`` (training rate)."""
        sigma = torch.full((self.data_dim,), self.mask.init_sigma, dtype=torch.float64)
        axes = flexconv_axes(
            self.kernel_size,
            sigma,
            self.mask.threshold,
            causal=self.causal,
            rate=None,
            input_size=None,
            device="cpu",
            dtype=torch.float64,
        )
        return math.prod(a.shape[0] for a in axes)

    def reset_parameters(self) -> None:
        self.mask.reset_parameters()
        super().reset_parameters()

    def kernel(
        self,
        rate: RateLike | None = None,
        input_size: Sequence[int] | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The masked, cropped kernel as a conv weight (see :meth:`CKConv.kernel`)."""
        ref = self._reference_tensor()
        device = device or ref.device
        dtype = dtype or ref.dtype
        axes = flexconv_axes(
            self.kernel_size,
            self.mask.sigma,
            self.mask.threshold,
            causal=self.causal,
            rate=rate,
            input_size=input_size,
            device=device,
            dtype=dtype,
        )
        grid = meshgrid(axes)
        return sample_kernel(
            self.kernel_net,
            grid,
            self.in_channels,
            separable=self.separable,
            scale=rate_scale(rate, self.data_dim),
            mask=self.mask(grid),
        )

    def cropped_kernel_size(self, rate: RateLike | None = None) -> tuple[int, ...]:
        """Kernel samples per dimension after the mask crop (no input-size crop)."""
        axes = flexconv_axes(
            self.kernel_size,
            self.mask.sigma,
            self.mask.threshold,
            causal=self.causal,
            rate=rate,
            input_size=None,
            device="cpu",
            dtype=torch.float64,
        )
        return tuple(a.shape[0] for a in axes)

    def _forward_grid(self, input: torch.Tensor, rate: RateLike | None, blur: bool) -> torch.Tensor:
        return flexconv_fn(
            input,
            self.kernel_net,
            self.kernel_size,
            self.mask.mu,
            self.mask.sigma,
            self.bias,
            mixer=self.mixer,
            threshold=self.mask.threshold,
            causal=self.causal,
            rate=rate,
            blur=blur,
            method=self.method,
        )

    def _gaussian(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        return self.mask.mu, self.mask.sigma, self.mask.threshold

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_init_sigma={self.mask.init_sigma}"
