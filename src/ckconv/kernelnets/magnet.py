"""MAGNet: the multiplicative anisotropic Gabor network of FlexConv and CCNN (Romero et al.)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ckconv._checks import positive_number
from ckconv.kernelnets.mfn import MultiplicativeFilterNet, _sample_gamma

__all__ = ["MAGNet"]


class MAGNet(MultiplicativeFilterNet):
    r"""Multiplicative Anisotropic Gabor Network.

    ``h_0 = g_0(x)``, ``h_l = g_l(x) * (W_l h_{l-1} + b_l)``, ``k(x) = W_out h_{L} + b_out``
    with anisotropic Gabor filters

    .. math::
        g_l(x)_c = \exp\Big(-\tfrac12 \sum_d \big(\gamma_{l,c,d}(x_d - \mu_{l,c,d})\big)^2\Big)
                   \sin(W^g_{l,c} \cdot x + b^g_{l,c}).

    ``layers`` counts the linear layers on the multiplicative path including the output layer
    (= number of filters).  The default ``layers=4`` is the CCNN / FlexConv kernel network
    (their ``no_layers=3`` hidden linears, 4 filters).

    Initialisation (:meth:`reset_parameters`, CCNN code and paper):

    - ``gamma_l ~ Gamma(alpha / (l + 1), beta)`` independently per filter and input dimension
      (anisotropic), ``l = 0..layers-1``;
    - ``mu = init_extent * U(-1, 1)``; with ``causal=True`` ``mu = 1 - init_extent * U(0, 1)``
      (filters start on the past side of a causal kernel, whose present is at +1; applied to
      every input dimension);
    - ``W^g`` = ``nn.Linear``'s default draw times ``2 pi omega_0 gamma`` (elementwise over
      input dimensions), ``b^g = 0``;
    - hidden linears Kaiming-uniform with linear gain, bias 1; output linear Kaiming-uniform
      with linear gain, bias 0.

    ``gamma``, ``mu`` and the filter weights are learnable.  :meth:`filter_frequencies` and
    :meth:`max_frequency` report the filters' spectrum for an anti-aliasing penalty.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: number of filters per layer (32 in CCNN-4,140, 64 in CCNN-6,380).
        layers: number of filters = linear layers on the multiplicative path, output included.
        omega_0: frequency scale (cycles per unit of position) multiplying the filter weights.
            Default 50.0, the smallest value in the CCNN tables (ModelNet40); CCNN tuned it per
            task between 50 and ~4000 (e.g. 2976.49 for sMNIST).
        bias: whether filters and linear layers have biases.
        init_extent: ``s`` in the ``mu`` initialisation (1.0; FlexConv uses
            ``1.667 * mask_init_sigma`` so filters start inside the initial mask).
        causal: initialise ``mu`` for causal kernels (see above).
        alpha: Gamma shape of the first layer, divided by ``l + 1`` for layer ``l`` (6.0).
        beta: Gamma rate (1.0).

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = MAGNet(in_dims=2, out_channels=10, hidden=32, omega_0=50.0)
        >>> grid = torch.stack(torch.meshgrid(
        ...     torch.linspace(-1, 1, 9), torch.linspace(-1, 1, 9), indexing="ij"), dim=-1)
        >>> net(grid).shape
        torch.Size([9, 9, 10])
        >>> net.max_frequency().shape  # cycles per unit, one bound per input dimension
        torch.Size([2])
    """

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 4,
        omega_0: float = 50.0,
        bias: bool = True,
        *,
        init_extent: float = 1.0,
        causal: bool = False,
        alpha: float = 6.0,
        beta: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_dims, out_channels, hidden, layers, omega_0, bias, device=device, dtype=dtype
        )
        self.init_extent = positive_number("init_extent", init_extent)
        self.causal = bool(causal)
        self.alpha = positive_number("alpha", alpha)
        self.beta = positive_number("beta", beta)
        factory = {"device": device, "dtype": dtype}
        self.gamma = nn.Parameter(torch.empty(layers, hidden, in_dims, **factory))
        self.mu = nn.Parameter(torch.empty(layers, hidden, in_dims, **factory))
        self.reset_parameters()

    def _envelope_precision(self) -> torch.Tensor:
        return self.gamma.square()

    def _envelope_center(self) -> torch.Tensor:
        return self.mu

    def _envelope_inverse_std(self) -> torch.Tensor:
        return self.gamma.abs()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for layer in range(self.layers):
                self.gamma[layer].copy_(
                    _sample_gamma(self.alpha / (layer + 1), self.beta, self.gamma[layer])
                )
            if self.causal:
                self.mu.uniform_(0.0, 1.0).mul_(-self.init_extent).add_(1.0)
            else:
                self.mu.uniform_(-1.0, 1.0).mul_(self.init_extent)
            self.filter_weight.copy_(
                self._default_filter_weight() * (2.0 * math.pi * self.omega_0) * self.gamma
            )
            if self.filter_bias is not None:
                self.filter_bias.zero_()
        for linear in self.linears:
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="linear")
            if linear.bias is not None:
                nn.init.ones_(linear.bias)
        nn.init.kaiming_uniform_(self.output_linear.weight, nonlinearity="linear")
        if self.output_linear.bias is not None:
            nn.init.zeros_(self.output_linear.bias)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, init_extent={self.init_extent}, causal={self.causal}, "
            f"alpha={self.alpha}, beta={self.beta}"
        )
