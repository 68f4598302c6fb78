"""Hyena (Poli et al. 2023): a data-controlled gate around long continuous kernel convolutions.

:class:`Hyena` projects its input to ``order + 1`` streams, mixes each locally with a short
explicit depthwise convolution (:class:`ShortConv`), and runs the recurrence
``z_1 = v``, ``z_{n+1} = x_n * (h_n conv z_n)`` with ``order`` long depthwise continuous
convolutions (:class:`DepthwiseCKConv`, a :class:`~ckconv.nn.CKConv` without channel mixer)
whose kernels come from kernel networks -- by default Hyena's own implicit filter
(:class:`~ckconv.kernelnets.HyenaFilter`).  The long convolutions are CKConv layers, so the
engine, ``rate`` (CKConv eq. 5), ``bake``, ``stream``, the regularisers and the kernel plots
treat them like every other continuous convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ckconv._checks import choice, padding_modes, positive_int, unit_interval
from ckconv.functional.ckconv import conv_dtype
from ckconv.functional.conv import Method, PaddingMode, conv, mix
from ckconv.functional.hyena import _depthwise_convolve, hyena_recurrence
from ckconv.grids import RateLike, as_sizes
from ckconv.nn.base import KernelNetArg
from ckconv.nn.ckconv import CKConv, KernelSizeArg
from ckconv.nn.gaussian_mask import GaussianMask

__all__ = ["DepthwiseCKConv", "Hyena", "ShortConv"]


class ShortConv(nn.Module):
    """An explicit depthwise convolution of a few taps (Hyena's short filter), same-size
    output, centred or causal (1D).

    Args:
        channels: channels (one kernel each).
        kernel_size: taps per dimension.
        data_dim: 1, 2 or 3.
        causal: 1D only; output ``t`` sees inputs ``<= t``.
        bias: learnable bias.
        padding_mode: ``"zeros"`` or ``"circular"`` (periodic axis), one value or one per
            axis, as in ``torch.nn.Conv*d``; ``causal=True`` needs ``"zeros"``.

    Attributes:
        weight ``(C, 1, *K)``, bias ``(C,)`` or None; ``separable`` (True) and ``mixer``
        (None) say, as on the continuous layers, that the kernel is depthwise without mixer.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | Sequence[int] = 3,
        data_dim: int = 1,
        *,
        causal: bool = False,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        positive_int("channels", channels)
        choice("data_dim", data_dim, (1, 2, 3))
        if causal and data_dim != 1:
            raise ValueError(f"causal=True needs data_dim=1, got data_dim={data_dim}")
        modes = padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
        self.padding_mode: PaddingMode = modes[0] if len(set(modes)) == 1 else modes
        ks = as_sizes(kernel_size, data_dim, "short_kernel_size")
        factory = {"device": device, "dtype": dtype}
        self.in_channels = self.out_channels = channels
        self.data_dim = data_dim
        self.kernel_size = ks
        self.causal = bool(causal)
        self.separable = True
        self.register_parameter("mixer", None)
        self.weight = nn.Parameter(torch.empty(channels, 1, *ks, **factory))
        self.bias = nn.Parameter(torch.empty(channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the torch.nn.Conv initialisation (fan_in = taps of one depthwise kernel)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(math.prod(self.kernel_size))
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return conv(
            input,
            self.weight,
            self.bias,
            groups=self.in_channels,
            causal=self.causal,
            method="direct",
            padding_mode=self.padding_mode,
        )

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, kernel_size={self.kernel_size}, data_dim={self.data_dim}"
        if self.causal:
            s += ", causal=True"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.bias is None:
            s += ", bias=False"
        return s


class DepthwiseCKConv(CKConv):
    r"""A CKConv with one continuous kernel per channel and no channel mixer (the long
    convolution of :class:`Hyena`).

    The kernel net maps positions to ``channels`` values; the layer's kernel is
    ``(C, 1, *K)`` (:meth:`~ckconv.nn.ContinuousConv.kernel`), convolved with ``groups = C``.
    Arguments as :class:`~ckconv.nn.CKConv` (``in_channels = out_channels = channels``);
    the default kernel net is a :class:`~ckconv.kernelnets.HyenaFilter` and the default
    ``init_gain`` is None (the filter's decay window sets its scale).  A
    :class:`~ckconv.kernelnets.HyenaFilter` must have the layer's ``causal``.

    Forward:
        ``forward(input, *, rate=None, blur=False)`` as :meth:`CKConv.forward` on a grid
        (timestamped inputs are not supported).

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``

    Examples:
        >>> conv = DepthwiseCKConv(4, kernel_size="same", input_size=50, causal=True)
        >>> conv(torch.randn(2, 4, 50)).shape
        torch.Size([2, 4, 50])
    """

    def __init__(
        self,
        channels: int,
        data_dim: int = 1,
        *,
        kernel_size: KernelSizeArg = "same",
        input_size: int | Sequence[int] | None = None,
        kernel_net: KernelNetArg = None,
        causal: bool = False,
        bias: bool = True,
        init_gain: float | None = None,
        method: Method = "auto",
        kernel_mask: GaussianMask | None = None,
        padding_mode: PaddingMode = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            channels,
            channels,
            data_dim,
            kernel_size=kernel_size,
            input_size=input_size,
            kernel_net=kernel_net,
            separable=True,
            causal=causal,
            bias=bias,
            init_gain=init_gain,
            method=method,
            kernel_mask=kernel_mask,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        # depthwise: the kernel is the whole map, no pointwise mixer after it
        self.register_parameter("mixer", None)

    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module:
        from ckconv.kernelnets import HyenaFilter

        return HyenaFilter(self.data_dim, n_out, causal=self.causal, **factory)

    def _check_kernel_net(self, net: nn.Module) -> None:
        from ckconv.kernelnets import HyenaFilter

        if isinstance(net, HyenaFilter) and net.causal != self.causal:
            raise ValueError(
                f"kernel_net is a HyenaFilter with causal={net.causal}, but the layer has "
                f"causal={self.causal}: its decay window would start at the wrong end"
            )

    def forward(  # type: ignore[override]
        self, input: torch.Tensor, *, rate: RateLike | None = None, blur: bool = False
    ) -> torch.Tensor:
        self._check_input(input)
        # the precision policy of every grid continuous convolution (CKConv.forward): the
        # kernel net in float32, the convolution in the autocast dtype under autocast
        dtype = conv_dtype(input)
        weight = self.kernel(rate, input.shape[2:], dtype=dtype)
        return _depthwise_convolve(
            input,
            weight,
            self.bias,
            dtype,
            self.causal,
            rate,
            blur,
            self.method,
            self.padding_mode,
        )

    def extra_repr(self) -> str:
        return super().extra_repr().replace(", separable=True", ", depthwise")


FilterArg = Callable[[int, int], nn.Module] | Sequence[nn.Module] | nn.Module | None


class Hyena(nn.Module):
    r"""The Hyena operator (Poli et al. 2023) with continuous long filters.

    ``u = W_in x`` gives ``order + 1`` streams of ``channels`` each (``v, x_1, ..., x_N``),
    every stream is mixed locally by a short explicit depthwise convolution
    (:class:`ShortConv`), then ``z = v`` and for ``n = 1..N``:
    ``z = x_n * (h_n conv z)`` with ``h_n`` a long depthwise continuous kernel
    (:class:`DepthwiseCKConv`); the output is ``W_out z``.  With ``order=2`` this is the
    paper's :math:`\text{Hyena}_2` (two long convolutions, two gates).

    Args:
        channels: input and output channels (``d_model``).
        order: number of long convolutions and gates ``N`` (>= 1).
        data_dim: 1, 2 or 3 spatial dimensions.
        causal: 1D only; output ``t`` depends on inputs ``<= t`` (short and long filters).
        input_size: spatial size of the training inputs (fixes the long kernels' grid).
        kernel_size: taps of the long kernels at the training rate; default ``"same"``
            (causal: the whole past) or ``"full"`` (centred: every offset), i.e. global.
        filter: the long filters' kernel nets: None (a
            :class:`~ckconv.kernelnets.HyenaFilter` each), a factory
            ``f(in_dims, out_channels)`` called once per order (e.g.
            ``functools.partial(SIREN, omega_0=10.)``), or a sequence of ``order`` modules
            (a single module for ``order=1``).  Each maps ``data_dim`` coordinates to
            ``channels`` values.
        short_kernel_size: taps of the short filter per dimension (3 in the paper).
        init_gain: CCNN re-weighting of the long kernels (None: off, the default).
        dropout: dropout on the convolved stream before each long convolution.
        bias: biases of the projections, the short filter and the long convolutions.
        method: long-convolution back-end (``"auto"``, ``"fft"``, ``"direct"``).
        padding_mode: boundary condition of the short and the long filters, ``"zeros"``
            (default) or ``"circular"`` (a periodic axis: the long kernels cover one period,
            ``kernel_size`` ``"full"`` is the period), one value or one per axis; with a
            circular axis the operator is equivariant to circular shifts along it.
            ``causal=True`` needs ``"zeros"``.

    Forward:
        ``forward(input, *, rate=None, blur=False)`` -- ``rate`` = ``sr_input / sr_train``:
        the long kernels are sampled at the new step and scaled by ``1 / rate`` (CKConv eq. 5),
        as in :class:`~ckconv.nn.CKConv`.  The short filter has explicit per-sample taps and
        is applied as is at any rate.

    Shape:
        - Input: ``(N, channels, *spatial)``
        - Output: ``(N, channels, *spatial)``

    Examples:
        >>> op = Hyena(8, order=2, causal=True, input_size=64)
        >>> op(torch.randn(2, 8, 64)).shape
        torch.Size([2, 8, 64])
    """

    def __init__(
        self,
        channels: int,
        order: int = 2,
        data_dim: int = 1,
        *,
        causal: bool = False,
        input_size: int | Sequence[int] | None = None,
        kernel_size: KernelSizeArg | None = None,
        filter: FilterArg = None,
        short_kernel_size: int | Sequence[int] = 3,
        init_gain: float | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        method: Method = "auto",
        padding_mode: PaddingMode = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.channels = positive_int("channels", channels)
        self.order = positive_int("order", order)
        choice("data_dim", data_dim, (1, 2, 3))
        if causal and data_dim != 1:
            raise ValueError(f"causal=True needs data_dim=1, got data_dim={data_dim}")
        unit_interval("dropout", dropout)
        self.data_dim = data_dim
        self.causal = bool(causal)
        factory = {"device": device, "dtype": dtype}
        streams = (order + 1) * channels
        self.in_weight = nn.Parameter(torch.empty(streams, channels, **factory))
        self.in_bias = nn.Parameter(torch.empty(streams, **factory)) if bias else None
        self.short_filter = ShortConv(
            streams,
            short_kernel_size,
            data_dim,
            causal=causal,
            bias=bias,
            padding_mode=padding_mode,
            **factory,
        )
        self.padding_mode: PaddingMode = self.short_filter.padding_mode
        ks = kernel_size if kernel_size is not None else ("same" if causal else "full")
        self.long_filters = nn.ModuleList(
            DepthwiseCKConv(
                channels,
                data_dim,
                kernel_size=ks,
                input_size=input_size,
                kernel_net=net,
                causal=causal,
                bias=bias,
                init_gain=init_gain,
                method=method,
                padding_mode=padding_mode,
                **factory,
            )
            for net in self._filters(filter)
        )
        self.dropout = nn.Dropout(dropout)
        self.out_weight = nn.Parameter(torch.empty(channels, channels, **factory))
        self.out_bias = nn.Parameter(torch.empty(channels, **factory)) if bias else None
        self._reset_projections()

    def _filters(self, filter: FilterArg) -> list[KernelNetArg]:
        if filter is None or (callable(filter) and not isinstance(filter, nn.Module)):
            return [filter] * self.order
        if isinstance(filter, nn.Module) and not isinstance(filter, (nn.ModuleList, list)):
            if self.order != 1:
                raise ValueError(
                    f"filter is one module, but order={self.order} needs one kernel net per "
                    "long convolution: pass a factory f(in_dims, out_channels) or a list of "
                    f"{self.order} modules"
                )
            return [filter]
        if isinstance(filter, (Sequence, nn.ModuleList)):
            nets = list(filter)
            if len(nets) != self.order:
                raise ValueError(
                    f"filter has {len(nets)} kernel nets, expected order={self.order} (one per "
                    "long convolution)"
                )
            return nets
        raise TypeError(
            "filter must be None, a factory f(in_dims, out_channels), a module or a list of "
            f"modules, got {type(filter).__name__}"
        )

    @property
    def kernel_size(self) -> tuple[int, ...]:
        """Taps of the long kernels per dimension at the training rate."""
        return self.long_filters[0].kernel_size

    def _reset_projections(self) -> None:
        # the torch.nn.Linear initialisation for both projections
        for weight, bias in ((self.in_weight, self.in_bias), (self.out_weight, self.out_bias)):
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            if bias is not None:
                bound = 1.0 / math.sqrt(weight.shape[1])
                nn.init.uniform_(bias, -bound, bound)

    def reset_parameters(self) -> None:
        """Re-initialise the projections, the short filter and the long convolutions."""
        self._reset_projections()
        self.short_filter.reset_parameters()
        for f in self.long_filters:
            f.reset_parameters()

    def forward(
        self, input: torch.Tensor, *, rate: RateLike | None = None, blur: bool = False
    ) -> torch.Tensor:
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
        if input.dim() != self.data_dim + 2 or input.shape[1] != self.channels:
            raise ValueError(
                f"Hyena with data_dim={self.data_dim} expects input of shape "
                f"(N, {self.channels}, *{self.data_dim} spatial dims), got {tuple(input.shape)}"
            )
        u = self.short_filter(mix(input, self.in_weight, self.in_bias))
        convs = [lambda z, f=f: f(z, rate=rate, blur=blur) for f in self.long_filters]
        z = hyena_recurrence(u, convs, dropout=self.dropout)
        return mix(z, self.out_weight, self.out_bias)

    def extra_repr(self) -> str:
        s = f"{self.channels}, order={self.order}, data_dim={self.data_dim}"
        if self.causal:
            s += ", causal=True"
        s += f", kernel_size={self.kernel_size}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.in_bias is None:
            s += ", bias=False"
        return s
