"""The contract every kernel network follows: ``positions (..., in_dims) -> values (..., out_channels)``."""

from __future__ import annotations

import abc

import torch
from torch import nn

from ckconv._checks import positive_int

__all__ = ["KernelNet", "scale_linear_weight_", "set_linear_weight_"]


def _weight_norm_parametrization(linear: nn.Linear):
    parametrizations = getattr(linear, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight
    return None


def scale_linear_weight_(linear: nn.Linear, factor: float) -> None:
    """Multiply a linear layer's effective weight by ``factor`` in place.

    Works for plain layers and for layers under
    :func:`torch.nn.utils.parametrizations.weight_norm` (the magnitude ``g`` is scaled).
    """
    with torch.no_grad():
        parametrization = _weight_norm_parametrization(linear)
        if parametrization is not None:
            parametrization.original0.mul_(factor)
        else:
            linear.weight.mul_(factor)


def set_linear_weight_(linear: nn.Linear, weight: torch.Tensor) -> None:
    """Make ``weight`` the effective weight of ``linear`` (in place, no autograd).

    For a layer under :func:`torch.nn.utils.parametrizations.weight_norm` the magnitude and
    direction are both re-derived from ``weight`` (``g = ||w_i||``, ``v = w``), so the layer
    computes exactly ``weight @ x`` afterwards.  Writing into ``linear.weight`` directly would
    be lost: that tensor is recomputed from ``g`` and ``v`` on every access.
    """
    with torch.no_grad():
        weight = weight.to(device=linear.weight.device, dtype=linear.weight.dtype)
        if _weight_norm_parametrization(linear) is not None:
            linear.weight = weight  # goes through the parametrization's right_inverse
        else:
            linear.weight.copy_(weight)


class KernelNet(nn.Module, metaclass=abc.ABCMeta):
    """Base class of kernel networks.

    Subclasses map relative positions to kernel values and follow one signature:
    ``Net(in_dims, out_channels, hidden=..., layers=..., omega_0=..., bias=True, *, ...,
    device=None, dtype=None)``.  They implement :meth:`reset_parameters` (called from
    ``__init__``, the only place initialisation happens) and expose their last linear layer
    as :attr:`output_linear` so a convolution can re-weight it (CCNN/Chang initialisation).

    Shape:
        - Input: ``(..., in_dims)`` positions, typically in ``[-1, 1]``.
        - Output: ``(..., out_channels)``.
    """

    in_dims: int
    out_channels: int
    output_linear: nn.Linear

    def __init__(self, in_dims: int, out_channels: int) -> None:
        super().__init__()
        self.in_dims = positive_int("in_dims", in_dims)
        self.out_channels = positive_int("out_channels", out_channels)

    @abc.abstractmethod
    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter; called from ``__init__``."""

    @abc.abstractmethod
    def hidden_features(self, positions: torch.Tensor) -> torch.Tensor:
        """The last hidden features ``(..., H)``: what :attr:`output_linear` maps to kernel values.

        Exposed so that convolutions over irregular samples or point clouds can contract the
        input with these features first and apply the output layer once (the PointConv
        factorisation), instead of materialising a ``C_out x C_in`` kernel per pair.
        """

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.output_linear(self.hidden_features(positions))

    def scale_output_(self, factor: float) -> None:
        """Multiply the net's output by ``factor``: the output layer's weight and bias are
        scaled in place (no autograd), so every generated kernel value is scaled exactly."""
        scale_linear_weight_(self.output_linear, factor)
        if self.output_linear.bias is not None:
            with torch.no_grad():
                self.output_linear.bias.mul_(factor)

    def _check_positions(self, positions: torch.Tensor) -> None:
        if not isinstance(positions, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__} expects a tensor of positions, got {type(positions).__name__}"
            )
        if positions.dim() < 1 or positions.shape[-1] != self.in_dims:
            raise ValueError(
                f"{type(self).__name__} expects positions of shape (..., {self.in_dims}), "
                f"got {tuple(positions.shape)}"
            )
        if not positions.is_floating_point():
            raise TypeError(
                f"{type(self).__name__} expects floating-point positions, got {positions.dtype}"
            )
