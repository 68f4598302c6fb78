"""Regularisers on what the kernel networks generate (CCNN eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from ckconv.nn.ckconv import CKConv

__all__ = ["kernel_l2"]


def kernel_l2(model: nn.Module) -> torch.Tensor:
    r"""``1/2 sum_l ||k_l||^2`` over every continuous convolution's *generated* kernel.

    Multiply by ``lambda`` and add to the loss (CCNN eq. 3).  The kernels are sampled on their
    training grids (FlexConv: masked and cropped), so the penalty does not depend on the input
    size.  Returns a zero tensor for models without continuous convolutions.
    """
    total: torch.Tensor | None = None
    for module in model.modules():
        if isinstance(module, CKConv):
            term = module.kernel().pow(2).sum() * 0.5
            total = term if total is None else total + term
    if total is None:
        ref = next(iter(model.parameters()), None)
        return torch.zeros((), device=None if ref is None else ref.device)
    return total
