"""SIREN kernel network (Sitzmann et al. 2020) as used by CKConv (Romero et al. 2022)."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from ckconv._checks import choice, int_at_least, positive_number
from ckconv.kernelnets.base import KernelNet, set_linear_weight_

__all__ = ["SIREN"]

_BIAS_INITS = ("paper", "reference", "zero")


class SIREN(KernelNet):
    r"""Sine-activated MLP mapping positions to kernel values.

    Every layer but the last computes :math:`y = \sin(\omega_0 (W x + b))`; the last one is a
    plain linear layer.  ``layers`` counts the linear layers including the output layer, so the
    CKConv kernel network (``in -> hidden -> hidden -> out``) is ``layers=3``.

    Initialisation (:meth:`reset_parameters`):

    - first layer ``W ~ U(-1/fan_in, 1/fan_in)``; later layers (output included)
      ``W ~ U(-sqrt(6/fan_in)/omega_0, sqrt(6/fan_in)/omega_0)`` (Sitzmann et al.);
    - ``bias_init="paper"`` (default): first-layer bias
      ``b_i ~ U(-pi/||W_i||, pi/||W_i||)`` (CKConv paper, Sec. 4 and Appx. B.2), later biases
      keep the ``nn.Linear`` default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
    - ``bias_init="reference"``: every bias ``U(-1, 1)``, as the public CKConv code does (that
      code also meant to set the weights as above, but wrote them before weight
      normalisation recomputed them, so its effective weights stayed at the PyTorch default);
    - ``bias_init="zero"``: every bias 0 (CCNN code).

    With ``weight_norm=True`` (default, as in all CKConv experiments) every linear layer is
    wrapped in :func:`torch.nn.utils.parametrizations.weight_norm`; the effective weights are
    initialised as above (``g = ||w_i||``, ``v = w``).  Save such a network through
    ``state_dict()``: PyTorch refuses to pickle parametrized modules whole.

    Args:
        in_dims: dimension D of the positions.
        out_channels: number of values produced per position.
        hidden: width of the hidden layers.
        layers: number of linear layers including the output layer (>= 2).
        omega_0: fixed frequency prior multiplying the pre-activations.  Default 30.0
            (Sitzmann et al.'s value; the CKConv paper tuned it per task and always found the
            best values in ``[1, 70]``, e.g. 31.09 on sMNIST, 25.67 on CharacterTrajectories).
        bias: whether the linear layers have biases.
        bias_init: ``"paper"``, ``"reference"`` or ``"zero"`` (see above).
        weight_norm: wrap the linear layers in weight normalisation.

    Shape:
        - Input: ``(..., in_dims)``.
        - Output: ``(..., out_channels)``.

    Examples:
        >>> net = SIREN(in_dims=1, out_channels=8, hidden=32, omega_0=30.0)
        >>> net(torch.linspace(-1, 1, 100).unsqueeze(-1)).shape
        torch.Size([100, 8])
    """

    def __init__(
        self,
        in_dims: int,
        out_channels: int,
        hidden: int = 32,
        layers: int = 3,
        omega_0: float = 30.0,
        bias: bool = True,
        *,
        bias_init: str = "paper",
        weight_norm: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 1)
        self.layers = int_at_least("layers", layers, 2)
        self.omega_0 = positive_number("omega_0", omega_0)
        self.bias = bool(bias)
        self.bias_init = choice("bias_init", bias_init, _BIAS_INITS)
        self.weight_norm = bool(weight_norm)
        factory = {"device": device, "dtype": dtype}

        widths = [in_dims] + [hidden] * (layers - 1)
        linears = [
            nn.Linear(a, b, bias=self.bias, **factory) for a, b in itertools.pairwise(widths)
        ]
        output = nn.Linear(hidden, out_channels, bias=self.bias, **factory)
        if self.weight_norm:
            linears = [_weight_norm(lin) for lin in linears]
            output = _weight_norm(output)
        self.linears = nn.ModuleList(linears)
        self.output_linear = output
        self.reset_parameters()

    def reset_parameters(self) -> None:
        all_linears = [*self.linears, self.output_linear]
        for index, linear in enumerate(all_linears):
            fan_in = linear.in_features
            weight = torch.empty_like(linear.weight, requires_grad=False)
            if index == 0:
                bound = 1.0 / fan_in
            else:
                bound = math.sqrt(6.0 / fan_in) / self.omega_0
            weight.uniform_(-bound, bound)
            set_linear_weight_(linear, weight)
            if linear.bias is None:
                continue
            with torch.no_grad():
                if self.bias_init == "zero":
                    linear.bias.zero_()
                elif self.bias_init == "reference":
                    linear.bias.uniform_(-1.0, 1.0)
                elif index == 0:
                    # b_i ~ U(-pi/||W_i||, pi/||W_i||); the clamp only guards a zero row.
                    half_width = math.pi / weight.norm(dim=1).clamp_min(1e-12)
                    linear.bias.copy_((2.0 * torch.rand_like(half_width) - 1.0) * half_width)
                else:
                    bound = 1.0 / math.sqrt(fan_in)
                    linear.bias.uniform_(-bound, bound)

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        self._check_positions(positions)
        out = positions
        for linear in self.linears:
            out = torch.sin(self.omega_0 * linear(out))
        return out

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, bias={self.bias}, "
            f"bias_init={self.bias_init!r}, weight_norm={self.weight_norm}"
        )
