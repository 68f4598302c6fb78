"""Multiplicative filter networks (Fathony et al. 2021): FourierNet and GaborNet.

An MFN with ``F`` filters ``g_0..g_{F-1}`` (each ``in_dims -> hidden``) computes

    h_0 = g_0(x),   h_l = g_l(x) * (W_l h_{l-1} + b_l)  (l = 1..F-1),   k(x) = W_out h_{F-1} + b_out.

Because a product of sinusoids has the sum of their frequencies, the output's frequency content
is bounded by the sum over layers of each layer's largest filter frequency
(:meth:`MultiplicativeFilterNet.max_frequency`), which makes these networks' spectra analysable
(FlexConv's anti-aliasing argument).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from ckconv._checks import int_at_least, positive_number
from ckconv.kernelnets.base import KernelNet

__all__ = ["FourierNet", "GaborNet", "MultiplicativeFilterNet"]

# Fathony et al.'s default input scale (256 rad per unit) expressed as cycles per unit.
_FATHONY_OMEGA_0 = 256.0 / (2.0 * math.pi)


class MultiplicativeFilterNet(KernelNet):
    """Shared structure of the multiplicative filter networks (FourierNet, GaborNet, MAGNet).

    ``layers`` counts the linear layers on the multiplicative path including the output layer:
    ``layers - 1`` hidden ``hidden -> hidden`` linears and one output linear.  It is also the
    number of filters.  (The CCNN/FlexConv code calls its MAGNet with ``no_layers=3`` hidden
    linears; that network is ``layers=4`` here.)

    The filters of all layers are stored stacked: ``filter_weight`` has shape
    ``(layers, hidden, in_dims)`` and ``filter_bias`` ``(layers, hidden)`` (``None`` when
    ``bias=False``); they are evaluated in one matrix product.  Subclasses set the filter
    parameters in :meth:`reset_parameters` and may multiply the sinusoids by a Gaussian
    envelope (:meth:`_envelope_precision`).
    """

    filter_bias: nn.Parameter | None

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int,
        layers: int,
        omega_0: float,
        bias: bool,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 1)
        self.layers = int_at_least("layers", layers, 1)
        self.omega_0 = positive_number("omega_0", omega_0)
        self.bias = bool(bias)
        factory = {"device": device, "dtype": dtype}
        self.filter_weight = nn.Parameter(torch.empty(layers, hidden, in_dims, **factory))
        if self.bias:
            self.filter_bias = nn.Parameter(torch.empty(layers, hidden, **factory))
        else:
            self.register_parameter("filter_bias", None)
        self.linears = nn.ModuleList(
            nn.Linear(hidden, hidden, bias=self.bias, **factory) for _ in range(layers - 1)
        )
        self.output_linear = nn.Linear(hidden, out_channels, bias=self.bias, **factory)

    # ------------------------------------------------------------------ filters
    def _default_filter_weight(self) -> torch.Tensor:
        """``nn.Linear``'s default weight draw for each ``in_dims -> hidden`` filter."""
        bound = 1.0 / math.sqrt(self.in_dims)
        return torch.empty_like(self.filter_weight, requires_grad=False).uniform_(-bound, bound)

    def _envelope_precision(self) -> torch.Tensor | None:
        """Per-dimension precision ``(layers, hidden, in_dims)`` of the Gaussian envelopes.

        A filter is ``exp(-1/2 sum_d p_d (x_d - mu_d)^2) * sin(w . x + b)``; ``None`` means no
        envelope (pure sinusoids).
        """
        return None

    def _envelope_center(self) -> torch.Tensor | None:
        """Centres ``(layers, hidden, in_dims)`` of the Gaussian envelopes (when there are any)."""
        return None

    def _envelope_inverse_std(self) -> torch.Tensor | None:
        """``sqrt(precision)`` per dimension, ``(layers, hidden, in_dims)``, for the spectrum."""
        return None

    def filters(self, positions: torch.Tensor) -> torch.Tensor:
        """Evaluate every filter: ``(..., in_dims) -> (..., layers, hidden)``."""
        weight = self.filter_weight.flatten(0, 1)
        bias = None if self.filter_bias is None else self.filter_bias.flatten()
        out = torch.sin(nn.functional.linear(positions, weight, bias))
        precision = self._envelope_precision()
        if precision is not None:
            center = self._envelope_center()
            precision = precision.flatten(0, 1)
            center = center.flatten(0, 1)
            # One term per input dimension keeps the intermediate at (..., layers * hidden)
            # and avoids the cancellation of an expanded quadratic form.
            quadratic = precision[:, 0] * (positions[..., 0:1] - center[:, 0]).square()
            for d in range(1, self.in_dims):
                quadratic = (
                    quadratic
                    + precision[:, d] * (positions[..., d : d + 1] - center[:, d]).square()
                )
            out = out * torch.exp(-0.5 * quadratic)
        return out.unflatten(-1, (self.layers, self.hidden))

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        self._check_positions(positions)
        g = self.filters(positions)
        h = g[..., 0, :]
        for index, linear in enumerate(self.linears):
            h = g[..., index + 1, :] * linear(h)
        return h

    # --------------------------------------------------------------- spectrum
    def filter_frequencies(self, n_std: float = 1.0) -> torch.Tensor:
        r"""Highest frequency of every filter along every input dimension.

        Returns a differentiable tensor of shape ``(layers, hidden, in_dims)`` in cycles per unit
        of position: ``(|W_{l,c,d}| + n_std * sqrt(p_{l,c,d})) / (2 pi)``.  The first term is the
        frequency of the sinusoid; the second widens it by the Gaussian envelope, whose Fourier
        transform is a Gaussian of standard deviation ``sqrt(p)/(2 pi)`` cycles per unit
        (``p`` = envelope precision, ``gamma^2`` for MAGNet); ``n_std`` standard deviations of it
        are counted (FlexConv's regulariser uses 1).  On a grid of ``K`` samples over
        ``[-1, 1]`` the Nyquist frequency is ``(K - 1) / 4`` cycles per unit.
        """
        frequency = self.filter_weight.abs()
        inverse_std = self._envelope_inverse_std()
        if inverse_std is not None:
            frequency = frequency + n_std * inverse_std
        return frequency / (2.0 * math.pi)

    def max_frequency(self, n_std: float = 1.0) -> torch.Tensor:
        """Bound on the output's frequency along each input dimension, shape ``(in_dims,)``.

        The output is a sum of products of at most one filter per layer, and frequencies of a
        product add, so the bound is the sum over layers of the largest filter frequency
        (:meth:`filter_frequencies`).  Differentiable, for use in an anti-aliasing penalty.
        """
        return self.filter_frequencies(n_std).amax(dim=1).sum(dim=0)

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, bias={self.bias}"
        )

    @abc.abstractmethod
    def reset_parameters(self) -> None: ...


