"""Regularisers on what the kernel networks generate (CCNN eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from ckconv.nn.base import continuous_convs

__all__ = ["aliasing_penalty", "kernel_l2"]


def _sum(terms: list[torch.Tensor], model: nn.Module) -> torch.Tensor:
    if terms:
        return torch.stack([t.to(terms[0].dtype) for t in terms]).sum()
    ref = next(iter(model.parameters()), None)
    return torch.zeros((), device=None if ref is None else ref.device)


def kernel_l2(model: nn.Module) -> torch.Tensor:
    r"""``1/2 sum_l ||k_l||^2`` over every continuous convolution's *generated* kernel.

    Multiply by ``lambda`` and add to the loss (CCNN eq. 3).  ``k_l`` is
    :meth:`~ckconv.nn.base.ContinuousConv.kernel` of every layer: grid layers sample it on
    their training grid (FlexConv: masked and cropped), point layers on their reference grid of
    offsets (PointFlexConv: masked, over the current crop), so the penalty does not depend on
    the input.  Returns a zero tensor for models without continuous convolutions.
    """
    terms = [0.5 * conv.kernel().square().sum() for _, conv in continuous_convs(model)]
    return _sum(terms, model)


def aliasing_penalty(model: nn.Module, n_std: float = 1.0) -> torch.Tensor:
    r"""Anti-aliasing regulariser for multiplicative filter kernel nets (FlexConv §4).

    For every continuous convolution with a sampling grid
    (:meth:`~ckconv.nn.base.ContinuousConv.nyquist_frequency`) whose kernel net reports
    ``max_frequency()`` (MAGNet, GaborNet, FourierNet), penalises
    ``sum_d relu(f_d - f_nyq,d)^2`` where ``f_d`` bounds the kernel's frequency along dimension
    ``d`` (cycles per unit of position) and ``f_nyq,d = (K_d - 1) / 4`` is the Nyquist frequency
    of the training grid of ``K_d`` samples over ``[-1, 1]``.  Keeping filters below the
    training Nyquist frequency lets a model trained at one resolution run at finer ones without
    aliasing artefacts.
    """
    terms = []
    for _, conv in continuous_convs(model):
        nyquist = conv.nyquist_frequency()
        if nyquist is None or not hasattr(conv.kernel_net, "max_frequency"):
            continue
        freq = conv.kernel_net.max_frequency(n_std)
        limit = torch.tensor(nyquist, device=freq.device, dtype=freq.dtype)
        terms.append(torch.relu(freq - limit).square().sum())
    return _sum(terms, model)
