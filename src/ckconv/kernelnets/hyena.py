"""Hyena's implicit long filter (Poli et al. 2023) as a kernel network."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ckconv._checks import int_at_least, open_unit, positive_number
from ckconv.kernelnets.base import KernelNet

__all__ = ["HyenaFilter"]


class HyenaFilter(KernelNet):
    r"""Hyena's implicit filter: positional features -> sine FFN -> exponential decay window.

    For a position :math:`p \in [-1, 1]^D` the net computes

    1. positional features: :math:`p` and :math:`\cos(\pi k p_d)`, :math:`\sin(\pi k p_d)` for
       :math:`k = 1..` ``n_freqs`` and every coordinate :math:`d`;
    2. an FFN of ``layers`` linear layers with sine activations :math:`\sin(\omega \odot a)`
       between them (:math:`\omega` one learnable frequency per hidden feature, initialised at
       ``omega_0``); the output layer has no bias;
    3. the modulation: output channel :math:`c` is multiplied by
       :math:`\exp(-\alpha_c\,\ell(p)) + \text{shift}`, where :math:`\ell(p)` is the distance from
       the kernel's anchor in units of the kernel's extent (causal: :math:`(1 - p) / 2`, the
       current sample sits at :math:`p = 1`; centred: :math:`\lVert p \rVert_2`).  The decay
       rates :math:`\alpha_c` are spread linearly over the channels so that the window falls to
       ``target`` at :math:`\ell =` ``fast_decay`` for the first channel and at
       :math:`\ell =` ``slow_decay`` for the last (Hyena's defaults: 0.3, 1.5, 1e-2): some
       channels see a short context at initialisation, others nearly the whole kernel.

    The window is fixed (not trained); it is a function of the kernel-net coordinates,
    so at another sampling rate the filter is the same continuous function, sampled at the new
    step (CKConv eq. 5 scales it like any kernel net's).

    ``hidden_features`` exists for the :class:`KernelNet` contract but raises: the window is
    per output channel, so the kernel values are not one linear map of shared hidden features
    (the factorisation of point and timestamped convolutions).  Use this net on grids
    (:class:`~ckconv.nn.CKConv`, :class:`~ckconv.nn.Hyena`), dense or separable.

    Args:
        in_dims: dimension D of the positions.
        out_channels: values per position.
        hidden: width of the FFN.
        layers: linear layers including the output layer (>= 2).
        omega_0: initial frequency of the sine activations.
        bias: biases on the hidden layers.
        n_freqs: frequencies of the positional features per coordinate (0: ``p`` only).
        causal: where the anchor is (see 3. above); must match the convolution using the net.
        fast_decay, slow_decay: lags (in kernel extents) at which the fastest and the slowest
            channel's window reaches ``target``.
        target: the window's value at those lags.
        shift: added to the window.

    Shape:
        - Input: ``(..., in_dims)``
        - Output: ``(..., out_channels)``

    Examples:
        >>> net = HyenaFilter(1, 8, causal=True)
        >>> k = net(torch.linspace(-1, 1, 100).unsqueeze(-1))
        >>> k.shape
        torch.Size([100, 8])
    """

    frequencies: torch.Tensor

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 64,
        layers: int = 3,
        omega_0: float = 1.0,
        bias: bool = True,
        *,
        n_freqs: int = 8,
        causal: bool = False,
        fast_decay: float = 0.3,
        slow_decay: float = 1.5,
        target: float = 1e-2,
        shift: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 1)
        self.layers = int_at_least("layers", layers, 2)
        self.omega_0 = positive_number("omega_0", omega_0)
        self.bias = bool(bias)
        self.n_freqs = int_at_least("n_freqs", n_freqs, 0)
        self.causal = bool(causal)
        self.fast_decay = positive_number("fast_decay", fast_decay)
        self.slow_decay = positive_number("slow_decay", slow_decay)
        self.target = open_unit("target", target)
        if not (isinstance(shift, (int, float)) and math.isfinite(shift)):
            raise ValueError(f"shift must be a finite number, got {shift!r}")
        self.shift = float(shift)
        factory = {"device": device, "dtype": dtype}
        self.feature_dims = in_dims * (1 + 2 * self.n_freqs)
        widths = [self.feature_dims] + [hidden] * (layers - 1)
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=self.bias, **factory) for a, b in itertools.pairwise(widths)
        )
        self.sine_frequencies = nn.ParameterList(
            nn.Parameter(torch.empty(hidden, **factory)) for _ in self.linears
        )
        self.output_linear = nn.Linear(hidden, out_channels, bias=False, **factory)
        self.register_buffer(
            "frequencies",
            math.pi * torch.arange(1, self.n_freqs + 1, **factory),
            persistent=False,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for linear in (*self.linears, self.output_linear):
            linear.reset_parameters()
        with torch.no_grad():
            for w in self.sine_frequencies:
                w.fill_(self.omega_0)

    def decay_rates(
        self, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """The window's decay rate per channel ``(out_channels,)``: ``exp(-alpha * lag)`` is
        ``target`` at ``lag = fast_decay`` for the first channel, ``slow_decay`` for the last
        (computed from the constructor's numbers, so exact in any dtype)."""
        fast = -math.log(self.target) / self.fast_decay
        slow = -math.log(self.target) / self.slow_decay
        steps = torch.linspace(0.0, 1.0, self.out_channels, dtype=torch.float64, device=device)
        return (fast + (slow - fast) * steps).to(dtype or torch.get_default_dtype())

    def features(self, positions: torch.Tensor) -> torch.Tensor:
        """The positional features ``(..., in_dims * (1 + 2 n_freqs))``: ``p``, ``cos(pi k p)``,
        ``sin(pi k p)``."""
        self._check_positions(positions)
        if self.n_freqs == 0:
            return positions
        angles = (positions.unsqueeze(-1) * self.frequencies.to(positions.dtype)).flatten(-2)
        return torch.cat([positions, torch.cos(angles), torch.sin(angles)], dim=-1)

    def lag(self, positions: torch.Tensor) -> torch.Tensor:
        """Distance ``(...)`` of each position from the kernel's anchor, in kernel extents."""
        if self.causal:
            return (1.0 - positions).sum(-1) * 0.5
        return positions.norm(dim=-1)

    def window(self, positions: torch.Tensor) -> torch.Tensor:
        """The modulation ``(..., out_channels)``: ``exp(-alpha_c lag(p)) + shift``."""
        rates = self.decay_rates(device=positions.device, dtype=positions.dtype)
        return torch.exp(-self.lag(positions).unsqueeze(-1) * rates) + self.shift

    def _ffn(self, positions: torch.Tensor) -> torch.Tensor:
        out = self.features(positions)
        for linear, w in zip(self.linears, self.sine_frequencies):
            out = torch.sin(w * linear(out))
        return out

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            "HyenaFilter's decay window differs per output channel, so its kernel is not a "
            "linear map of shared hidden features: use it on a grid (CKConv, Hyena), not in a "
            "point or timestamped convolution"
        )

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.output_linear(self._ffn(positions)) * self.window(positions)

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, n_freqs={self.n_freqs}, "
            f"causal={self.causal}, fast_decay={self.fast_decay}, slow_decay={self.slow_decay}, "
            f"target={self.target}, shift={self.shift}"
        )