class FourierNet(MultiplicativeFilterNet):
    r"""Multiplicative filter network with sinusoidal filters ``g_l(x) = sin(W_l x + b_l)``.

    Initialisation follows Fathony et al. (2021): filter weights are ``nn.Linear``'s default
    draw times ``2 pi omega_0 / sqrt(layers)`` (the product of ``layers`` filters then has
    frequencies of order ``omega_0``), filter biases ``U(-pi, pi)``; hidden linears
    ``U(-sqrt(1/hidden), sqrt(1/hidden))`` with the default bias draw; the output linear keeps
    the ``nn.Linear`` default.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: number of filters per layer (width).
        layers: number of filters = number of linear layers on the multiplicative path
            including the output layer (>= 1).  Default 4 = Fathony's ``n_layers=3``.
        omega_0: frequency scale in cycles per unit of position.  Default ``256 / (2 pi)``,
            Fathony et al.'s ``input_scale=256``.
        bias: whether filters and linear layers have biases.

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = FourierNet(in_dims=2, out_channels=4, hidden=16, omega_0=5.0)
        >>> net(torch.rand(7, 9, 2) * 2 - 1).shape
        torch.Size([7, 9, 4])
    """

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 4,
        omega_0: float = _FATHONY_OMEGA_0,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_dims, out_channels, hidden, layers, omega_0, bias, device=device, dtype=dtype
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            scale = 2.0 * math.pi * self.omega_0 / math.sqrt(self.layers)
            self.filter_weight.copy_(self._default_filter_weight() * scale)
            if self.filter_bias is not None:
                self.filter_bias.uniform_(-math.pi, math.pi)
        _fathony_linears_(self)


