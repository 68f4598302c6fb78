"""Plain MLP kernel networks (the CKConv paper's ReLU / LeakyReLU / Swish baselines)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ckconv._checks import choice, int_at_least, positive_number
from ckconv.kernelnets.base import KernelNet

__all__ = ["MLP"]

_ACTIVATIONS = {
    "relu": torch.relu,
    "leaky_relu": nn.functional.leaky_relu,
    "swish": nn.functional.silu,
    "gelu": nn.functional.gelu,
    "sine": torch.sin,
}
_NORMS = (None, "layer")
_INITS = ("default", "uniform_knots")


class MLP(KernelNet):
    r"""Multilayer perceptron mapping positions to kernel values.

    Each hidden layer computes ``act(omega_0 * norm(W h + b))``; the last layer is linear.
    ``layers`` counts the linear layers including the output layer (``layers=1`` is a single
    ``in_dims -> out_channels`` linear map).

    Initialisation (``init``):

    - ``"default"``: the ``nn.Linear`` default.
    - ``"uniform_knots"`` (CKConv paper, Appx. B.1, "Unif-Init"): weights Glorot-uniform, and
      every hidden unit gets its knot (the zero of its pre-activation) at its own point of a
      uniform spread over ``knot_range``: with points ``p_1..p_hidden`` (``linspace`` for 1D
      positions, a Sobol sequence covering ``knot_range^D`` otherwise) the bias of unit ``i`` in
      layer ``l`` is ``b_i = -W_i . h^{(l-1)}(p_i)``, ``h^{(0)}(p) = p`` and ``h^{(l-1)}`` the
      already initialised network up to layer ``l-1``.  So the network has as many knots as
      hidden units, spread over the domain instead of bunched at 0.  The output layer gets
      Glorot weights and zero bias.  With ``norm="layer"`` the knots are placed on the
      pre-normalisation values, so after LayerNorm they are only approximately there.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: width of the hidden layers.
        layers: number of linear layers including the output layer (>= 1).
        omega_0: factor on the pre-activations (1.0: a plain MLP; with ``"sine"`` it is the
            SIREN frequency prior, without SIREN's initialisation).
        bias: whether the linear layers have biases (``"uniform_knots"`` needs them).
        activation: ``"relu"``, ``"leaky_relu"`` (slope 0.01), ``"swish"`` (SiLU), ``"gelu"``
            or ``"sine"``.
        norm: ``None`` or ``"layer"`` (LayerNorm over the hidden units, before the activation).
        init: ``"default"`` or ``"uniform_knots"``.
        knot_range: interval over which ``"uniform_knots"`` spreads the knots.

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = MLP(in_dims=1, out_channels=4, activation="relu", init="uniform_knots")
        >>> net(torch.linspace(-1, 1, 20).unsqueeze(-1)).shape
        torch.Size([20, 4])
    """

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 3,
        omega_0: float = 1.0,
        bias: bool = True,
        *,
        activation: str = "relu",
        norm: str | None = None,
        init: str = "default",
        knot_range: tuple[float, float] = (-1.0, 1.0),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 1)
        self.layers = int_at_least("layers", layers, 1)
        self.omega_0 = positive_number("omega_0", omega_0)
        self.bias = bool(bias)
        self.activation = choice("activation", activation, tuple(_ACTIVATIONS))
        self.norm = choice("norm", norm, _NORMS)
        self.init = choice("init", init, _INITS)
        if init == "uniform_knots" and not self.bias:
            raise ValueError(
                "init='uniform_knots' places knots through the biases; needs bias=True"
            )
        low, high = (float(v) for v in knot_range)
        if not low < high:
            raise ValueError(f"knot_range must be (low, high) with low < high, got {knot_range!r}")
        self.knot_range = (low, high)
        factory = {"device": device, "dtype": dtype}

        widths = [in_dims] + [hidden] * (layers - 1)
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=self.bias, **factory) for a, b in itertools.pairwise(widths)
        )
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden, **factory) if norm == "layer" else nn.Identity()
            for _ in range(layers - 1)
        )
        self.output_linear = nn.Linear(widths[-1], out_channels, bias=self.bias, **factory)
        self._act = _ACTIVATIONS[activation]
        self.reset_parameters()

    def _hidden_layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        z = self.norms[index](self.linears[index](h))
        return self._act(self.omega_0 * z)

    def reset_parameters(self) -> None:
        for norm in self.norms:
            if isinstance(norm, nn.LayerNorm):
                norm.reset_parameters()
        if self.init == "default":
            for linear in [*self.linears, self.output_linear]:
                linear.reset_parameters()
            return
        with torch.no_grad():
            points = self._knot_points()
            h = points
            for index, linear in enumerate(self.linears):
                nn.init.xavier_uniform_(linear.weight)
                # Unit i's pre-activation vanishes at points[i]: W_i . h(p_i) + b_i = 0.
                linear.bias.copy_(-(linear.weight * h).sum(dim=-1))
                h = self._hidden_layer(index, h)
            nn.init.xavier_uniform_(self.output_linear.weight)
            nn.init.zeros_(self.output_linear.bias)

    def _knot_points(self) -> torch.Tensor:
        """Positions ``(hidden, in_dims)`` at which the hidden units get their knots.

        ``linspace`` over ``knot_range`` for 1D positions; for ``in_dims > 1`` the first
        ``hidden`` points of the (unscrambled, hence deterministic) Sobol sequence, a
        low-discrepancy uniform cover of ``knot_range^D``.
        """
        low, high = self.knot_range
        like = self.output_linear.weight
        if self.in_dims == 1:
            unit = torch.linspace(0.0, 1.0, self.hidden, dtype=torch.float64).unsqueeze(-1)
        else:
            sobol = torch.quasirandom.SobolEngine(self.in_dims, scramble=False)
            unit = sobol.draw(self.hidden, dtype=torch.float64)
        return (low + (high - low) * unit).to(device=like.device, dtype=like.dtype)

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        self._check_positions(positions)
        h = positions
        for index in range(len(self.linears)):
            h = self._hidden_layer(index, h)
        return h

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, bias={self.bias}, "
            f"activation={self.activation!r}, norm={self.norm!r}, init={self.init!r}"
        )
