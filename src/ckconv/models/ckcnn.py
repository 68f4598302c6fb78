"""CKCNN: the causal continuous-kernel network of the CKConv paper (Fig. 8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ckconv._checks import positive_int, unit_interval
from ckconv.grids import RateLike
from ckconv.models.common import Head, HeadKind, PointwiseLinear, Stem, make_norm, sampling_kwargs
from ckconv.nn import CKConv

__all__ = ["CKCNN", "CKCNNBlock"]


class CKCNNBlock(nn.Module):
    """``ReLU(Drop(ReLU(LN(CK2(Drop(ReLU(LN(CK1 x))))))) + shortcut(x))`` with causal CKConvs.

    Shape:
        - Input: ``(N, C_in, L)``
        - Output: ``(N, C_out, L)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        input_size: int,
        kernel_net: Any,
        dropout: float = 0.0,
        norm: str = "group",
        init_gain: float | None = None,
        weighting: str = "none",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        common = {
            "weighting": weighting,
            "kernel_size": "same",
            "input_size": input_size,
            "causal": True,
            "kernel_net": kernel_net,
            "init_gain": init_gain,
            **factory,
        }
        self.conv1 = CKConv(in_channels, out_channels, 1, **common)
        self.norm1 = make_norm(norm, out_channels, 1, **factory)
        self.conv2 = CKConv(out_channels, out_channels, 1, **common)
        self.norm2 = make_norm(norm, out_channels, 1, **factory)
        self.dropout = nn.Dropout(dropout)
        self.shortcut: nn.Module = (
            PointwiseLinear(in_channels, out_channels, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(
        self, x: torch.Tensor, *, rate: RateLike | None = None, **sampling: Any
    ) -> torch.Tensor:
        """``sampling``: the sampling keywords of :meth:`ckconv.nn.CKConv.forward`."""
        y = self.dropout(torch.relu(self.norm1(self.conv1(x, rate=rate, **sampling))))
        y = self.dropout(torch.relu(self.norm2(self.conv2(y, rate=rate, **sampling))))
        return torch.relu(y + self.shortcut(x))


class CKCNN(nn.Module):
    r"""CKCNN (Romero et al., 2022): a stack of residual blocks of causal CKConvs with SIREN
    kernels, read out at the last time step.

    Args:
        in_channels: input channels (ignored with ``vocab_size``).
        out_channels: classes / targets.
        input_size: training sequence length (the kernels cover the whole past).
        hidden_channels: block width (CKConv Table 8: 30 for the small models).
        num_blocks: 2 in the paper.
        kernel_net: ``"siren"`` default; any :func:`~ckconv.kernelnets.build_kernel_net` name.
        kernel_hidden, kernel_layers, kernel_omega_0: kernel net size and omega_0 prior.
        kernel_learn_omega_0: learn one ``omega_0`` per SIREN layer, starting at
            ``kernel_omega_0`` (:class:`~ckconv.kernelnets.SIREN`; ``kernel_net="siren"`` only).
        kernel_bias_init: the SIREN's bias initialisation (``kernel_net="siren"`` only):
            ``None`` keeps its default, ``"paper"`` (first layer ``U(-pi/||W_i||, pi/||W_i||)``);
            ``"reference"`` draws every bias from ``U(-1, 1)`` as the public CKConv code
            effectively does; ``"zero"``.
        kernel_weight_init: the SIREN's weight initialisation (``kernel_net="siren"`` only):
            ``None`` keeps its default, ``"siren"`` (Sitzmann et al.); ``"torch"`` keeps the
            ``nn.Linear`` default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` in every layer. With
            ``kernel_bias_init="reference"`` it is the public CKConv code's effective kernel-net
            init (that code's SIREN init is written before weight norm takes the weights over,
            so has no effect).
        dropout: dropout in the blocks.
        norm: ``"group"`` (GroupNorm(1, C), the paper's "LN", which normalises over time too) or
            ``"layer"`` (per time step; keeps per-step outputs strictly causal).
        head: ``"last"`` (default), ``"mean"`` or ``"none"`` (per-step outputs).
        vocab_size: token inputs through an embedding.
        init_gain: the CCNN kernel re-weighting (:class:`~ckconv.nn.CKConv`); ``None`` (default)
            leaves the SIREN's kernel as initialised, as in the CKConv paper. The re-weighting
            shrinks the kernel net's output layer by about ``1 / sqrt(C_in L)``; behind the
            block's norm the kernel's scale does not change the output, but Adam's steps keep
            their absolute size, so the kernel's effective learning rate grows by that factor
            (adding problem, L = 1000: one step of lr 1e-3 moves the output-layer gain by 11 %
            and its bias by 84 %, instead of 0.1 % and 1.1 %) and the paper's learning rates
            no longer fit.
        stem: a pointwise linear ``C_in -> hidden_channels`` before the first block. Off by
            default, as in the CKConv paper (Fig. 8): the first block's CKConvs read the input
            channels and its shortcut is pointwise. The parameter counts then match CKConv
            Table 8: 98,286 for sMNIST (hidden 30; "98.29k"), 15,526 for copy memory (hidden 10;
            "15.52k"), 70,587 for the adding problem (hidden 25, 2 inputs; "70.59k").
        weighting: how timestamped samples are weighted (``"none"`` or ``"density"``, see
            :class:`~ckconv.nn.CKConv`); part of the model, so checkpoints rebuild it.

    Shape:
        - Input: ``(N, C_in, L)`` or ``(N, L)`` token ids
        - Output: ``(N, out_channels)``, or ``(N, out_channels, L)`` with ``head="none"``

    Examples:
        >>> model = CKCNN(1, 10, input_size=64, hidden_channels=8)
        >>> model(torch.randn(2, 1, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        input_size: int,
        hidden_channels: int = 30,
        num_blocks: int = 2,
        kernel_net: str = "siren",
        kernel_hidden: int = 32,
        kernel_layers: int = 3,
        kernel_omega_0: float | None = None,
        kernel_learn_omega_0: bool = False,
        kernel_bias_init: str | None = None,
        kernel_weight_init: str | None = None,
        dropout: float = 0.0,
        norm: str = "group",
        head: HeadKind = "last",
        vocab_size: int | None = None,
        stem: bool = False,
        init_gain: float | None = None,
        weighting: str = "none",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        from ckconv.models.ccnn import kernel_net_factory

        for name, value in (
            ("hidden_channels", hidden_channels),
            ("num_blocks", num_blocks),
            ("out_channels", out_channels),
        ):
            positive_int(name, value)
        unit_interval("dropout", dropout)
        factory = {"device": device, "dtype": dtype}
        net = kernel_net_factory(
            kernel_net,
            hidden=kernel_hidden,
            layers=kernel_layers,
            omega_0=kernel_omega_0,
            causal=True,
            init_extent=1.0,
            learn_omega_0=kernel_learn_omega_0,
            bias_init=kernel_bias_init,
            weight_init=kernel_weight_init,
        )
        self.stem = Stem(
            in_channels,
            hidden_channels,
            vocab_size=vocab_size,
            project=stem,
            data_dim=1,
            owner="CKCNN",
            **factory,
        )
        self.blocks = nn.ModuleList(
            CKCNNBlock(
                self.stem.out_channels if i == 0 else hidden_channels,
                hidden_channels,
                input_size=input_size,
                kernel_net=net,
                dropout=dropout,
                norm=norm,
                init_gain=init_gain,
                weighting=weighting,
                **factory,
            )
            for i in range(num_blocks)
        )
        self.head = Head(hidden_channels, out_channels, head, **factory)

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
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, rate=rate, **sampling)
        return self.head(h, mask)
