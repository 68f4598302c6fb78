"""A Hyena network: the CCNN residual body with :class:`~ckconv.nn.Hyena` mixers."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import padding_modes, positive_int
from ckconv.functional.conv import PaddingMode
from ckconv.grids import RateLike
from ckconv.models.common import (
    Head,
    HeadKind,
    PointwiseLinear,
    Stem,
    make_norm,
    preset_kwargs,
)
from ckconv.nn import Hyena

__all__ = ["HYENA_PRESETS", "HyenaBlock", "HyenaNet"]

#: Named sizes (``build_model("hyena", preset=...)``).
HYENA_PRESETS: dict[str, dict[str, Any]] = {
    "hyena_2_64": {"num_blocks": 2, "hidden_channels": 64, "order": 2},
    "hyena_4_128": {"num_blocks": 4, "hidden_channels": 128, "order": 2},
}


def filter_factory(name: str, *, hidden: int, layers: int, omega_0: float | None, causal: bool):
    """A factory ``f(in_dims, out_channels)`` for :class:`~ckconv.nn.Hyena`'s ``filter``: the
    kernel net ``name`` of :data:`ckconv.kernelnets.KERNEL_NETS` with these sizes (and the
    layer's ``causal`` for nets that take it, e.g. the Hyena filter and MAGNet)."""
    import inspect

    from ckconv.kernelnets import KERNEL_NETS, build_kernel_net

    if not isinstance(name, str) or name.lower() not in KERNEL_NETS:
        raise ValueError(f"filter must be one of {sorted(KERNEL_NETS)}, got {name!r}")
    kwargs: dict[str, Any] = {"hidden": hidden, "layers": layers}
    if omega_0 is not None:
        kwargs["omega_0"] = omega_0
    if "causal" in inspect.signature(KERNEL_NETS[name.lower()]).parameters:
        kwargs["causal"] = causal
    return functools.partial(build_kernel_net, name, **kwargs)


class HyenaBlock(nn.Module):
    """``x + GELU(Linear(Dropout(GELU(Hyena(Norm(x))))))``: the CCNN block with a Hyena
    mixer in place of the separable FlexConv.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C, *spatial)``
    """

    def __init__(
        self,
        channels: int,
        data_dim: int,
        *,
        order: int,
        input_size: int | Sequence[int] | None,
        kernel_size: Any,
        filter: Any,
        causal: bool = False,
        short_kernel_size: int = 3,
        dropout: float = 0.0,
        norm: str = "layer",
        padding_mode: PaddingMode = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm = make_norm(norm, channels, data_dim, **factory)
        self.mixer = Hyena(
            channels,
            order,
            data_dim,
            causal=causal,
            input_size=input_size,
            kernel_size=kernel_size,
            filter=filter,
            short_kernel_size=short_kernel_size,
            padding_mode=padding_mode,
            **factory,
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = PointwiseLinear(channels, channels, **factory)

    def forward(
        self, x: torch.Tensor, *, rate: RateLike | None = None, blur: bool = False
    ) -> torch.Tensor:
        y = F.gelu(self.mixer(self.norm(x), rate=rate, blur=blur))
        y = F.gelu(self.linear(self.dropout(y)))
        return x + y


class HyenaNet(nn.Module):
    r"""A Hyena network for sequences, images and volumes.

    ``stem -> Norm -> GELU -> num_blocks x HyenaBlock -> Norm -> head`` (the CCNN body with
    :class:`~ckconv.nn.Hyena` mixers; SPEC §5 for the CCNN).

    Args:
        in_channels: input channels (ignored when ``vocab_size`` is set).
        out_channels: classes (or regression targets).
        data_dim: 1, 2 or 3.
        input_size: spatial size of the training inputs (fixes the long kernels' grid).
        hidden_channels, num_blocks: width and depth (presets: :data:`HYENA_PRESETS`).
        order: Hyena order (long convolutions per mixer).
        causal: causal sequence model (1D).
        kernel_size: long-kernel taps at the training rate (default global: ``"same"`` causal,
            ``"full"`` centred).
        filter: kernel net of the long filters (``"hyena"`` default, ``"siren"``, ...).
        filter_hidden, filter_layers, filter_omega_0: its size and frequency (``None``: the
            net's default).
        short_kernel_size: taps of the short explicit filter.
        dropout: dropout inside the blocks.
        norm: ``"layer"`` (per position, default), ``"batch"``, ``"group"`` or ``"none"``.
        head: ``"mean"``, ``"last"`` or ``"none"``.
        vocab_size: token inputs ``(N, L)`` through an embedding.
        padding_mode: boundary condition of every mixer's short and long filters:
            ``"zeros"`` (default) or ``"circular"`` (periodic axis), one value or one per
            axis (:class:`~ckconv.nn.Hyena`); ``causal=True`` needs ``"zeros"``.  The rest of
            the network is pointwise or pools globally, so with ``head="none"`` a circular
            axis makes it equivariant to circular shifts along that axis.

    Forward:
        ``forward(x, *, rate=None, blur=False)`` -- ``rate`` = ``sr_input / sr_train``.

    Shape:
        - Input: ``(N, C_in, *spatial)`` or ``(N, L)`` token ids
        - Output: ``(N, out_channels)``, or ``(N, out_channels, *spatial)`` with ``head="none"``

    Examples:
        >>> model = HyenaNet(1, 10, input_size=32, hidden_channels=16, num_blocks=2)
        >>> model(torch.randn(4, 1, 32)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        *,
        input_size: int | Sequence[int],
        hidden_channels: int = 64,
        num_blocks: int = 2,
        order: int = 2,
        causal: bool = False,
        kernel_size: Any = None,
        filter: str = "hyena",
        filter_hidden: int = 64,
        filter_layers: int = 3,
        filter_omega_0: float | None = None,
        short_kernel_size: int = 3,
        dropout: float = 0.0,
        norm: str = "layer",
        head: HeadKind = "mean",
        vocab_size: int | None = None,
        padding_mode: PaddingMode = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("hidden_channels", hidden_channels),
            ("num_blocks", num_blocks),
            ("out_channels", out_channels),
        ):
            positive_int(name, value)
        if vocab_size is not None and data_dim != 1:
            raise ValueError(
                f"token inputs (vocab_size) are sequences: data_dim must be 1, got {data_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
        factory = {"device": device, "dtype": dtype}
        self.data_dim = data_dim
        self.causal = causal
        self.stem = Stem(
            in_channels, hidden_channels, vocab_size=vocab_size, data_dim=data_dim, **factory
        )
        self.stem_norm = make_norm(norm, hidden_channels, data_dim, **factory)
        net = filter_factory(
            filter,
            hidden=filter_hidden,
            layers=filter_layers,
            omega_0=filter_omega_0,
            causal=causal,
        )
        self.blocks = nn.ModuleList(
            HyenaBlock(
                hidden_channels,
                data_dim,
                order=order,
                input_size=input_size,
                kernel_size=kernel_size,
                filter=net,
                causal=causal,
                short_kernel_size=short_kernel_size,
                dropout=dropout,
                norm=norm,
                padding_mode=padding_mode,
                **factory,
            )
            for _ in range(num_blocks)
        )
        self.out_norm = make_norm(norm, hidden_channels, data_dim, **factory)
        self.head = Head(hidden_channels, out_channels, head, **factory)

    @classmethod
    def preset(
        cls,
        name: str,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        *,
        input_size: int | Sequence[int],
        **overrides: Any,
    ) -> HyenaNet:
        """Build a :data:`HYENA_PRESETS` size (``"hyena_2_64"``, ``"hyena_4_128"``)."""
        kwargs = preset_kwargs("Hyena", HYENA_PRESETS, name, overrides)
        return cls(in_channels, out_channels, data_dim, input_size=input_size, **kwargs)

    def forward(
        self, x: torch.Tensor, *, rate: RateLike | None = None, blur: bool = False
    ) -> torch.Tensor:
        h = F.gelu(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            h = block(h, rate=rate, blur=blur)
        return self.head(self.out_norm(h))
