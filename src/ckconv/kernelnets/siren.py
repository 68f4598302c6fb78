"""SIREN kernel network (Sitzmann et al. 2020) as used by CKConv (Romero et al. 2022)."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from ckconv._checks import (
    ArgumentTypeError,
    ArgumentValueError,
    choice,
    int_at_least,
    positive_number,
)
from ckconv.kernelnets.base import KernelNet, set_linear_weight_

__all__ = ["SIREN"]

_BIAS_INITS = ("paper", "reference", "zero")
_WEIGHT_INITS = ("siren", "torch")


class SIREN(KernelNet):
    r"""Sine-activated MLP mapping positions to kernel values.

    Every layer but the last computes :math:`y = \sin(\omega_0 (W x + b))`; the last one is a
    plain linear layer.  ``layers`` counts the linear layers including the output layer, so the
    CKConv kernel network (``in -> hidden -> hidden -> out``) is ``layers=3``.

    Initialisation (:meth:`reset_parameters`):

    - ``weight_init="siren"`` (default): first layer ``W ~ U(-1/fan_in, 1/fan_in)``; later
      layers (output included) ``W ~ U(-sqrt(6/fan_in)/omega_0, sqrt(6/fan_in)/omega_0)``
      (Sitzmann et al.);
    - ``weight_init="torch"``: every layer ``W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the
      ``nn.Linear`` default, which is what the public CKConv code's kernel nets effectively
      start from (see ``bias_init="reference"``); with ``bias_init="reference"`` it is that
      code's whole kernel-net init;
    - ``bias_init="paper"`` (default): first-layer bias
      ``b_i ~ U(-pi/||W_i||, pi/||W_i||)`` (CKConv paper, Sec. 4 and Appx. B.2), later biases
      keep the ``nn.Linear`` default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``;
    - ``bias_init="reference"``: every bias ``U(-1, 1)``, as the public CKConv code does (that
      code also meant to set the weights as above, but wrote them before weight
      normalisation recomputed them, so its effective weights stayed at the PyTorch default);
    - ``bias_init="zero"``: every bias 0 (CCNN code).

    Learnable frequencies (``learn_omega_0=True``): every sine layer ``l`` gets its own
    ``omega_l = omega_0_min + softplus(rho_l)``, a parameter ``omega_0_raw`` ``(layers - 1,)``
    holding the ``rho_l``, initialised so that ``omega_l = omega_0``.  The learned values stay
    above ``omega_0_min`` (default ``omega_0 / 10``) whatever the optimiser does (softplus is
    positive; its gradient is ``sigmoid(rho)``, smooth, with no dead zone as a clamp would
    have); there is no upper bound.
    :meth:`layer_omega_0` returns the values in use.  Under ``torch.autocast`` the first layer
    (positions times ``omega_1``, the largest pre-activations) is computed in float32.
    The parameter belongs to the kernel net, so :func:`~ckconv.nn.param_groups` puts it in
    the ``kernel_net`` group (no weight decay by default, which would pull ``omega_l``
    towards ``omega_0_min + log 2``).  With ``learn_omega_0=False`` (default) nothing changes:
    the same outputs, bit for bit, and the same state-dict keys.

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
        weight_init: ``"siren"`` or ``"torch"`` (see above).
        weight_norm: wrap the linear layers in weight normalisation.
        learn_omega_0: learn one ``omega_0`` per sine layer (see above), starting at
            ``omega_0``.
        omega_0_min: the floor of the learned values (``learn_omega_0`` only); default
            ``omega_0 / 10``; must be ``< omega_0``.

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
        weight_init: str = "siren",
        weight_norm: bool = True,
        learn_omega_0: bool = False,
        omega_0_min: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_dims, out_channels)
        self.hidden = int_at_least("hidden", hidden, 1)
        self.layers = int_at_least("layers", layers, 2)
        self.omega_0 = positive_number("omega_0", omega_0)
        if not isinstance(learn_omega_0, bool):
            raise ArgumentTypeError(
                f"learn_omega_0 must be a bool, got {learn_omega_0!r}", "learn_omega_0"
            )
        self.learn_omega_0 = learn_omega_0
        self.omega_0_min: float | None = None
        if learn_omega_0:
            floor = self.omega_0 / 10 if omega_0_min is None else omega_0_min
            self.omega_0_min = positive_number("omega_0_min", floor)
            if self.omega_0_min >= self.omega_0:
                raise ArgumentValueError(
                    f"omega_0_min must be below omega_0={self.omega_0} (the learned values start "
                    f"at omega_0 and stay above omega_0_min), got {omega_0_min!r}",
                    "omega_0_min",
                )
        elif omega_0_min is not None:
            raise ArgumentValueError(
                f"omega_0_min={omega_0_min!r} bounds learned frequencies: pass learn_omega_0=True",
                "omega_0_min",
            )
        self.bias = bool(bias)
        self.bias_init = choice("bias_init", bias_init, _BIAS_INITS)
        self.weight_init = choice("weight_init", weight_init, _WEIGHT_INITS)
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
        if learn_omega_0:
            self.omega_0_raw = nn.Parameter(torch.empty(layers - 1, **factory))
        else:
            self.register_parameter("omega_0_raw", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.omega_0_raw is not None:
            assert self.omega_0_min is not None
            # softplus^-1(omega_0 - omega_0_min), in a form that does not overflow
            y = self.omega_0 - self.omega_0_min
            with torch.no_grad():
                self.omega_0_raw.fill_(y + math.log(-math.expm1(-y)))
        all_linears = [*self.linears, self.output_linear]
        for index, linear in enumerate(all_linears):
            fan_in = linear.in_features
            weight = torch.empty_like(linear.weight, requires_grad=False)
            if self.weight_init == "torch":
                bound = 1.0 / math.sqrt(fan_in)
            elif index == 0:
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

    def layer_omega_0(self) -> torch.Tensor:
        """The ``omega_0`` of every sine layer, ``(layers - 1,)`` (learned or fixed)."""
        if self.omega_0_raw is None:
            ref = self.output_linear.weight
            return torch.full((self.layers - 1,), self.omega_0, device=ref.device, dtype=ref.dtype)
        assert self.omega_0_min is not None
        return self.omega_0_min + F.softplus(self.omega_0_raw)

    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        self._check_positions(positions)
        out = positions
        if self.omega_0_raw is None:
            for linear in self.linears:
                out = torch.sin(self.omega_0 * linear(out))
            return out
        omegas = self.layer_omega_0()
        device_type = positions.device.type
        if torch.is_autocast_enabled(device_type):
            # the first layer in float32: positions times the largest frequency
            first = self.linears[0]
            bias = None if first.bias is None else first.bias.float()
            with torch.autocast(device_type, enabled=False):
                pre = F.linear(out.float(), first.weight.float(), bias)
                out = torch.sin(omegas[0].float() * pre)
        else:
            out = torch.sin(omegas[0] * self.linears[0](out))
        for omega, linear in zip(omegas[1:], self.linears[1:]):
            out = torch.sin(omega * linear(out))
        return out

    def extra_repr(self) -> str:
        return (
            f"in_dims={self.in_dims}, out_channels={self.out_channels}, hidden={self.hidden}, "
            f"layers={self.layers}, omega_0={self.omega_0}, bias={self.bias}, "
            f"bias_init={self.bias_init!r}, weight_init={self.weight_init!r}, "
            f"weight_norm={self.weight_norm}"
            + (
                f", learn_omega_0=True, omega_0_min={self.omega_0_min}"
                if self.learn_omega_0
                else ""
            )
        )
