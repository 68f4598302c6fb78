"""Optimiser parameter groups of a model with continuous convolutions.

Three named groups, found by module type (never by a name substring, which in the reference
code silently found nothing): ``"mask"`` (the parameters of every learned mask part,
:class:`~ckconv.nn.GaussianMask`: their own learning rate, SPEC §3.4), ``"kernel_net"`` (the
kernel networks of every :class:`~ckconv.nn.base.ContinuousConv`: no weight decay unless asked,
the L2 penalty acts on the kernels they generate, CCNN eq. 3) and ``"default"`` (the rest).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ckconv.nn.base import continuous_convs
from ckconv.nn.gaussian_mask import GaussianMask

__all__ = ["kernel_net_parameters", "mask_parameters", "param_groups"]


def _unique(params) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def mask_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that belongs to a :class:`GaussianMask` inside ``model``."""
    return _unique(
        p
        for m in model.modules()
        if isinstance(m, GaussianMask)
        for p in m.parameters(recurse=False)
    )


def kernel_net_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter of the kernel network of a continuous convolution inside ``model``."""
    return _unique(p for _, conv in continuous_convs(model) for p in conv.kernel_net.parameters())


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    kernel_net_weight_decay: float = 0.0,
    mask_lr: float | None = None,
    mask_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Optimiser groups ``default``, ``kernel_net`` and ``mask`` (empty ones left out), each
    with its ``name``, ``lr`` and ``weight_decay``; frozen parameters are left out.

    Examples:
        >>> from ckconv.nn import FlexConv
        >>> model = FlexConv(2, 2, kernel_size=33)
        >>> groups = param_groups(model, lr=1e-2, weight_decay=0.1, mask_lr=1e-1)
        >>> [(g["name"], g["lr"], g["weight_decay"]) for g in groups]
        [('default', 0.01, 0.1), ('kernel_net', 0.01, 0.0), ('mask', 0.1, 0.0)]
        >>> groups[2]["params"] == [model.kernel_mask.sigma]
        True
    """
    masks = {id(p) for p in mask_parameters(model)}
    nets = {id(p) for p in kernel_net_parameters(model)}
    members: dict[str, list[nn.Parameter]] = {"default": [], "kernel_net": [], "mask": []}
    for p in model.parameters():
        if p.requires_grad:
            name = "mask" if id(p) in masks else "kernel_net" if id(p) in nets else "default"
            members[name].append(p)
    settings = {
        "default": (lr, weight_decay),
        "kernel_net": (lr, kernel_net_weight_decay),
        "mask": (lr if mask_lr is None else mask_lr, mask_weight_decay),
    }
    return [
        {"params": params, "lr": settings[name][0], "weight_decay": settings[name][1], "name": name}
        for name, params in members.items()
        if params
    ]
