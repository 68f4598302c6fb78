"""Regularisers on what the kernel networks generate (CCNN eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from ckconv.nn.ckconv import CKConv

__all__ = ["aliasing_penalty", "kernel_l2"]


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


def aliasing_penalty(model: nn.Module, n_std: float = 1.0) -> torch.Tensor:
    r"""Anti-aliasing regulariser for multiplicative filter kernel nets (FlexConv §4).

    For every continuous convolution whose kernel net reports ``max_frequency()`` (MAGNet,
    GaborNet, FourierNet), penalises ``sum_d relu(f_d - f_nyq,d)^2`` where ``f_d`` bounds the
    kernel's frequency along dimension ``d`` (cycles per unit of position) and
    ``f_nyq,d = (K_d - 1) / 4`` is the Nyquist frequency of the training grid of ``K_d``
    samples over ``[-1, 1]``.  Keeping filters below the training Nyquist frequency lets a
    model trained at one resolution run at finer ones without aliasing artefacts.
    """
    total: torch.Tensor | None = None
    for module in model.modules():
        if isinstance(module, CKConv) and hasattr(module.kernel_net, "max_frequency"):
            freq = module.kernel_net.max_frequency(n_std)
            nyquist = torch.tensor(
                [(k - 1) / 4.0 for k in module.kernel_size], device=freq.device, dtype=freq.dtype
            )
            term = torch.relu(freq - nyquist).square().sum()
            total = term if total is None else total + term
    if total is None:
        ref = next(iter(model.parameters()), None)
        return torch.zeros((), device=None if ref is None else ref.device)
    return total
