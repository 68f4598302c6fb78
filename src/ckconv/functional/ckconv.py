"""Continuous kernel convolutions as functions: sample a kernel network on a grid, convolve.

The modules in :mod:`ckconv.nn` own the parameters; these functions own the maths and can be
called with any kernel network (any callable ``positions (..., D) -> values (..., C)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import ArgumentValueError, finite_tensor, open_unit, tensor
from ckconv.functional.conv import (
    Method,
    PaddingMode,
    autocast_dtype,
    circular_axes,
    conv,
    mix,
)
from ckconv.functional.masks import crop_counts, gaussian_mask
from ckconv.grids import (
    RateLike,
    as_rates,
    as_sizes,
    axis_positions,
    circular_axis_positions,
    grid_step,
    meshgrid,
    rate_scale,
)

__all__ = [
    "apply_kernel",
    "blur_kernel",
    "ckconv",
    "conv_dtype",
    "flexconv",
    "flexconv_axes",
    "generate_kernel",
    "kernel_axes",
    "kernel_compute_dtype",
    "sample_kernel",
]

_HALF = (torch.float16, torch.bfloat16)


# -- precision policy (one place: the modules in ckconv.nn and the functions below) --------
def conv_dtype(input: torch.Tensor) -> torch.dtype:
    """The dtype a continuous convolution of ``input`` runs in: the autocast dtype when
    autocast is on for its device (float64 inputs excepted, as autocast leaves them alone),
    else the input's own (as ``torch.nn.functional.conv1d`` under autocast)."""
    cast = autocast_dtype(input.device)
    return input.dtype if cast is None or input.dtype == torch.float64 else cast


