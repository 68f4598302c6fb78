"""Pieces the models share: channel-first norms, pointwise linears, input stems and heads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

import torch
from torch import nn

from ckconv._checks import ArgumentTypeError, choice, grid_input, positive_int
from ckconv.functional.conv import mix
from ckconv.grids import as_rates

__all__ = [
    "ChannelLayerNorm",
    "Head",
    "PointwiseLinear",
    "Stem",
    "check_rate_unsupported",
    "make_norm",
    "sampling_kwargs",
]

HeadKind = Literal["mean", "last", "none"]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of every position of a ``(N, C, *spatial)`` tensor.

    Statistics never mix positions, so causal models stay causal.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: same
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input.movedim(1, -1)).movedim(-1, 1)


def make_norm(kind: str, channels: int, data_dim: int, **factory) -> nn.Module:
    """``"batch"``: BatchNorm{1,2,3}d; ``"layer"``: per-position LayerNorm over channels;
    ``"group"``: GroupNorm(1, C) (normalises over channels *and* positions, as the CKConv
    paper's "LN"); ``"none"``: identity."""
    if kind == "batch":
        return (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[data_dim - 1](channels, **factory)
    if kind == "layer":
        return ChannelLayerNorm(channels, **factory)
    if kind == "group":
        return nn.GroupNorm(1, channels, **factory)
    choice("norm", kind, ("batch", "layer", "group", "none"))
    return nn.Identity()


class PointwiseLinear(nn.Module):
    """A linear map over the channel axis of ``(N, C, *spatial)`` (a 1x1 convolution) as one
    matmul.

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """

    def __init__(
        self, in_channels: int, out_channels: int, bias: bool = True, *, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, device=device, dtype=dtype)
        )
        self.bias = (
            nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype)) if bias else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the torch.nn.Linear initialisation
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return mix(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class Stem(nn.Module):
    """Input stem: pointwise linear for real-valued inputs, embedding for token ids.

    Token ids are never fed as one float channel (a reference-code fault): with
    ``vocab_size`` set, input ``(N, L)`` int64 ids become ``(N, C, L)`` embeddings.
    ``project=False`` passes real-valued inputs through unchanged (``C_out = C_in``; the CKCNN
    of the CKConv paper feeds its inputs straight into the first block).  Real-valued inputs
    are checked here, before the first layer: ``(N, in_channels, *data_dim sizes)`` floating
    point, the message naming ``input``, its shape and ``owner`` (the model's class name).

    Shape:
        - Input: ``(N, C_in, *spatial)`` float, or ``(N, L)`` int64 with ``vocab_size``
        - Output: ``(N, C_out, *spatial)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        vocab_size: int | None = None,
        project: bool = True,
        data_dim: int | None = None,
        owner: str = "model",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.in_channels = in_channels if vocab_size else positive_int("in_channels", in_channels)
        self.data_dim = data_dim
        self.owner = owner
        if vocab_size is not None:
            positive_int("vocab_size", vocab_size)
            self.embedding: nn.Module = nn.Embedding(
                vocab_size, out_channels, device=device, dtype=dtype
            )
        elif project:
            self.embedding = PointwiseLinear(in_channels, out_channels, device=device, dtype=dtype)
        else:
            self.embedding = nn.Identity()
        self.out_channels = out_channels if (vocab_size is not None or project) else in_channels

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.vocab_size is not None:
            if input.dtype not in (torch.int64, torch.int32):
                raise TypeError(
                    f"a model built with vocab_size={self.vocab_size} expects token ids (N, L) of "
                    f"an integer dtype, got {input.dtype}"
                )
            if input.dim() != 2:
                raise ValueError(f"token input must have shape (N, L), got {tuple(input.shape)}")
            checking = not torch.compiler.is_compiling()  # data-dependent: eager only
            if checking and input.numel() and (input.min() < 0 or input.max() >= self.vocab_size):
                raise ValueError(
                    f"token ids must lie in [0, {self.vocab_size}), got range "
                    f"[{int(input.min())}, {int(input.max())}]"
                )
            return self.embedding(input).transpose(1, 2)
        if isinstance(input, torch.Tensor) and not input.is_floating_point():
            raise ArgumentTypeError(
                f"{self.owner} expects a floating-point input (N, C, *spatial), got {input.dtype}; "
                "build the model with vocab_size=... for token ids",
                "input",
            )
        self.check(input)
        return self.embedding(input)

    def check(self, input: torch.Tensor, name: str = "input") -> None:
        """Refuse a real-valued ``input`` that is not ``(N, in_channels, *data_dim sizes)``
        floating point (the model's first check, before any layer)."""
        data_dim = self.data_dim
        if data_dim is None:  # any grid: 1 to 3 spatial dimensions
            data_dim = min(max(input.dim() - 2, 1), 3) if isinstance(input, torch.Tensor) else 1
        grid_input(name, input, owner=self.owner, channels=self.in_channels, data_dim=data_dim)


class Head(nn.Module):
    """Read-out: ``"mean"`` (global average pool), ``"last"`` (last time step, causal 1D),
    or ``"none"`` (a prediction at every position).

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: ``(N, C_out)``, or ``(N, C_out, *spatial)`` for ``"none"``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kind: HeadKind = "mean",
        *,
        device=None,
        dtype=None,
    ):
        super().__init__()
        choice("head", kind, ("mean", "last", "none"))
        self.kind = kind
        self.linear = PointwiseLinear(in_channels, out_channels, device=device, dtype=dtype)

    def forward(self, input: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` ``(N, *spatial)`` bool: pool over observed positions only (``"mean"``) or
        read the last observed step (``"last"``)."""
        if self.kind == "mean":
            if mask is None:
                pooled = input.flatten(2).mean(-1, keepdim=True)
            else:
                m = mask.flatten(1).unsqueeze(1).to(input.dtype)
                pooled = (input.flatten(2) * m).sum(-1, keepdim=True) / m.sum(
                    -1, keepdim=True
                ).clamp_min(1)
            return self.linear(pooled).squeeze(-1)
        if self.kind == "last":
            if input.dim() != 3:
                raise ValueError(
                    f"head='last' is for sequences (N, C, L), got {tuple(input.shape)}"
                )
            if mask is None:
                return self.linear(input[..., -1:]).squeeze(-1)
            length = input.shape[-1]
            idx = torch.arange(length, device=input.device).expand_as(mask)
            last = torch.where(mask, idx, torch.zeros_like(idx)).amax(-1)  # (N,)
            picked = input.gather(2, last.view(-1, 1, 1).expand(-1, input.shape[1], 1))
            return self.linear(picked).squeeze(-1)
        return self.linear(input)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def check_rate_unsupported(model: nn.Module, rate) -> None:
    """Discrete models have no continuous kernels to resample: only ``rate`` 1 (in any form
    the rate parser :func:`ckconv.grids.as_rates` reads, e.g. ``"1/1"``) is accepted."""
    if rate is None:
        return
    per_dim = not isinstance(rate, (int, float, Fraction, str))
    if any(r != 1.0 for r in as_rates(rate, len(rate) if per_dim else 1)):
        raise ValueError(
            f"{type(model).__name__} has discrete kernels and cannot change sampling rate "
            f"(got rate={rate!r}); use a continuous model (CKCNN, CCNN)"
        )


def sampling_kwargs(
    blur: bool,
    times: torch.Tensor | None,
    mask: torch.Tensor | None,
    weighting: str | None = None,
) -> dict:
    """The keywords a continuous layer gets for how its input is sampled.

    Timestamped inputs (``times``, optional ``mask``) or a regular grid (optional ``blur``
    with ``rate``); a mask without times is refused.  ``weighting`` (deprecated: the layers
    hold their own) is passed on only when given.
    """
    if times is not None:
        out = {"times": times, "mask": mask}
        if weighting is not None:
            out["weighting"] = weighting
        return out
    if mask is not None:
        raise ValueError("mask is for timestamped inputs: pass times=... as well")
    return {"blur": blur}


def preset_kwargs(
    model: str,
    presets: Mapping[str, Mapping[str, Any]],
    name: str,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """The options of preset ``name`` of ``model`` (e.g. ``"CCNN"``) with ``overrides`` on top
    (the ``preset`` classmethods of the models); an unknown name lists the presets."""
    if name not in presets:
        raise ValueError(f"unknown {model} preset {name!r}; choose from {sorted(presets)}")
    return {**presets[name], **overrides}
