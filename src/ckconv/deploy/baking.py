"""``bake()``: a trained continuous model, frozen for one input resolution, as plain torch ops."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from ckconv.deploy.baked import BakedConv, Execution
from ckconv.grids import RateLike

__all__ = ["bake", "continuous_layers"]


def continuous_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, layer)`` of every continuous convolution in ``module`` that can be
    baked (a grid :class:`~ckconv.nn.CKConv`, incl. FlexConv), outermost first (the layers
    themselves, not their insides).  Found by :func:`ckconv.nn.continuous_convs`."""
    from ckconv.nn import CKConv, continuous_convs

    return [(name, conv) for name, conv in continuous_convs(module) if isinstance(conv, CKConv)]


def bake(
    module: nn.Module,
    input_size: int | Sequence[int],
    *,
    rate: RateLike | None = None,
    blur: bool = False,
    method: Execution = "auto",
) -> nn.Module:
    """Freeze every continuous convolution of ``module`` for inputs of ``input_size``.

    Returns a new module (a deep copy in eval mode; ``module`` is untouched) in which each
    :class:`~ckconv.nn.CKConv` / :class:`~ckconv.nn.FlexConv` is replaced by a
    :class:`BakedConv` holding the kernel that layer samples for that input size at ``rate``:
    a plain ``F.conv{1,2,3}d`` for small kernels, a fixed-spectrum FFT convolution otherwise
    (``method`` forces one).  The result has no kernel-network (or mask) parameters, gives the
    original's eval-mode outputs on inputs of that size, and traces under ``torch.export`` /
    ``torch.compile(fullgraph=True)``.

    Args:
        module: a continuous layer or any model containing them (CCNN, CKCNN, your own).
        input_size: spatial size of the inputs the continuous layers see (an int for 1D or
            one per dimension; the models of :mod:`ckconv.models` keep the input size through
            every block).  Each baked layer checks its input has exactly this size.
        rate: sampling-rate ratio ``sr_input / sr_train`` to bake the kernels at (as the
            models' ``rate=`` forward keyword).
        blur: blur the kernels sampled finer than training (CKConv appendix E.3).
        method: ``"auto"``, ``"direct"`` or ``"fft"`` for every baked layer.

    Examples:
        >>> import torch
        >>> from ckconv.models import CCNN
        >>> model = CCNN(1, 10, input_size=64, hidden_channels=8, num_blocks=2).eval()
        >>> baked = bake(model, 64)
        >>> x = torch.randn(3, 1, 64)
        >>> torch.allclose(baked(x), model(x), atol=1e-4)
        True
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    from ckconv.nn import CKConv, continuous_convs

    for name, conv in continuous_convs(module):
        if not isinstance(conv, CKConv):
            raise TypeError(
                f"the {type(conv).__name__} at {name or '(the model)'!r} samples its kernel at "
                "data-dependent offsets (not on a grid), so it cannot be baked for an input size"
            )
    layers = continuous_layers(module)
    if not layers:
        raise ValueError(
            f"{type(module).__name__} contains no continuous convolution (CKConv/FlexConv) to bake"
        )
    out = copy.deepcopy(module).eval()
    for name, conv in continuous_layers(out):
        baked = BakedConv.from_conv(conv, input_size, rate=rate, blur=blur, method=method).eval()
        if not name:
            return baked
        out.set_submodule(name, baked)
    return out