def kernel_compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a kernel for a ``dtype`` convolution is generated in: float32 for half
    precisions, else ``dtype``.

    Kernel networks turn positions into phases (``sin(omega_0 (W x + b))``, Gabor filters)
    that reach tens to thousands of radians; a bfloat16 phase is off by a good part of a
    radian.  Measured on the default nets: a SIREN under bf16 autocast is 15 % off its float32
    kernel, a MAGNet 12-130 %, while rounding the float32 kernel to bf16 costs 0.2 %.  The
    kernel net is a few thousand multiply-adds per position, nothing next to the convolution,
    so it always runs in float32 and only its result is rounded.
    """
    return torch.float32 if dtype in _HALF else dtype


def _call_in(fn: Callable[..., torch.Tensor], dtype: torch.dtype, *args: torch.Tensor):
    """``fn(*args)`` computed in ``dtype``: a module's floating parameters and buffers are
    cast for this call (differentiable: gradients reach the stored parameters through the
    cast); any other callable is called as is."""
    if not isinstance(fn, nn.Module):
        return fn(*args)
    state = {
        name: t.to(dtype)
        for name, t in (*fn.named_parameters(), *fn.named_buffers())
        if t.is_floating_point() and t.dtype != dtype
    }
    if not state:
        return fn(*args)
    return torch.func.functional_call(fn, state, args)


def blur_kernel(weight: torch.Tensor, rate: RateLike | None) -> torch.Tensor:
    """Gaussian blur of a kernel sampled finer than training (CKConv appendix E.3).

    Along every dimension whose rate ratio ``r = sr_test / sr_train`` exceeds 1, the kernel is
    convolved (zero padding, same size) with the normalised Gaussian ``G(i)``, ``sigma = 0.5``,
    at ``i = -R..R``, ``R = floor(r)`` (length ``2 r + 1`` as in the paper).  It removes the
    frequencies above the training Nyquist rate that training never saw.  Dimensions with
    ``r <= 1`` are unchanged.

    Shape:
        - weight: ``(C_out, C_in, *K)``
        - Output: same
    """
    data_dim = weight.dim() - 2
    rates = as_rates(rate, data_dim)
    out = weight
    for d, r in enumerate(rates):
        radius = math.floor(r + 1e-9)
        if r <= 1.0 or radius < 1:
            continue
        i = torch.arange(-radius, radius + 1, device=weight.device, dtype=weight.dtype)
        g = torch.exp(-0.5 * (i / 0.5) ** 2)
        g = (g / g.sum()).view(1, 1, -1)
        moved = out.movedim(2 + d, -1)
        flat = moved.reshape(-1, 1, moved.shape[-1])
        blurred = F.conv1d(flat, g, padding=radius)
        out = blurred.reshape(moved.shape).movedim(-1, 2 + d)
    return out


KernelNetLike = Callable[[torch.Tensor], torch.Tensor]


def _crop_axis(
    pos: torch.Tensor, causal: bool, max_left: int | None, max_right: int | None
) -> torch.Tensor:
    """Crop one axis around its anchor, keeping the ``padding="same"`` convention."""
    n = pos.shape[0]
    if causal:
        keep = n if max_left is None else min(n, max_left + 1)
        return pos[n - keep :]
    anchor = (n - 1) // 2
    left, right = anchor, n - 1 - anchor
    if max_left is not None:
        left = min(left, max_left)
    if max_right is not None:
        right = min(right, max_right)
    right = min(right, left + 1)
    left = min(left, right)
    return pos[anchor - left : anchor + right + 1]


def kernel_axes(
    kernel_size: Sequence[int],
    *,
    causal: bool = False,
    rate: RateLike | None = None,
    input_size: Sequence[int] | None = None,
    crop: Sequence[int] | None = None,
    padding_mode: PaddingMode = "zeros",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> list[torch.Tensor]:
    """Per-dimension kernel positions, cropped to what can reach an output and to ``crop``.

    Args:
        kernel_size: training-grid samples per dimension.
        rate: sampling-rate ratio ``sr_test / sr_train`` per dimension.
        input_size: spatial size of the input; taps further than ``L - 1`` from the anchor are
            dropped (they touch no output).  On a circular axis the input is one period: one
            tap per relative offset (:func:`ckconv.grids.circular_axis_positions`).
        crop: optional maximum offset from the anchor per dimension (mask crop).
        padding_mode: ``"zeros"`` or ``"circular"`` per axis.

    A ``rate`` so low that a kernel of several training samples keeps a single tap is refused
    (the kernel would be that one tap times ``1 / rate``): a kernel of ``K >= 2`` samples needs
    ``rate >= 1 / (K - 1)`` causal, ``rate >= 1 / (K - 1 - (K - 1) // 2)`` centred.
    """
    data_dim = len(kernel_size)
    rates = as_rates(rate, data_dim)
    circular = circular_axes(padding_mode, data_dim, causal)
    axes = []
    for d, (k, r, circ) in enumerate(zip(kernel_size, rates, circular)):
        limit = None
        if circ:
            period = None if input_size is None else int(input_size[d])
            pos = circular_axis_positions(k, rate=r, period=period, device=device, dtype=dtype)
        else:
            pos = axis_positions(k, causal=causal, rate=r, device=device, dtype=dtype)
            if k > 1 and pos.shape[0] < 2:
                reach = k - 1 if causal else k - 1 - (k - 1) // 2
                raise ArgumentValueError(
                    f"rate={rate!r} leaves the kernel of {k} training samples with a single tap"
                    f"{f' in dimension {d}' if data_dim > 1 else ''} (it would act as one tap "
                    f"times {1 / r:g}); this kernel needs rate >= 1/{reach} = {1 / reach:g}",
                    "rate",
                )
            limit = None if input_size is None else input_size[d] - 1
        if crop is not None:
            limit = crop[d] if limit is None else min(limit, crop[d])
        axes.append(_crop_axis(pos, causal, limit, limit))
    return axes


def sample_kernel(
    kernel_net: KernelNetLike,
    grid: torch.Tensor,
    in_channels: int,
    *,
    separable: bool,
    scale: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Evaluate ``kernel_net`` on ``grid`` ``(*K, D)`` and shape it as a conv weight.

    ``mask`` ``(*K)`` multiplies the kernel; ``scale`` multiplies it too (resolution change).

    Returns:
        ``(C_in, 1, *K)`` when ``separable`` (depthwise), else ``(C_out, C_in, *K)`` with
        ``C_out = net_outputs / C_in``.
    """
    values = kernel_net(grid)  # (*K, C)
    ksize = tuple(grid.shape[:-1])
    channels = values.shape[-1]
    if separable:
        if channels != in_channels:
            raise ValueError(
                f"a separable kernel net must output in_channels={in_channels} values per "
                f"position, got {channels}"
            )
    elif channels % in_channels != 0:
        raise ValueError(
            f"a dense kernel net must output out_channels * in_channels values per position; "
            f"{channels} is not a multiple of in_channels={in_channels}"
        )
    if mask is not None:
        values = values * mask.unsqueeze(-1)
    if scale != 1.0:
        values = values * scale
    weight = values.reshape(-1, channels).t()
    if separable:
        return weight.reshape(in_channels, 1, *ksize)
    return weight.reshape(channels // in_channels, in_channels, *ksize)


def generate_kernel(
    kernel_net: KernelNetLike,
    axes: Callable[[torch.dtype], Sequence[torch.Tensor]],
    in_channels: int,
    *,
    separable: bool,
    device: torch.device | str,
    dtype: torch.dtype,
    scale: float = 1.0,
    mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Sample ``kernel_net`` (and ``mask``) on the grid of ``axes`` as a ``dtype`` conv weight,
    under the precision policy of every grid continuous convolution.

    The grid (``axes(work_dtype)``), the kernel net and the mask run in
    :func:`kernel_compute_dtype` of ``dtype`` (float32 for half precisions) with autocast off
    on ``device``; a module's parameters are cast for the call; the result is rounded to
    ``dtype`` once.  :meth:`ckconv.nn.ContinuousConv.kernel`, :func:`ckconv` and
    :func:`flexconv` all generate their kernels here.

    Shape:
        - Output: as :func:`sample_kernel`
    """
    work = kernel_compute_dtype(dtype)
    with torch.autocast(torch.device(device).type, enabled=False):
        grid = meshgrid(list(axes(work)))
        weight = sample_kernel(
            lambda positions: _call_in(kernel_net, work, positions),
            grid,
            in_channels,
            separable=separable,
            scale=scale,
            mask=None if mask is None else _call_in(mask, work, grid),
        )
    return weight if weight.dtype == dtype else weight.to(dtype)


def apply_kernel(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    mixer: torch.Tensor | None = None,
    causal: bool = False,
    method: Method = "auto",
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Convolve ``input`` with a sampled continuous kernel: the second half of every grid
    continuous convolution (the first is sampling the kernel, :func:`sample_kernel`).

    Dense: ``weight`` ``(C_out, C_in, *K)``, same-size :func:`~ckconv.functional.conv` plus
    ``bias``.  Separable (``mixer`` given): ``weight`` ``(C_in, 1, *K)`` depthwise, then the
    ``(C_out, C_in)`` mixer and ``bias`` (:func:`~ckconv.functional.mix`).  ``padding_mode``
    as in :func:`~ckconv.functional.conv`.

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """
    if mixer is None:
        return conv(input, weight, bias, causal=causal, method=method, padding_mode=padding_mode)
    c_in = input.shape[1]
    y = conv(
        input, weight, None, groups=c_in, causal=causal, method=method, padding_mode=padding_mode
    )
    return mix(y, mixer, bias)


def _data_dim(input: torch.Tensor, kernel_size: int | Sequence[int]) -> int:
    """Spatial dimensions of a functional call: ``len(kernel_size)``, or the input's for an int
    ``kernel_size`` (1 to 3)."""
    tensor("input", input, floating=True)
    if not isinstance(kernel_size, int):
        return len(kernel_size)
    if not 3 <= input.dim() <= 5:
        raise ArgumentValueError(
            f"input must have shape (N, C, *spatial) with 1 to 3 spatial dimensions, got shape "
            f"{tuple(input.shape)}",
            "input",
        )
    return input.dim() - 2


def _check_input(input: torch.Tensor, data_dim: int) -> None:
    tensor("input", input, floating=True)
    if input.dim() != data_dim + 2:
        raise ArgumentValueError(
            f"input must have shape (N, C, *spatial) with {data_dim} spatial dimension(s), "
            f"got shape {tuple(input.shape)}",
            "input",
        )
    if any(s == 0 for s in input.shape):
        raise ArgumentValueError(
            f"input must be non-empty in every dimension, got shape {tuple(input.shape)}", "input"
        )


def grid_kernel(
    kernel_net: KernelNetLike,
    kernel_size: Sequence[int],
    input: torch.Tensor,
    *,
    causal: bool,
    rate: RateLike | None,
    padding_mode: PaddingMode,
    separable: bool,
    dtype: torch.dtype,
) -> torch.Tensor:
    """The kernel the functional twins convolve ``input`` with: ``kernel_net`` sampled on the
    grid of ``kernel_size`` at ``rate`` (:func:`kernel_axes`), scaled by eq. 5 and generated
    under the autocast policy of :func:`generate_kernel`, returned in ``dtype``."""
    return generate_kernel(
        kernel_net,
        lambda work: kernel_axes(
            kernel_size,
            causal=causal,
            rate=rate,
            input_size=input.shape[2:],
            padding_mode=padding_mode,
            device=input.device,
            dtype=work,
        ),
        input.shape[1],
        separable=separable,
        device=input.device,
        dtype=dtype,
        scale=rate_scale(rate, len(kernel_size)),
    )


def ckconv(
    input: torch.Tensor,
    kernel_net: KernelNetLike,
    kernel_size: int | Sequence[int],
    bias: torch.Tensor | None = None,
    *,
    mixer: torch.Tensor | None = None,
    causal: bool = False,
    rate: RateLike | None = None,
    blur: bool = False,
    method: Method = "auto",
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Continuous kernel convolution (CKConv).

    Args:
        input: ``(N, C_in, *spatial)``.
        kernel_net: maps positions ``(..., D)`` to ``(..., C_out * C_in)`` values (dense) or
            ``(..., C_in)`` (separable, when ``mixer`` is given).
        kernel_size: kernel samples per dimension at the training sampling rate.
        bias: ``(C_out,)``.
        mixer: ``(C_out, C_in)`` pointwise weight; makes the convolution depthwise-separable.
        causal: 1D causal convolution.
        rate: sampling-rate ratio ``sr_test / sr_train`` (per dimension or one number); the
            kernel is sampled at the new step and scaled by ``1 / rate`` (CKConv eq. 5).
        blur: when ``rate > 1`` (finer than training), blur the sampled kernel
            (:func:`blur_kernel`).
        method: convolution back-end, see :func:`ckconv.functional.conv`.
        padding_mode: ``"zeros"`` or ``"circular"`` (periodic axis), one value or one per
            spatial axis; on a circular axis the kernel is sampled over at most one period of
            the input (:func:`kernel_axes`).

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """
    data_dim = _data_dim(input, kernel_size)
    _check_input(input, data_dim)
    dtype = conv_dtype(input)
    weight = grid_kernel(
        kernel_net,
        as_sizes(kernel_size, data_dim, "kernel_size"),
        input,
        causal=causal,
        rate=rate,
        padding_mode=padding_mode,
        separable=mixer is not None,
        dtype=dtype,
    )
    return _convolve(input, weight, bias, mixer, dtype, causal, rate, blur, method, padding_mode)


def _convolve(input, weight, bias, mixer, dtype, causal, rate, blur, method, padding_mode):
    """The convolution half of :func:`ckconv` / :func:`flexconv` (and of the modules): in
    ``dtype`` (:func:`conv_dtype`), with the optional blur of a finer kernel."""
    if blur:
        weight = blur_kernel(weight, rate)
    return apply_kernel(
        input.to(dtype),
        weight,
        None if bias is None else bias.to(dtype),
        mixer=None if mixer is None else mixer.to(dtype),
        causal=causal,
        method=method,
        padding_mode=padding_mode,
    )


@torch.compiler.disable
def _sigma_crop(
    steps: list[float], sigma: torch.Tensor, threshold: float, causal: bool
) -> tuple[int, ...]:
    # The crop is a size read off the learned sigma: a data-dependent int, so under
    # torch.compile it is the one graph break of a FlexConv (run eagerly here; the sizes it
    # returns are guarded on, see docs/performance.md).
    return crop_counts(steps, sigma.detach().abs().tolist(), threshold, causal=causal)


def flexconv_axes(
    kernel_size: Sequence[int],
    sigma: torch.Tensor,
    threshold: float,
    *,
    causal: bool,
    rate: RateLike | None,
    input_size: Sequence[int] | None,
    device: torch.device | str | None,
    dtype: torch.dtype | None,
    padding_mode: PaddingMode = "zeros",
) -> list[torch.Tensor]:
    """Kernel axes of a FlexConv: the grid at ``rate`` cropped where the mask is below threshold."""
    rates = as_rates(rate, len(kernel_size))
    steps = [grid_step(k) / r for k, r in zip(kernel_size, rates)]
    crop = _sigma_crop(steps, sigma, threshold, causal)
    return kernel_axes(
        kernel_size,
        causal=causal,
        rate=rate,
        input_size=input_size,
        crop=crop,
        padding_mode=padding_mode,
        device=device,
        dtype=dtype,
    )


def flexconv(
    input: torch.Tensor,
    kernel_net: KernelNetLike,
    kernel_size: int | Sequence[int],
    mask_mu: torch.Tensor,
    mask_sigma: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    mixer: torch.Tensor | None = None,
    mask_threshold: float = 0.1,
    causal: bool = False,
    rate: RateLike | None = None,
    blur: bool = False,
    method: Method = "auto",
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """FlexConv: a continuous kernel times a learnable Gaussian mask, cropped where it vanishes.

    The kernel network is evaluated only on the cropped grid (SPEC §3.4).  Arguments as in
    :func:`ckconv` (``padding_mode`` included), plus the Gaussian mask's ``mask_mu`` / ``mask_sigma`` ``(D,)`` and its
    crop threshold ``mask_threshold`` (the same three arguments as
    :func:`~ckconv.functional.irregular_ckconv`).

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """
    data_dim = _data_dim(input, kernel_size)
    _check_input(input, data_dim)
    ks = as_sizes(kernel_size, data_dim, "kernel_size")
    open_unit("mask_threshold", mask_threshold)
    for name, value in (("mask_mu", mask_mu), ("mask_sigma", mask_sigma)):
        tensor(name, value, floating=True)
        if value.shape != (data_dim,):
            raise ArgumentValueError(
                f"{name} must have shape ({data_dim},) (one per spatial dimension), got "
                f"{tuple(value.shape)}",
                name,
            )
    finite_tensor("mask_sigma", mask_sigma.detach())
    dtype = conv_dtype(input)
    weight = generate_kernel(
        kernel_net,
        lambda work: flexconv_axes(
            ks,
            mask_sigma,
            mask_threshold,
            causal=causal,
            rate=rate,
            input_size=input.shape[2:],
            device=input.device,
            dtype=work,
            padding_mode=padding_mode,
        ),
        input.shape[1],
        separable=mixer is not None,
        device=input.device,
        dtype=dtype,
        scale=rate_scale(rate, data_dim),
        mask=lambda grid: gaussian_mask(grid, mask_mu.to(grid.dtype), mask_sigma.to(grid.dtype)),
    )
    return _convolve(input, weight, bias, mixer, dtype, causal, rate, blur, method, padding_mode)
