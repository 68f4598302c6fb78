"""Discrete baselines the papers compare to: TCN, GRU/LSTM and a small-kernel ResNet."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ckconv._checks import choice, grid_input, positive_int
from ckconv.models.common import Head, HeadKind, Stem, check_rate_unsupported, make_norm

__all__ = ["RNN", "TCN", "ResNet"]


class _TemporalBlock(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, dropout: float, **factory
    ):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv1 = weight_norm(
            nn.Conv1d(in_ch, out_ch, kernel_size, dilation=dilation, **factory)
        )
        self.conv2 = weight_norm(
            nn.Conv1d(out_ch, out_ch, kernel_size, dilation=dilation, **factory)
        )
        self.dropout = nn.Dropout(dropout)
        self.shortcut = nn.Conv1d(in_ch, out_ch, 1, **factory) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        y = self.dropout(torch.relu(self.conv2(F.pad(y, (self.pad, 0)))))
        return torch.relu(y + self.shortcut(x))


class TCN(nn.Module):
    """Temporal convolutional network (Bai et al., 2018): dilated causal convolutions.

    Shape:
        - Input: ``(N, C_in, L)`` or ``(N, L)`` token ids
        - Output: ``(N, out_channels)`` or ``(N, out_channels, L)`` with ``head="none"``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int = 25,
        num_levels: int = 8,
        kernel_size: int = 7,
        dropout: float = 0.0,
        head: HeadKind = "last",
        vocab_size: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.stem = Stem(
            in_channels, hidden_channels, vocab_size=vocab_size, data_dim=1, owner="TCN", **factory
        )
        self.blocks = nn.Sequential(
            *(
                _TemporalBlock(
                    hidden_channels, hidden_channels, kernel_size, 2**i, dropout, **factory
                )
                for i in range(num_levels)
            )
        )
        self.head = Head(hidden_channels, out_channels, head, **factory)

    def forward(self, x: torch.Tensor, *, rate=None) -> torch.Tensor:
        check_rate_unsupported(self, rate)
        return self.head(self.blocks(self.stem(x)))


class RNN(nn.Module):
    """GRU or LSTM sequence model.

    Shape:
        - Input: ``(N, C_in, L)`` or ``(N, L)`` token ids
        - Output: ``(N, out_channels)`` or ``(N, out_channels, L)`` with ``head="none"``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kind: Literal["gru", "lstm"] = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        head: HeadKind = "last",
        vocab_size: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        choice("kind", kind, ("gru", "lstm"))
        factory = {"device": device, "dtype": dtype}
        self.kind = kind
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, hidden_size, **factory) if vocab_size else None
        rnn_in = hidden_size if vocab_size else in_channels
        cls = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = cls(
            rnn_in,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            **factory,
        )
        self.head = Head(hidden_size, out_channels, head, **factory)

    def forward(self, x: torch.Tensor, *, rate=None) -> torch.Tensor:
        check_rate_unsupported(self, rate)
        if self.embedding is not None:
            seq = self.embedding(x)
        else:
            owner, channels = self.kind.upper(), self.rnn.input_size
            seq = grid_input("input", x, owner=owner, channels=channels, data_dim=1).transpose(1, 2)
        out, _ = self.rnn(seq)
        return self.head(out.transpose(1, 2))


class ResNet(nn.Module):
    """A ResNet-style CNN with small kernels (the discrete baseline of the CCNN tables).

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Output: ``(N, out_channels)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 2,
        *,
        hidden_channels: int = 64,
        num_blocks: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.0,
        norm: str = "batch",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        choice("data_dim", data_dim, (1, 2, 3))
        self.in_channels = positive_int("in_channels", in_channels)
        self.data_dim = data_dim
        factory = {"device": device, "dtype": dtype}
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[data_dim - 1]
        pad = kernel_size // 2
        self.stem = nn.Sequential(
            conv(in_channels, hidden_channels, kernel_size, padding=pad, **factory),
            make_norm(norm, hidden_channels, data_dim, **factory),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList()
        for _ in range(num_blocks):
            self.blocks.append(
                nn.Sequential(
                    conv(
                        hidden_channels,
                        hidden_channels,
                        kernel_size,
                        padding=pad,
                        bias=False,
                        **factory,
                    ),
                    make_norm(norm, hidden_channels, data_dim, **factory),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    conv(
                        hidden_channels,
                        hidden_channels,
                        kernel_size,
                        padding=pad,
                        bias=False,
                        **factory,
                    ),
                    make_norm(norm, hidden_channels, data_dim, **factory),
                )
            )
        self.head = Head(hidden_channels, out_channels, "mean", **factory)

    def forward(self, x: torch.Tensor, *, rate=None) -> torch.Tensor:
        check_rate_unsupported(self, rate)
        owner = f"ResNet(data_dim={self.data_dim})"
        grid_input("input", x, owner=owner, channels=self.in_channels, data_dim=self.data_dim)
        h = self.stem(x)
        for block in self.blocks:
            h = torch.relu(h + block(h))
        return self.head(h)
