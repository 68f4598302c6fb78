"""The convolutions ``ckconv`` is compared with (benchmark baselines, not library code).

All compute the same same-size depthwise convolution as ``ckconv.functional.conv`` so the
benchmark can check they agree before timing them:

* ``textbook_causal``: the long FFT convolution as S4 / Hyena write it,
  ``irfft(rfft(u, n=2L) * rfft(k, n=2L), n=2L)[..., :L]`` (a causal *convolution*: pass the
  ``ckconv`` kernel flipped, ``k = w.flip(-1)``).
* ``textbook_nd``: the same formula in N-D with sizes ``2L`` per dimension (the unblocked FFT
  convolution), cropped to the centred ("same") output.
* ``ccnn_reference_style``: how the reference CCNN code does it: make the kernel odd (left
  zero pad), the input even (right zero pad), pad the input by ``K // 2`` on both sides, pad
  the kernel to the input size, ``rfftn`` without explicit sizes (so the sizes are whatever
  the padding gives, often not 5-smooth), multiply by the conjugate kernel spectrum, inverse,
  crop; the pointwise mixer (when used) is an ``einsum``.
* ``direct``: ``F.conv{1,2,3}d`` with ``groups=C`` and the matching zero padding.
* ``fft_floor``: ``irfft(rfft(u), n=L)``, the bare cost of one forward and one inverse
  transform of the input, with no padding and no multiply (a lower bound, not a convolution).
* ``ReferenceCCNN``: a whole causal CCNN computed the way the reference CCNN code structures
  it -- each block's kernel net evaluated on the full training grid, the Gaussian mask applied
  afterwards (taps outside the crop zeroed), the ``textbook_causal`` FFT convolution and an
  ``einsum`` mixer -- sharing a ``ckconv.models.CCNN``'s modules, so both give the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def textbook_causal(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``u`` ``(B, C, L)``, ``k`` ``(C, L)``: causal convolution, S4/Hyena style."""
    L = u.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]


def textbook_nd(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Unblocked N-D FFT cross-correlation: ``u`` ``(B, C, *L)``, ``w`` ``(C, 1, *K)``,
    centred output, FFT sizes ``2L`` per dimension (``K <= L``)."""
    d = u.dim() - 2
    dims = tuple(range(-d, 0))
    size = [2 * s for s in u.shape[2:]]
    h = torch.flip(w[:, 0], dims)  # cross-correlation = convolution with the flipped kernel
    y = torch.fft.irfftn(
        torch.fft.rfftn(u, s=size, dim=dims) * torch.fft.rfftn(h, s=size, dim=dims),
        s=size,
        dim=dims,
    )
    for i, (L, K) in enumerate(zip(u.shape[2:], w.shape[2:])):
        left = (K - 1) // 2
        y = y.narrow(2 + i, K - 1 - left, L)
    return y


def ccnn_reference_style(
    u: torch.Tensor, w: torch.Tensor, mixer: torch.Tensor | None = None
) -> torch.Tensor:
    """Centred depthwise FFT convolution the way the reference CCNN code pads it.

    ``u`` ``(B, C, *L)``, ``w`` ``(C, 1, *K)``; optional ``mixer`` ``(C_out, C)`` applied with
    ``einsum``.  For odd ``K`` or after its left zero pad this is the same centred convolution
    as ``ckconv``'s (tap ``(K - 1) // 2`` on the output position).
    """
    d = u.dim() - 2
    dims = tuple(range(-d, 0))
    spatial = u.shape[2:]
    k = w[:, 0]
    kpad: list[int] = []
    upad: list[int] = []
    for K, L in zip(reversed(k.shape[1:]), reversed(spatial)):
        kpad.extend((1 if K % 2 == 0 else 0, 0))
        upad.extend((0, 1 if L % 2 == 1 else 0))
    k = F.pad(k, kpad)
    x = F.pad(u, upad)
    side: list[int] = []
    for K in reversed(k.shape[1:]):
        side.extend((K // 2, K // 2))
    x = F.pad(x, side)
    fill: list[int] = []
    for K, n in zip(reversed(k.shape[1:]), reversed(x.shape[2:])):
        fill.extend((0, n - K))
    k = F.pad(k, fill)
    x_f = torch.fft.rfftn(x, dim=dims)
    k_f = torch.conj(torch.fft.rfftn(k, dim=dims))
    y = torch.fft.irfftn(x_f * k_f, s=x.shape[2:], dim=dims)
    y = y[(Ellipsis, *(slice(0, L) for L in spatial))]
    if mixer is not None:
        y = torch.einsum("oc,bc...->bo...", mixer, y)
    return y


def direct(u: torch.Tensor, w: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """``F.conv{1,2,3}d`` depthwise with "same" (or causal) zero padding."""
    pads: list[int] = []
    for K in reversed(w.shape[2:]):
        left = K - 1 if causal else (K - 1) // 2
        pads.extend((left, K - 1 - left))
    convnd = (F.conv1d, F.conv2d, F.conv3d)[u.dim() - 3]
    return convnd(F.pad(u, pads), w, groups=u.shape[1])


def fft_floor(u: torch.Tensor) -> torch.Tensor:
    """``irfftn(rfftn(u))`` over the spatial dimensions: the bare transform cost."""
    d = u.dim() - 2
    dims = tuple(range(-d, 0))
    return torch.fft.irfftn(torch.fft.rfftn(u, dim=dims), s=u.shape[2:], dim=dims)


def reference_flexconv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A causal separable ``ckconv.nn.FlexConv`` computed reference-style (see the module
    docstring): full-grid kernel net, mask afterwards, ``textbook_causal``, ``einsum`` mixer."""
    L = x.shape[-1]
    K = conv.kernel_size[0]
    grid = torch.linspace(-1.0, 1.0, K, dtype=x.dtype, device=x.device).unsqueeze(-1)
    values = conv.kernel_net(grid) * conv.kernel_mask(grid).unsqueeze(-1)  # (K, C)
    # the crop: the same taps ckconv keeps (the reference crops where the mask is below its
    # threshold); the last tap is the current sample
    kept = conv.kernel_axes(input_size=(L,), device=x.device, dtype=x.dtype)[0].shape[0]
    tap = torch.arange(K, device=x.device)
    w = values.t() * (tap >= K - kept)  # (C, K)
    h = torch.zeros(w.shape[0], L, dtype=x.dtype, device=x.device)
    n = min(K, L)
    h[:, :n] = w.flip(-1)[:, :n]  # convolution kernel: tap i is the sample i steps back
    y = textbook_causal(x, h)
    y = torch.einsum("oc,bcl->bol", conv.mixer, y)
    return y if conv.bias is None else y + conv.bias.view(1, -1, 1)


class ReferenceCCNN(nn.Module):
    """``ckconv.models.CCNN`` (causal, 1D, no timestamps) run with :func:`reference_flexconv`
    in every block; the wrapped model's modules (and so its parameters) are used as they are."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not getattr(model, "causal", False) or model.data_dim != 1:
            raise ValueError("ReferenceCCNN reproduces causal 1D CCNNs")
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        h = F.gelu(m.stem_norm(m.stem(x)))
        for block in m.blocks:
            y = F.gelu(reference_flexconv(block.conv, block.norm(h)))
            y = F.gelu(block.linear(block.dropout(y)))
            h = block.shortcut(h) + y
        return m.head(m.out_norm(h), None)
