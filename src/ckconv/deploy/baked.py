"""A continuous convolution frozen for one input size: a fixed kernel, no kernel network.

:class:`BakedConv` holds the kernel a :class:`~ckconv.nn.CKConv` / :class:`~ckconv.nn.FlexConv`
samples for a given input size (and sampling rate) as a buffer, and runs it either as a plain
``F.conv{1,2,3}d`` with the same-size padding (small kernels) or as a convolution with a
precomputed spectrum (long kernels).  Both give the numbers of
:func:`ckconv.functional.conv` with the same kernel.

The FFT path is written with ``torch.fft`` operations only (``rfftn`` -> multiply or one
batched complex matmul -> ``irfftn`` with explicit sizes -> crop), so a baked model traces
whole under ``torch.compile(fullgraph=True)``, ``torch.export`` and the ONNX exporter
(``DFT`` nodes).  The spectrum is stored as a real tensor (``torch.view_as_real``) so that
``.to(dtype)`` / ``.double()`` convert it like any other floating-point buffer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import choice, padding_modes, positive_int
from ckconv.deploy._fixed import FixedKernelConv
from ckconv.functional.ckconv import blur_kernel
from ckconv.functional.conv import PaddingMode, boundary_pad, mix, padding_for, select_method
from ckconv.functional.fft_engine import kernel_spectrum, make_plan
from ckconv.grids import RateLike, as_rates, as_sizes
from ckconv.nn._params import register_mixer_and_bias

__all__ = ["BakedConv", "Execution", "fixed_spectrum", "spectrum_conv_nd"]

Execution = Literal["auto", "direct", "fft"]


def fixed_spectrum(
    weight: torch.Tensor,
    input_size: Sequence[int],
    *,
    causal: bool = False,
    groups: int = 1,
    circular: Sequence[bool] | None = None,
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The engine's conjugated kernel spectrum for a same-size convolution of ``input_size``,
    and the FFT sizes it was computed at.

    The FFT sizes and the circular placement are the engine's
    (:func:`~ckconv.functional.fft_engine.make_plan`, which picks sizes with
    :func:`~ckconv.functional.fft_engine.good_fft_size`;
    :func:`~ckconv.functional.fft_engine.kernel_spectrum`), so the same-size cross-correlation
    is the first ``L`` samples of ``irfftn(rfftn(x, s=n) * spectrum, s=n)``.  Computed in
    float64 and returned in the complex dtype matching ``weight``.

    Shape:
        - weight: ``(C_out, C_in / groups, *K)``
        - Output: ``(groups, C_out / groups, C_in / groups, *n[:-1], n[-1] // 2 + 1)`` complex
    """
    ks = kernel_spectrum(
        weight.double(), input_size, groups=groups, causal=causal, circular=circular
    )
    complex_dtype = torch.complex128 if weight.dtype == torch.float64 else torch.complex64
    spec = ks.spectrum
    return spec.to(complex_dtype), ks.plan.n


def spectrum_conv_nd(
    input: torch.Tensor,
    spectrum: torch.Tensor,
    fft_shape: Sequence[int],
    *,
    depthwise: bool,
) -> torch.Tensor:
    """Same-size convolution of ``input`` with a precomputed :func:`fixed_spectrum`.

    ``depthwise``: ``spectrum`` is ``(C, *freq)`` (one kernel per channel); otherwise it is
    ``(*freq, C_in, C_out)`` and the channels are contracted with one batched complex matmul
    over the frequencies.  No bias.

    Shape:
        - Input: ``(N, C_in, *L)``
        - Output: ``(N, C_out, *L)``
    """
    data_dim = input.dim() - 2
    dims = tuple(range(-data_dim, 0))
    spatial = input.shape[2:]
    xs = torch.fft.rfftn(input, s=list(fft_shape), dim=dims)
    if depthwise:
        ys = xs * spectrum
    else:
        # (N, C_in, *F) -> (*F, N, C_in) @ (*F, C_in, C_out) -> (*F, N, C_out) -> (N, C_out, *F)
        order = (*range(2, 2 + data_dim), 0, 1)
        # contiguous operands keep CPU complex bmm off its slow per-matrix loop
        ys = torch.matmul(xs.permute(order).contiguous(), spectrum)
        ys = ys.permute(data_dim, data_dim + 1, *range(data_dim))
    out = torch.fft.irfftn(ys, s=list(fft_shape), dim=dims)
    return out[(..., *(slice(0, s) for s in spatial))]


