"""Convolution with kernels as long as the input: FFT and direct paths with one convention.

``conv(input, weight)`` is a cross-correlation (the ``torch.nn.functional.conv{1,2,3}d``
convention) whose output has the input's spatial size:

* centred: equals ``F.conv{1,2,3}d(input, weight, padding="same")`` — the tap at index
  ``(K - 1) // 2`` is applied at the output position (left padding ``(K - 1) // 2``,
  right padding ``K // 2``);
* causal (1D): equals ``F.conv1d(F.pad(input, (K - 1, 0)), weight)`` — the last tap is the
  current sample, output ``t`` depends on inputs ``<= t`` only.

Kernels may be longer than the input (taps that cannot reach any output are ignored).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["conv", "direct_conv", "fft_conv", "fft_size", "padding_for", "validate_conv_args"]

Method = Literal["auto", "fft", "direct"]

# Largest kernel extent (per dimension) for which direct convolution is used by ``method="auto"``.
# SPEC §9: direct depthwise beats FFT only for small kernels (1D K <~ 15, 2D <~ 7x7).
DIRECT_MAX_KERNEL: dict[int, int] = {1: 15, 2: 7, 3: 5}


def fft_size(n: int) -> int:
    """Smallest even 5-smooth integer ``>= n`` (an efficient real-FFT length)."""
    if n < 1:
        raise ValueError(f"fft_size needs a positive length, got {n}")
    best = None
    p2 = 2
    while True:
        p23 = p2
        while True:
            p235 = p23
            while p235 < n:
                p235 *= 5
            if best is None or p235 < best:
                best = p235
            if p23 >= n:
                break
            p23 *= 3
        if p2 >= n:
            break
        p2 *= 2
    assert best is not None
    return best


def padding_for(kernel_size: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding that gives a same-size output for one dimension."""
    if causal:
        return kernel_size - 1, 0
    left = (kernel_size - 1) // 2
    return left, kernel_size - 1 - left