class GaborNet(MultiplicativeFilterNet):
    r"""Multiplicative filter network with isotropic Gabor filters (Fathony et al. 2021).

    ``g_l(x)_c = exp(-gamma_{l,c}/2 ||x - mu_{l,c}||^2) * sin(W_{l,c} . x + b_{l,c})``.

    Initialisation (Fathony et al.): ``gamma_{l,c} ~ Gamma(alpha / layers, beta)`` (one
    precision per filter), ``mu ~ U(-1, 1)^D``; filter weights are ``nn.Linear``'s default draw
    times ``2 pi omega_0 sqrt(gamma) / sqrt(layers)``, filter biases ``U(-pi, pi)``; hidden
    linears ``U(-sqrt(1/hidden), sqrt(1/hidden))`` with the default bias draw; the output linear
    keeps the ``nn.Linear`` default.  ``gamma`` and ``mu`` are learnable.
    See :class:`~ckconv.kernelnets.MAGNet` for the anisotropic CCNN/FlexConv variant.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: number of filters per layer (width).
        layers: number of filters = number of linear layers on the multiplicative path
            including the output layer (>= 1).  Default 4 = Fathony's ``n_layers=3``.
        omega_0: frequency scale in cycles per unit.  Default ``256 / (2 pi)`` (Fathony's
            ``input_scale=256``).
        bias: whether filters and linear layers have biases.
        alpha: shape of the Gamma distribution, divided by ``layers`` (default 6).
        beta: rate of the Gamma distribution (default 1).

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = GaborNet(in_dims=1, out_channels=3, hidden=16)
        >>> net(torch.linspace(-1, 1, 50).unsqueeze(-1)).shape
        torch.Size([50, 3])
    """

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 4,
        omega_0: float = _FATHONY_OMEGA_0,
        bias: bool = True,
        *,
        alpha: float = 6.0,
        beta: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_dims, out_channels, hidden, layers, omega_0, bias, device=device, dtype=dtype
        )
        self.alpha = positive_number("alpha", alpha)
        self.beta = positive_number("beta", beta)
        factory = {"device": device, "dtype": dtype}
        self.gamma = nn.Parameter(torch.empty(layers, hidden, **factory))
        self.mu = nn.Parameter(torch.empty(layers, hidden, in_dims, **factory))
        self.reset_parameters()

    def _envelope_precision(self) -> torch.Tensor:
        return self.gamma.unsqueeze(-1).expand(-1, -1, self.in_dims)

    def _envelope_center(self) -> torch.Tensor:
        return self.mu

    def _envelope_inverse_std(self) -> torch.Tensor:
        return self.gamma.abs().sqrt().unsqueeze(-1).expand(-1, -1, self.in_dims)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gamma.copy_(_sample_gamma(self.alpha / self.layers, self.beta, self.gamma))
            self.mu.uniform_(-1.0, 1.0)
            scale = 2.0 * math.pi * self.omega_0 / math.sqrt(self.layers)
            self.filter_weight.copy_(
                self._default_filter_weight() * scale * self.gamma.sqrt().unsqueeze(-1)
            )
            if self.filter_bias is not None:
                self.filter_bias.uniform_(-math.pi, math.pi)
        _fathony_linears_(self)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, beta={self.beta}"


def _sample_gamma(concentration: float, rate: float, like: torch.Tensor) -> torch.Tensor:
    """Draw ``Gamma(concentration, rate)`` samples shaped, typed and placed like ``like``."""
    shape = torch.full_like(like, concentration, requires_grad=False)
    return torch.distributions.Gamma(shape, torch.full_like(shape, rate)).sample()


def _fathony_linears_(net: MultiplicativeFilterNet) -> None:
    """Fathony et al.'s hidden-linear init (``U(+-sqrt(1/hidden))``); default output layer."""
    bound = math.sqrt(1.0 / net.hidden)
    for linear in net.linears:
        linear.reset_parameters()
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound)
    net.output_linear.reset_parameters()
