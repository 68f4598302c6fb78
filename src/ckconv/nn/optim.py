"""Optimiser parameter groups: mask parameters get their own learning rate.

Mask parameters are found by module type (:class:`~ckconv.nn.GaussianMask`), never by a name
substring (the reference code's substring match silently found none).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ckconv.nn.flexconv import GaussianMask

__all__ = ["mask_parameters", "param_groups"]


def mask_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that belongs to a :class:`GaussianMask` inside ``model``."""
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, GaussianMask):
            for p in module.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
    return out


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    mask_lr: float | None = None,
    mask_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Two optimiser groups: everything else, and the FlexConv mask parameters.

    Examples:
        >>> from ckconv.nn import FlexConv
        >>> model = FlexConv(2, 2, kernel_size=9)
        >>> groups = param_groups(model, lr=1e-2, mask_lr=1e-1)
        >>> len(groups), groups[1]["params"] == [model.mask.sigma], groups[1]["lr"]
        (2, True, 0.1)
    """
    masks = mask_parameters(model)
    mask_ids = {id(p) for p in masks}
    others = [p for p in model.parameters() if id(p) not in mask_ids and p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": others, "lr": lr, "weight_decay": weight_decay}]
    if masks:
        groups.append(
            {
                "params": [p for p in masks if p.requires_grad],
                "lr": lr if mask_lr is None else mask_lr,
                "weight_decay": mask_weight_decay,
                "name": "mask",
            }
        )
    return groups