class BakedConv(FixedKernelConv):
    r"""A continuous convolution baked for one input size: fixed kernel, no kernel network.

    Build it with :meth:`from_conv` (or :func:`ckconv.deploy.bake` for a whole model).  The
    kernel is a buffer (``weight``); the pointwise ``mixer`` of a separable layer and the
    ``bias`` are parameters copied from the source layer.  It computes exactly what the source
    layer computes on inputs of ``input_size`` at the rate it was baked for, and only that:
    other spatial sizes raise, and the sampling keywords of :meth:`ckconv.nn.CKConv.forward`
    are accepted only with their default values (or repeating the baked rate).

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel_size: kernel taps per dimension (every tap must reach an output of
            ``input_size``: the kernel :meth:`CKConv.kernel` returns with ``input_size``).
        input_size: spatial size of the inputs it runs on.
        separable: depthwise kernel ``(C_in, 1, *K)`` followed by a ``(C_out, C_in)`` mixer.
        causal: 1D causal convolution (output ``t`` sees inputs ``<= t``).
        bias: learnable bias.
        method: ``"direct"`` (``F.conv{1,2,3}d``), ``"fft"`` (precomputed spectrum) or
            ``"auto"`` (the inference crossover of
            :func:`ckconv.functional.conv.select_method`); fixed at construction.
        rate: the sampling-rate ratio the kernel was sampled at (recorded; forward accepts
            ``rate=`` only when it repeats this).
        blur: whether the kernel was blurred (recorded).
        padding_mode: ``"zeros"`` or ``"circular"`` per axis, as in
            :class:`~ckconv.nn.CKConv` (on a circular axis the kernel has at most ``L`` taps).

    Shape:
        - Input: ``(N, C_in, *input_size)``
        - Output: ``(N, C_out, *input_size)``

    Examples:
        >>> from ckconv.nn import FlexConv
        >>> conv = FlexConv(3, 8, kernel_size=33, separable=True).eval()
        >>> baked = BakedConv.from_conv(conv, input_size=(50,))
        >>> x = torch.randn(2, 3, 50)
        >>> torch.allclose(baked(x), conv(x), atol=1e-5)
        True
    """

    weight: torch.Tensor
    spectrum: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        *,
        input_size: int | Sequence[int],
        separable: bool = False,
        causal: bool = False,
        bias: bool = True,
        method: Execution = "auto",
        rate: RateLike | None = None,
        blur: bool = False,
        padding_mode: PaddingMode = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        positive_int("in_channels", in_channels)
        positive_int("out_channels", out_channels)
        if isinstance(kernel_size, int):
            raise TypeError(
                f"kernel_size must be a sequence with one size per dimension, got {kernel_size!r}"
            )
        data_dim = len(kernel_size)
        if data_dim not in (1, 2, 3):
            raise ValueError(f"kernel_size must have 1, 2 or 3 entries, got {kernel_size!r}")
        ksize = as_sizes(kernel_size, data_dim, "kernel_size")
        size = as_sizes(input_size, data_dim, "input_size")
        if causal and data_dim != 1:
            raise ValueError(f"causal=True needs a 1D kernel, got kernel_size={ksize}")
        choice("method", method, ("auto", "direct", "fft"))
        modes = padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
        circular = tuple(m == "circular" for m in modes)
        for d, (k, L) in enumerate(zip(ksize, size)):
            left, right = padding_for(k, causal)
            if circular[d] and k > L:
                raise ValueError(
                    f"kernel_size[{d}]={k} is longer than one period of the circular axis "
                    f"input_size[{d}]={L} (sample the kernel with input_size=...)"
                )
            if left > L - 1 or right > L - 1:
                raise ValueError(
                    f"kernel_size[{d}]={k} has taps that reach no output of input_size[{d}]={L} "
                    "(sample the kernel with input_size=..., e.g. CKConv.kernel(input_size=...))"
                )
        factory = {"device": device, "dtype": dtype}
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.data_dim = data_dim
        self.kernel_size = ksize
        self.input_size = size
        self.separable = separable
        self.causal = causal
        self.rate = as_rates(rate, data_dim)
        self.blur = bool(blur)
        self.padding_mode: PaddingMode = modes[0] if len(set(modes)) == 1 else modes
        self.circular = circular
        self.groups = in_channels if separable else 1
        wshape = (in_channels, 1, *ksize) if separable else (out_channels, in_channels, *ksize)
        if method == "auto":
            # a baked kernel is a constant: the inference crossover applies
            method = select_method(  # type: ignore[assignment]
                (1, in_channels, *size),
                wshape,
                groups=self.groups,
                causal=causal,
                needs_grad=False,
                padding_mode=modes,
            )
        self.method: Literal["direct", "fft"] = method  # type: ignore[assignment]
        self.register_buffer("weight", torch.zeros(wshape, **factory))
        if self.method == "fft":
            self.fft_shape = make_plan(size, ksize, causal=causal, circular=circular).n
            freq = (*self.fft_shape[:-1], self.fft_shape[-1] // 2 + 1)
            sshape = (in_channels, *freq, 2) if separable else (*freq, in_channels, out_channels, 2)
            self.register_buffer("spectrum", torch.zeros(sshape, **factory))
        else:
            self.fft_shape = ()
            self.register_buffer("spectrum", None)
        register_mixer_and_bias(
            self, in_channels, out_channels, separable=separable, bias=bias, factory=factory
        )
        self.reset_parameters()

    def _spectrum_of(self, weight: torch.Tensor) -> torch.Tensor:
        spec, _ = fixed_spectrum(
            weight, self.input_size, causal=self.causal, groups=self.groups, circular=self.circular
        )
        if self.separable:
            return spec[:, 0, 0]  # (C, *freq)
        # (1, C_out, C_in, *freq) -> (*freq, C_in, C_out)
        return spec[0].permute(*range(2, 2 + self.data_dim), 1, 0)

    @classmethod
    def from_conv(
        cls,
        conv: nn.Module,
        input_size: int | Sequence[int],
        *,
        rate: RateLike | None = None,
        blur: bool = False,
        method: Execution = "auto",
    ) -> BakedConv:
        """Bake a :class:`~ckconv.nn.CKConv` (or subclass, e.g. FlexConv) for ``input_size``.

        The kernel is what ``conv`` samples for inputs of that size at ``rate`` (taps that
        reach no output dropped), blurred when ``blur`` (CKConv appendix E.3).
        """
        from ckconv.nn import CKConv

        if not isinstance(conv, CKConv):
            raise TypeError(f"conv must be a ckconv.nn.CKConv (or subclass), got {type(conv)}")
        size = as_sizes(input_size, conv.data_dim, "input_size")
        with torch.no_grad():
            weight = conv.kernel(rate, size)
            if blur:
                weight = blur_kernel(weight, rate)
        ref = weight
        baked = cls(
            conv.in_channels,
            conv.out_channels,
            tuple(weight.shape[2:]),
            input_size=size,
            separable=conv.separable,
            causal=conv.causal,
            bias=conv.bias is not None,
            method=method,
            rate=rate,
            blur=blur,
            padding_mode=conv.padding_mode,
            device=ref.device,
            dtype=ref.dtype,
        )
        baked.set_kernel_(weight)
        if conv.mixer is None and baked.mixer is not None:
            baked.register_parameter("mixer", None)  # depthwise without mixer (Hyena's filters)
        with torch.no_grad():
            if conv.mixer is not None:
                baked.mixer.copy_(conv.mixer)
            if conv.bias is not None:
                baked.bias.copy_(conv.bias)
        baked.train(conv.training)
        return baked

    # -- forward ------------------------------------------------------------------------
    def _check_call(
        self,
        input: torch.Tensor,
        rate: RateLike | None,
        blur: bool,
        times: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> None:
        if times is not None or mask is not None:
            raise ValueError(
                "a baked convolution runs on the regular grid it was baked for; times=/mask= "
                "(irregular samples) need the original continuous layer"
            )
        if rate is not None and not all(
            math.isclose(a, b, rel_tol=1e-9)
            for a, b in zip(as_rates(rate, self.data_dim), self.rate)
        ):
            raise ValueError(
                f"this layer was baked at rate={self.rate}, got rate={rate!r}; bake the model "
                "again for that rate (ckconv.deploy.bake(model, input_size, rate=...))"
            )
        if blur and not self.blur:
            raise ValueError(
                "blur=True, but this layer was baked without blur; bake with blur=True"
            )
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
        expected = (self.in_channels, *self.input_size)
        if input.dim() != self.data_dim + 2 or tuple(input.shape[1:]) != expected:
            raise ValueError(
                f"this baked layer runs on inputs of shape (N, {', '.join(map(str, expected))}) "
                f"(input_size={self.input_size}), got {tuple(input.shape)}; bake the model again "
                "for other sizes"
            )
        if input.dtype != self.weight.dtype:
            raise TypeError(
                f"input dtype {input.dtype} does not match the baked kernel's {self.weight.dtype}"
            )

    def forward(
        self,
        input: torch.Tensor,
        *,
        rate: RateLike | None = None,
        blur: bool = False,
        times: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        weighting: str = "none",
        out_of_domain: str = "mask",
    ) -> torch.Tensor:
        """Convolve ``input`` (of the baked size).  The keywords mirror
        :meth:`ckconv.nn.CKConv.forward` so a baked model keeps its call signature; they may
        only restate what was baked."""
        self._check_call(input, rate, blur, times, mask)
        if self.method == "direct":
            pads = [padding_for(k, self.causal) for k in self.kernel_size]
            x = boundary_pad(input, [a for a, _ in pads], [b for _, b in pads], self.circular)
            convnd = (F.conv1d, F.conv2d, F.conv3d)[self.data_dim - 1]
            bias = self.bias if self.mixer is None else None
            y = convnd(x, self.weight, bias, groups=self.groups)
        else:
            y = spectrum_conv_nd(
                input,
                torch.view_as_complex(self.spectrum),
                self.fft_shape,
                depthwise=self.separable,
            )
            if self.mixer is None and self.bias is not None:
                y = y + self.bias.view(1, -1, *([1] * self.data_dim))
        return y if self.mixer is None else mix(y, self.mixer, self.bias)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"input_size={self.input_size}, method={self.method!r}"
        )
        if self.separable:
            s += ", separable=True"
        if self.causal:
            s += ", causal=True"
        if self.bias is None:
            s += ", bias=False"
        if any(r != 1.0 for r in self.rate):
            s += f", rate={self.rate}"
        if self.blur:
            s += ", blur=True"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s