def validate_conv_args(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    groups: int,
    causal: bool,
    check_finite: bool = True,
) -> int:
    """Check shapes, dtypes and values; return the number of spatial dimensions."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    data_dim = weight.dim() - 2
    if data_dim not in (1, 2, 3):
        raise ValueError(
            "weight must have shape (C_out, C_in/groups, *kernel) with 1, 2 or 3 kernel "
            f"dimensions, got shape {tuple(weight.shape)}"
        )
    if input.dim() != data_dim + 2:
        raise ValueError(
            f"input must have shape (N, C_in, *spatial) with {data_dim} spatial dimension(s) "
            f"to match weight of shape {tuple(weight.shape)}, got shape {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if weight.dtype != input.dtype:
        raise TypeError(f"weight dtype {weight.dtype} does not match input dtype {input.dtype}")
    if weight.device != input.device:
        raise ValueError(f"weight is on {weight.device} but input is on {input.device}")
    if causal and data_dim != 1:
        raise ValueError(f"causal convolution is 1-D only, got {data_dim} spatial dimensions")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    n, c_in = input.shape[:2]
    c_out = weight.shape[0]
    if n == 0 or c_in == 0 or any(s == 0 for s in input.shape[2:]):
        raise ValueError(f"input must be non-empty in every dimension, got shape {tuple(input.shape)}")
    if any(s == 0 for s in weight.shape):
        raise ValueError(f"weight must be non-empty in every dimension, got shape {tuple(weight.shape)}")
    if c_in != weight.shape[1] * groups:
        raise ValueError(
            f"input has {c_in} channels but weight of shape {tuple(weight.shape)} with "
            f"groups={groups} expects {weight.shape[1] * groups}"
        )
    if c_out % groups != 0:
        raise ValueError(f"weight has {c_out} output channels, not divisible by groups={groups}")
    if bias is not None:
        if bias.shape != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
        if bias.dtype != input.dtype:
            raise TypeError(f"bias dtype {bias.dtype} does not match input dtype {input.dtype}")
    if check_finite and not torch.compiler.is_compiling():
        if not bool(torch.isfinite(input).all()):
            raise ValueError("input contains NaN or inf values")
        if not bool(torch.isfinite(weight).all()):
            raise ValueError("weight (the convolution kernel) contains NaN or inf values")
    return data_dim


def direct_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
) -> torch.Tensor:
    """Same-size cross-correlation through ``F.conv{1,2,3}d`` (no validation; see :func:`conv`)."""
    data_dim = weight.dim() - 2
    pads: list[int] = []
    for k in reversed(weight.shape[2:]):  # F.pad wants the last dimension first
        pads.extend(padding_for(k, causal))
    x = F.pad(input, pads)
    convnd = (F.conv1d, F.conv2d, F.conv3d)[data_dim - 1]
    return convnd(x, weight, bias, groups=groups)


def fft_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
) -> torch.Tensor:
    """Same-size cross-correlation through real FFTs of even 5-smooth sizes (no validation).

    The signal is zero-padded to a linear (non-circular) size and ``irfftn`` is always given
    the sizes ``s=`` explicitly, so odd lengths are exact.
    """
    data_dim = weight.dim() - 2
    spatial = input.shape[2:]
    ksize = weight.shape[2:]
    dims = tuple(range(-data_dim, 0))
    sizes = [fft_size(L + K - 1) for L, K in zip(spatial, ksize)]
    x_f = torch.fft.rfftn(input, s=sizes, dim=dims)
    w_f = torch.fft.rfftn(torch.flip(weight, dims), s=sizes, dim=dims)
    n, c_in = input.shape[:2]
    c_out = weight.shape[0]
    freq = x_f.shape[2:]
    x_g = x_f.reshape(n, groups, c_in // groups, *freq)
    w_g = w_f.reshape(groups, c_out // groups, c_in // groups, *freq)
    if c_in // groups == 1:
        y_f = x_g * w_g.unsqueeze(0).squeeze(3)
    else:
        y_f = torch.einsum("bgi...,goi...->bgo...", x_g, w_g)
    y = torch.fft.irfftn(y_f.reshape(n, c_out, *freq), s=sizes, dim=dims)
    for d, (L, K) in enumerate(zip(spatial, ksize)):
        left, _ = padding_for(K, causal)
        y = y.narrow(2 + d, K - 1 - left, L)
    if bias is not None:
        y = y + bias.view(1, c_out, *([1] * data_dim))
    return y


def _auto_method(weight: torch.Tensor) -> str:
    data_dim = weight.dim() - 2
    return "direct" if max(weight.shape[2:]) <= DIRECT_MAX_KERNEL[data_dim] else "fft"


def conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    method: Method = "auto",
) -> torch.Tensor:
    """Same-size N-D convolution (cross-correlation) for long kernels, centred or causal.

    Args:
        input: ``(N, C_in, *spatial)`` with 1, 2 or 3 spatial dimensions.
        weight: ``(C_out, C_in / groups, *kernel)``; the kernel may be longer than the input
            and non-square.
        bias: optional ``(C_out,)``.
        groups: as in ``torch.nn.functional.conv1d`` (``groups == C_in == C_out`` is depthwise).
        causal: 1D only; output ``t`` sees inputs ``<= t`` (the last tap is the current sample).
        method: ``"fft"``, ``"direct"`` (``F.convNd``) or ``"auto"`` (direct for small kernels).

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Weight: ``(C_out, C_in / groups, *kernel)``
        - Output: ``(N, C_out, *spatial)``

    Examples:
        >>> x, w = torch.randn(2, 3, 100), torch.randn(4, 3, 100)
        >>> y = conv(x, w, causal=True)
        >>> torch.allclose(y, F.conv1d(F.pad(x, (99, 0)), w), atol=1e-4)
        True
    """
    validate_conv_args(input, weight, None if bias is None else bias, groups, causal)
    if method == "auto":
        method = _auto_method(weight)  # type: ignore[assignment]
    if method == "direct":
        return direct_conv(input, weight, bias, groups=groups, causal=causal)
    if method == "fft":
        return fft_conv(input, weight, bias, groups=groups, causal=causal)
    raise ValueError(f"method must be 'auto', 'fft' or 'direct', got {method!r}")
