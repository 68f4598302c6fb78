"""The Hyena operator (Poli et al. 2023) as functions: a data-controlled gate around long
continuous kernel convolutions.

:func:`hyena_recurrence` is the operator's core, shared with :class:`ckconv.nn.Hyena`: the
projected input is split into a value stream ``v`` and ``order`` gates ``x_1..x_N``, and
``z_1 = v``, ``z_{n+1} = x_n * (h_n conv z_n)``.  :func:`hyena` is the functional twin of the
module: the projections, the short depthwise convolution and long depthwise convolutions whose
kernels are sampled from kernel networks (as :func:`~ckconv.functional.ckconv` samples them,
with the CKConv eq. 5 scaling at another ``rate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ckconv.functional.ckconv import (
    KernelNetLike,
    blur_kernel,
    conv_dtype,
    grid_kernel,
)
from ckconv.functional.conv import Method, PaddingMode, conv, mix
from ckconv.grids import RateLike, as_sizes

__all__ = ["depthwise_ckconv", "hyena", "hyena_recurrence"]


def hyena_recurrence(
    u: torch.Tensor,
    long_convs: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    *,
    dropout: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The Hyena recurrence on the projected streams ``u`` ``(N, (order + 1) C, *spatial)``.

    ``u`` splits along channels into ``v, x_1, ..., x_order`` (``C`` channels each); with
    ``z = v``, every order applies ``z = x_n * long_convs[n](dropout(z))``; returns ``z``.

    Shape:
        - u: ``(N, (order + 1) C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """
    order = len(long_convs)
    if order < 1:
        raise ValueError("hyena needs at least one long convolution (order >= 1)")
    if u.shape[1] % (order + 1) != 0:
        raise ValueError(
            f"the projected input has {u.shape[1]} channels, not a multiple of order + 1 = "
            f"{order + 1}"
        )
    v, *gates = u.split(u.shape[1] // (order + 1), dim=1)
    z = v
    for gate, long_conv in zip(gates, long_convs):
        z = gate * long_conv(z if dropout is None else dropout(z))
    return z


def depthwise_ckconv(
    input: torch.Tensor,
    kernel_net: KernelNetLike,
    kernel_size: int | Sequence[int],
    bias: torch.Tensor | None = None,
    *,
    causal: bool = False,
    rate: RateLike | None = None,
    blur: bool = False,
    method: Method = "auto",
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Depthwise continuous kernel convolution: one kernel per channel, no channel mixing.

    ``kernel_net`` maps positions ``(..., D)`` to ``C`` values (one kernel per input channel);
    the kernel is sampled as :func:`~ckconv.functional.ckconv` samples it (``rate``: CKConv
    eq. 5; under autocast in float32 and rounded once, :func:`~ckconv.functional.generate_kernel`)
    and convolved by :func:`~ckconv.functional.conv` with ``groups = C``;
    ``padding_mode`` as there (on a circular axis the kernel covers one period).

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """
    data_dim = input.dim() - 2
    dtype = conv_dtype(input)
    weight = grid_kernel(
        kernel_net,
        as_sizes(kernel_size, data_dim, "kernel_size"),
        input,
        causal=causal,
        rate=rate,
        padding_mode=padding_mode,
        separable=True,
        dtype=dtype,
    )
    return _depthwise_convolve(input, weight, bias, dtype, causal, rate, blur, method, padding_mode)


def _depthwise_convolve(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    dtype: torch.dtype,
    causal: bool,
    rate: RateLike | None,
    blur: bool,
    method: Method,
    padding_mode: PaddingMode,
) -> torch.Tensor:
    """The convolution half of :func:`depthwise_ckconv` and of
    :class:`ckconv.nn.DepthwiseCKConv`: the sampled ``(C, 1, *K)`` kernel (blurred when
    ``blur``) applied with ``groups = C`` in ``dtype`` (:func:`~ckconv.functional.conv_dtype`:
    the autocast dtype under autocast), as :func:`~ckconv.functional.ckconv` convolves.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """
    if blur:
        weight = blur_kernel(weight, rate)
    return conv(
        input.to(dtype),
        weight,
        None if bias is None else bias.to(dtype),
        groups=input.shape[1],
        causal=causal,
        method=method,
        padding_mode=padding_mode,
    )


def hyena(
    input: torch.Tensor,
    in_weight: torch.Tensor,
    short_weight: torch.Tensor,
    kernel_nets: Sequence[KernelNetLike],
    kernel_size: int | Sequence[int],
    out_weight: torch.Tensor,
    *,
    in_bias: torch.Tensor | None = None,
    short_bias: torch.Tensor | None = None,
    long_biases: Sequence[torch.Tensor | None] | None = None,
    out_bias: torch.Tensor | None = None,
    causal: bool = False,
    rate: RateLike | None = None,
    blur: bool = False,
    method: Method = "auto",
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """The Hyena operator (functional twin of :class:`ckconv.nn.Hyena`).

    ``mix(input, in_weight)`` -> short depthwise conv (``short_weight``, explicit taps) ->
    :func:`hyena_recurrence` with the long depthwise convolutions of ``kernel_nets`` (one per
    order, sampled on ``kernel_size`` training taps) -> ``mix(., out_weight)``.

    Args:
        input: ``(N, C, *spatial)``.
        in_weight: ``((order + 1) C, C)``; ``in_bias`` ``((order + 1) C,)``.
        short_weight: ``((order + 1) C, 1, *S)`` the short filter; ``short_bias`` its bias.
        kernel_nets: ``order`` kernel networks, each ``positions (..., D) -> (..., C)``.
        kernel_size: training taps of the long kernels per dimension.
        out_weight: ``(C, C)``; ``out_bias`` ``(C,)``.
        long_biases: one bias ``(C,)`` (or None) per long convolution.
        causal: 1D causal (short and long filters).
        rate: sampling-rate ratio ``sr_input / sr_train`` of the long kernels (CKConv eq. 5);
            the short filter is explicit and applied as is.
        blur, method: as in :func:`~ckconv.functional.ckconv`.
        padding_mode: boundary condition of the short and long convolutions (``"zeros"`` or
            ``"circular"``, one value or one per axis).

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """
    nets = list(kernel_nets)
    biases = list(long_biases) if long_biases is not None else [None] * len(nets)
    if len(biases) != len(nets):
        raise ValueError(
            f"long_biases has {len(biases)} entries for {len(nets)} kernel_nets (one per order)"
        )
    u = mix(input, in_weight, in_bias)
    u = conv(
        u,
        short_weight,
        short_bias,
        groups=u.shape[1],
        causal=causal,
        method="direct",
        padding_mode=padding_mode,
    )

    def long_conv(net: KernelNetLike, bias: torch.Tensor | None):
        return lambda z: depthwise_ckconv(
            z,
            net,
            kernel_size,
            bias,
            causal=causal,
            rate=rate,
            blur=blur,
            method=method,
            padding_mode=padding_mode,
        )

    z = hyena_recurrence(u, [long_conv(n, b) for n, b in zip(nets, biases)])
    return mix(z, out_weight, out_bias)
