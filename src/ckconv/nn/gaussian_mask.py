"""The learned Gaussian mask part of FlexConv and PointFlexConv."""

from __future__ import annotations

import math

import torch
from torch import nn

from ckconv._checks import open_unit, positive_int, positive_number
from ckconv.functional.masks import SIGMA_EPS, gaussian_mask

__all__ = ["GaussianMask"]


class GaussianMask(nn.Module):
    r"""Learnable Gaussian mask :math:`m(x) = \exp(-\tfrac12 \sum_d (x_d-\mu_d)^2/(\sigma_d^2+10^{-8}))`.

    ``sigma`` is learnable per dimension (or one for all with ``isotropic``); ``mu`` is fixed
    (``+1`` causal, ``0`` centred).  It is the mask part a continuous convolution holds as
    ``kernel_mask`` (:class:`~ckconv.nn.base.ContinuousConv`); optimiser helpers find its
    parameters by this type (:func:`ckconv.nn.param_groups`).

    Args:
        data_dim: spatial dimensions.
        causal: centre the mask on the current sample (+1) instead of 0.
        init_sigma: initial width (the papers use 0.075).
        threshold: mask value below which kernel positions are cropped.
        isotropic: one ``sigma`` (shape ``(1,)``) for every dimension.

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
        isotropic: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = positive_int("data_dim", data_dim)
        self.init_sigma = positive_number("init_sigma", init_sigma)
        self.threshold = open_unit("threshold", threshold)
        self.causal = bool(causal)
        self.isotropic = bool(isotropic)
        n = 1 if self.isotropic else data_dim
        self.sigma = nn.Parameter(torch.empty(n, device=device, dtype=dtype))
        self.register_buffer(
            "mu", torch.full((n,), 1.0 if causal else 0.0, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.sigma, self.init_sigma)

    @property
    def init_extent(self) -> float:
        """Where the default MAGNet's Gabor centres start: within ``1.667 * init_sigma`` of
        the mask centre (at most the whole domain)."""
        return min(1.0, 1.667 * self.init_sigma)

    def extent(self, dims: int | None = None) -> torch.Tensor:
        """Distance from the centre per dimension ``(dims,)`` beyond which the mask is below
        ``threshold`` (no gradient: the crop is a selection, not a value)."""
        sigma = self.sigma.detach()
        reach = math.sqrt(-2.0 * math.log(self.threshold))
        return ((sigma.square() + SIGMA_EPS).sqrt() * reach).expand(dims or self.data_dim)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Mask values at ``positions`` (the crop is applied by the layer: grid layers sample
        only inside it, point layers use :func:`~ckconv.functional.point_flexconv`)."""
        d = positions.shape[-1]
        mu = self.mu.to(positions.dtype).expand(d)
        return gaussian_mask(positions, mu, self.sigma.to(positions.dtype).expand(d))

    def extra_repr(self) -> str:
        s = (
            f"data_dim={self.data_dim}, causal={self.causal}, init_sigma={self.init_sigma}, "
            f"threshold={self.threshold}"
        )
        return s + (", isotropic=True" if self.isotropic else "")
