"""Parameters every convolution layer of the package declares the same way."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def register_mixer_and_bias(
    module: nn.Module,
    in_channels: int,
    out_channels: int,
    *,
    separable: bool,
    bias: bool,
    factory: dict[str, Any],
) -> None:
    """``module.mixer`` ``(C_out, C_in)`` for a separable layer (else None) and ``module.bias``
    ``(C_out,)`` (else None), uninitialised: the layer's ``reset_parameters`` fills them."""
    if separable:
        module.mixer = nn.Parameter(torch.empty(out_channels, in_channels, **factory))
    else:
        module.register_parameter("mixer", None)
    if bias:
        module.bias = nn.Parameter(torch.empty(out_channels, **factory))
    else:
        module.register_parameter("bias", None)
