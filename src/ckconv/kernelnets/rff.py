"""Random Fourier features followed by a ReLU MLP (Tancik et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ckconv._checks import int_at_least, positive_number
from ckconv.kernelnets.base import KernelNet

__all__ = ["RFFNet"]


class RFFNet(KernelNet):
    r"""Random Fourier feature network: ``[cos(x B), sin(x B)]`` then a ReLU MLP.

    ``B`` has shape ``(in_dims, hidden // 2)`` with entries ``N(0, (2 pi omega_0)^2)``: a
    Gaussian Fourier feature mapping whose frequencies have standard deviation ``omega_0``
    cycles per unit of position.  ``B`` is fixed (not trained) but is a persistent buffer, so
    it is saved in ``state_dict()`` and re-drawn by :meth:`reset_parameters`.  The MLP has
    ``layers`` linear layers (``hidden -> hidden`` with ReLU in between, then
    ``hidden -> out_channels``) with the ``nn.Linear`` default initialisation.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: number of Fourier features (even, >= 2) and width of the MLP.
        layers: number of linear layers after the feature mapping, output included (>= 1).
        omega_0: standard deviation of the feature frequencies in cycles per unit.  Default
            10.0 (the scale Tancik et al. found good for natural images).
        bias: whether the linear layers have biases.

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = RFFNet(in_dims=3, out_channels=2, hidden=16, omega_0=4.0)
        >>> net(torch.rand(5, 3)).shape
        torch.Size([5, 2])
        >>> "frequencies" in net.state_dict()
        True
    """

    frequencies: torch.Tensor

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 3,
        omega_0: float = 10.0,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 2)
        if hidden % 2:
            raise ValueError(
                f"hidden must be even (it holds hidden // 2 cosine and sine features), got {hidden}"
            )
        self.layers = int_at_least("layers", layers, 1)
        self.omega_0 = positive_number("omega_0", omega_0)
        self.bias = bool(bias)
        factory = {"device": device, "dtype": dtype}
        self.register_buffer(
            "frequencies", torch.empty(in_dims, hidden // 2, **factory), persistent=True
        )
        self.linears = nn.ModuleList(
            nn.Linear(hidden, hidden, bias=self.bias, **factory) for _ in range(layers - 1)
        )
        self.output_linear = nn.Linear(hidden, out_channels, bias=self.bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.frequencies.normal_(0.0, 2.0 * math.pi * self.omega_0)
        for linear in [*self.linears, self.output_linear]:
            linear.reset_parameters()

    def features(self, positions: torch.Tensor) -> torch.Tensor:
        """The Fourier features ``[cos(x B), sin(x B)]``: ``(..., in_dims) -> (..., hidden)``."""
        projected = positions @ self.frequencies
        return torch.cat([torch.cos(projected), torch.sin(projected)], dim=-1)

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        self._check_positions(positions)
        out = self.features(positions)
        for linear in self.linears:
            out = torch.relu(linear(out))
        return out

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, bias={self.bias}"
        )
