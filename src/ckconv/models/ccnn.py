"""CCNN: the Continuous Convolutional Neural Network (Knigge, Romero et al., 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import (
    ArgumentError,
    ArgumentTypeError,
    ArgumentValueError,
    choice,
    padding_modes,
    positive_int,
    unit_interval,
)
from ckconv.functional.conv import PaddingMode
from ckconv.grids import RateLike
from ckconv.models.common import (
    Head,
    HeadKind,
    PointwiseLinear,
    Stem,
    make_norm,
    preset_kwargs,
    sampling_kwargs,
)
from ckconv.nn import FlexConv

__all__ = ["CCNN", "CCNN_PRESETS", "CCNNBlock", "kernel_net_factory"]

#: CCNN-{blocks},{channels} presets of the paper (kernel-net hidden size 32 / 64).
CCNN_PRESETS: dict[str, dict[str, Any]] = {
    "ccnn_4_140": {"num_blocks": 4, "hidden_channels": 140, "kernel_hidden": 32},
    "ccnn_6_380": {"num_blocks": 6, "hidden_channels": 380, "kernel_hidden": 64},
}


def kernel_net_factory(
    name: str,
    *,
    hidden: int,
    layers: int,
    omega_0: float | None,
    causal: bool,
    init_extent: float,
    learn_omega_0: bool = False,
    bias_init: str | None = None,
    weight_init: str | None = None,
):
    """A factory ``f(in_dims, out_channels)`` for :class:`~ckconv.nn.CKConv`'s ``kernel_net``.

    ``learn_omega_0`` (the models' ``kernel_learn_omega_0``): SIREN kernels learn one
    ``omega_0`` per layer (:class:`~ckconv.kernelnets.SIREN`); other kernel nets refuse it.
    ``bias_init`` (the models' ``kernel_bias_init``): the SIREN's bias initialisation
    (``"paper"``, ``"reference"`` or ``"zero"``) and ``weight_init`` (``kernel_weight_init``)
    its weight initialisation (``"siren"`` or ``"torch"``); ``None`` keeps the kernel net's
    default; other kernel nets refuse a value.

    The kernel net is built once here, so a bad size or prior fails at the model's
    construction with the model's argument names (``kernel_hidden``, ``kernel_layers``,
    ``kernel_omega_0``, ``kernel_net``) instead of the kernel net's own.
    """
    from ckconv.kernelnets import build_kernel_net

    kwargs: dict[str, Any] = {"hidden": hidden, "layers": layers}
    if omega_0 is not None:
        kwargs["omega_0"] = omega_0
    if not isinstance(name, str):
        raise ArgumentTypeError(f"kernel_net must be a kernel net name, got {name!r}", "kernel_net")
    if not isinstance(learn_omega_0, bool):
        raise ArgumentTypeError(
            f"kernel_learn_omega_0 must be a bool, got {learn_omega_0!r}", "kernel_learn_omega_0"
        )
    siren_only = {"learn_omega_0": True} if learn_omega_0 else {}
    if bias_init is not None:
        siren_only["bias_init"] = bias_init
    if weight_init is not None:
        siren_only["weight_init"] = weight_init
    if siren_only and name.lower() != "siren":
        key, value = next(iter(siren_only.items()))
        raise ArgumentValueError(
            f"kernel_{key}={value!r} applies to SIREN kernels; it needs kernel_net='siren', "
            f"got kernel_net={name!r}",
            f"kernel_{key}",
        )
    kwargs.update(siren_only)
    if name.lower() == "magnet":
        kwargs.update(init_extent=init_extent, causal=causal)

    def make(in_dims: int, out_channels: int) -> nn.Module:
        return build_kernel_net(name, in_dims, out_channels, **kwargs)

    try:
        # a trial build; the models' random draws stay as they were
        with torch.random.fork_rng(devices=[]):
            make(1, 1)
    except ArgumentError as err:
        own = _MODEL_KERNEL_ARGS.get(err.argument)
        if own is None:
            raise
        raise type(err)(f"{own}: {err}", own) from None
    except ValueError as err:  # an unknown kernel net name
        raise ArgumentValueError(f"kernel_net: {err}", "kernel_net") from None
    return make


#: the models' names of the kernel-net arguments
_MODEL_KERNEL_ARGS = {
    "hidden": "kernel_hidden",
    "layers": "kernel_layers",
    "omega_0": "kernel_omega_0",
    "bias_init": "kernel_bias_init",
    "weight_init": "kernel_weight_init",
}


class CCNNBlock(nn.Module):
    """``x + GELU(Linear(Dropout(GELU(SepFlexConv(Norm(x))))))`` (CCNN Fig. 7).

    The shortcut is a pointwise linear when the channel count changes; ``padding_mode`` is the
    FlexConv's boundary condition (see :class:`CCNN`).

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int,
        *,
        kernel_size: Any,
        input_size: int | Sequence[int] | None,
        kernel_net: Any,
        causal: bool = False,
        mask_init_sigma: float = 0.075,
        dropout: float = 0.0,
        norm: str = "batch",
        init_gain: float | None = 1.0,
        weighting: str = "none",
        padding_mode: PaddingMode = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm = make_norm(norm, in_channels, data_dim, **factory)
        self.conv = FlexConv(
            in_channels,
            out_channels,
            data_dim,
            kernel_size=kernel_size,
            input_size=input_size,
            kernel_net=kernel_net,
            separable=True,
            causal=causal,
            mask_init_sigma=mask_init_sigma,
            init_gain=init_gain,
            weighting=weighting,
            padding_mode=padding_mode,
            **factory,
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = PointwiseLinear(out_channels, out_channels, **factory)
        self.shortcut: nn.Module = (
            PointwiseLinear(in_channels, out_channels, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(
        self, x: torch.Tensor, *, rate: RateLike | None = None, **sampling: Any
    ) -> torch.Tensor:
        """``sampling``: the sampling keywords of :meth:`ckconv.nn.CKConv.forward`."""
        y = F.gelu(self.conv(self.norm(x), rate=rate, **sampling))
        y = F.gelu(self.linear(self.dropout(y)))
        return self.shortcut(x) + y


class CCNN(nn.Module):
    r"""The CCNN: one architecture for sequences, images and volumes of any resolution.

    ``stem -> Norm -> GELU -> num_blocks x CCNNBlock -> Norm -> head``, every block a
    separable FlexConv with a MAGNet kernel (SPEC §5).

    Args:
        in_channels: input channels (ignored when ``vocab_size`` is set).
        out_channels: classes (or regression targets).
        data_dim: 1, 2 or 3.
        input_size: spatial size of the training inputs (fixes the kernel grid).
        hidden_channels, num_blocks: width and depth (presets: :meth:`preset`).
        causal: causal sequence model (1D).
        kernel_size: kernel samples per dimension at the training rate (``"same"``: the input
            size, a global kernel that FlexConv then crops; ``"full"``; or ints).
        kernel_net: kernel network name (``"magnet"`` default, ``"siren"``, ``"gabor"``, ...).
        kernel_hidden, kernel_layers, kernel_omega_0: kernel-network size and frequency prior
            (``None``: the kernel net's default).
        kernel_learn_omega_0: with ``kernel_net="siren"``, learn one ``omega_0`` per sine
            layer, starting at ``kernel_omega_0`` (:class:`~ckconv.kernelnets.SIREN`).
        kernel_bias_init: with ``kernel_net="siren"``, its bias initialisation (``"paper"``,
            ``"reference"``, ``"zero"``; ``None``: the SIREN's default, ``"paper"``).
        kernel_weight_init: with ``kernel_net="siren"``, its weight initialisation
            (``"siren"``, ``"torch"``; ``None``: the SIREN's default, ``"siren"``).
        mask_init_sigma: initial FlexConv mask width.
        dropout: dropout inside the blocks.
        norm: ``"batch"``, ``"layer"`` (per position) or ``"group"``.
        head: ``"mean"`` (global pooling), ``"last"`` (last step) or ``"none"`` (per position).
        vocab_size: token inputs ``(N, L)`` through an embedding.
        init_gain: CCNN kernel re-weighting gain (``None`` disables it).
        weighting: how timestamped samples are weighted (``"none"`` or ``"density"``, see
            :class:`~ckconv.nn.CKConv`); part of the model, so checkpoints rebuild it.
        padding_mode: boundary condition of every block's FlexConv, as in
            ``torch.nn.Conv*d``: ``"zeros"`` (default) or ``"circular"`` (a periodic axis; its
            kernels cover one period), one value or one per spatial axis (e.g.
            ``("zeros", "circular")`` for bounded latitude, periodic longitude). ``causal=True``
            needs ``"zeros"``. Everything else in the network is pointwise or pools globally,
            so with ``head="none"`` a circular axis makes the whole network equivariant to
            circular shifts along it (and the pooled ``head="mean"`` output invariant to them).
            See the boundary-conditions concept page.

    Forward:
        ``forward(x, *, rate=None)`` — ``rate`` is ``sr_input / sr_train`` per dimension: the
        same trained model runs at other resolutions.

    Shape:
        - Input: ``(N, C_in, *spatial)`` or ``(N, L)`` token ids
        - Output: ``(N, out_channels)``, or ``(N, out_channels, *spatial)`` with ``head="none"``

    Examples:
        >>> model = CCNN(1, 10, data_dim=2, input_size=(8, 8), hidden_channels=16, num_blocks=2)
        >>> model(torch.randn(4, 1, 8, 8)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 1,
        *,
        input_size: int | Sequence[int],
        hidden_channels: int = 140,
        num_blocks: int = 4,
        causal: bool = False,
        kernel_size: Any = "same",
        kernel_net: str = "magnet",
        kernel_hidden: int = 32,
        kernel_layers: int = 4,
        kernel_omega_0: float | None = None,
        kernel_learn_omega_0: bool = False,
        kernel_bias_init: str | None = None,
        kernel_weight_init: str | None = None,
        mask_init_sigma: float = 0.075,
        dropout: float = 0.0,
        norm: str = "batch",
        head: HeadKind = "mean",
        vocab_size: int | None = None,
        init_gain: float | None = 1.0,
        weighting: str = "none",
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
        choice("data_dim", data_dim, (1, 2, 3))
        if vocab_size is not None and data_dim != 1:
            raise ArgumentValueError(
                f"token inputs (vocab_size) are sequences: data_dim must be 1, got {data_dim}",
                "data_dim",
            )
        unit_interval("dropout", dropout)
        # checked here so a bad value fails once, naming the model's argument
        padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
        factory = {"device": device, "dtype": dtype}
        self.data_dim = data_dim
        self.causal = causal
        self.stem = Stem(
            in_channels,
            hidden_channels,
            vocab_size=vocab_size,
            data_dim=data_dim,
            owner=f"CCNN(data_dim={data_dim})",
            **factory,
        )
        self.stem_norm = make_norm(norm, hidden_channels, data_dim, **factory)
        net = kernel_net_factory(
            kernel_net,
            hidden=kernel_hidden,
            layers=kernel_layers,
            omega_0=kernel_omega_0,
            causal=causal,
            init_extent=min(1.0, 1.667 * mask_init_sigma),
            learn_omega_0=kernel_learn_omega_0,
            bias_init=kernel_bias_init,
            weight_init=kernel_weight_init,
        )
        self.blocks = nn.ModuleList(
            CCNNBlock(
                hidden_channels,
                hidden_channels,
                data_dim,
                kernel_size=kernel_size,
                input_size=input_size,
                kernel_net=net,
                causal=causal,
                mask_init_sigma=mask_init_sigma,
                dropout=dropout,
                norm=norm,
                init_gain=init_gain,
                weighting=weighting,
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
    ) -> CCNN:
        """Build ``"ccnn_4_140"`` (~200k parameters) or ``"ccnn_6_380"`` (~2M)."""
        kwargs = preset_kwargs("CCNN", CCNN_PRESETS, name, overrides)
        return cls(in_channels, out_channels, data_dim, input_size=input_size, **kwargs)

    def forward(
        self,
        x: torch.Tensor,
        *,
        rate: RateLike | None = None,
        blur: bool = False,
        times: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        weighting: str | None = None,
    ) -> torch.Tensor:
        """Run the network; the keywords say how ``x`` is sampled (see :meth:`CKConv.forward`).

        ``rate``/``blur``: a regular grid at another sampling rate.  ``times``/``mask``
        ``(N, L)``: timestamped, possibly missing samples (1D); the head then pools over
        (or reads the last of) the observed samples only.  ``weighting`` is deprecated (set it
        in the constructor).
        """
        sampling = sampling_kwargs(blur, times, mask, weighting)
        h = F.gelu(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            h = block(h, rate=rate, **sampling)
        return self.head(self.out_norm(h), mask)
