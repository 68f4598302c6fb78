"""The CCNN on point clouds: separable point FlexConvs with MAGNet kernels (CCNN §5, Fig. 8).

The same blocks as :class:`~ckconv.models.CCNN` (``x + GELU(Linear(Dropout(GELU(
SepPointFlexConv(Norm(x))))))``) on clouds instead of grids; neighbours (and densities) are
searched once per forward pass and shared by every block.  Batches are padded: features
``(B, C, N)``, positions ``(B, N, D)``, mask ``(B, N)``; padded points never reach a real one
(neighbour searches skip them, batch statistics and pooling ignore them).

:meth:`PointCCNN.from_ccnn` turns a 3D grid :class:`~ckconv.models.CCNN` into the point model
that computes it on voxel centres (the regular -> irregular transfer of CCNN §5).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import (
    ArgumentValueError,
    bool_mask,
    choice,
    finite_tensor,
    positive_int,
    tensor,
    unit_interval,
)
from ckconv.functional.neighbors import Backend, Neighbors
from ckconv.functional.pointconv import Weighting
from ckconv.models.ccnn import kernel_net_factory
from ckconv.models.common import ChannelLayerNorm, Head, PointwiseLinear, Stem, preset_kwargs
from ckconv.nn.pointconv import Locality, PointFlexConv

__all__ = ["POINT_CCNN_PRESETS", "MaskedBatchNorm", "PointCCNN", "PointCCNNBlock"]

PointHeadKind = Literal["mean", "none"]

#: Point CCNN sizes: the CCNN paper's CCNN-4,140 / 6,380 and the tiny ModelNet40 models of
#: its Fig. 8 (CCNN-4,16 / 4,32 / 4,48 with kernel-net hidden size 8, learning rate 2e-2,
#: no weight decay, omega_0 = 50).
POINT_CCNN_PRESETS: dict[str, dict[str, Any]] = {
    "ccnn_4_16": {"num_blocks": 4, "hidden_channels": 16, "kernel_hidden": 8},
    "ccnn_4_32": {"num_blocks": 4, "hidden_channels": 32, "kernel_hidden": 8},
    "ccnn_4_48": {"num_blocks": 4, "hidden_channels": 48, "kernel_hidden": 8},
    "ccnn_4_140": {"num_blocks": 4, "hidden_channels": 140, "kernel_hidden": 32},
    "ccnn_6_380": {"num_blocks": 6, "hidden_channels": 380, "kernel_hidden": 64},
}


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the real points of a padded batch ``(B, C, N)`` (statistics ignore the
    padding; padded outputs are 0).  Same parameters and buffers as ``BatchNorm1d/3d``.

    Shape:
        - Input: ``(B, C, N)``; mask ``(B, N)`` bool or None (every point real)
        - Output: ``(B, C, N)``
    """

    def forward(self, input: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().forward(input)
        if input.dim() != 3 or mask.shape != (input.shape[0], input.shape[2]):
            raise ValueError(
                f"MaskedBatchNorm expects input (B, C, N) and mask (B, N), got "
                f"{tuple(input.shape)} and {tuple(mask.shape)}"
            )
        m = mask.unsqueeze(1).to(input.dtype)
        if not self.training and self.track_running_stats:
            out = F.batch_norm(
                input,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                False,
                0.0,
                self.eps,
            )
            return out * m
        count = m.sum()
        if count < 2:
            raise ValueError(
                f"MaskedBatchNorm needs at least 2 real points in training, got {int(count)}"
            )
        mean = (input * m).sum((0, 2)) / count
        centred = input - mean.view(1, -1, 1)
        var = (centred.square() * m).sum((0, 2)) / count
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * count / (count - 1), factor)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1) + self.bias.view(1, -1, 1)
        return out * m


def _make_norm(kind: str, channels: int, **factory) -> nn.Module:
    if kind == "batch":
        return MaskedBatchNorm(channels, **factory)
    if kind == "layer":
        return ChannelLayerNorm(channels, **factory)
    choice("norm", kind, ("batch", "layer", "none"))
    return nn.Identity()


def _apply_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return norm(x, mask) if isinstance(norm, MaskedBatchNorm) else norm(x)


class PointCCNNBlock(nn.Module):
    """``x + GELU(Linear(Dropout(GELU(SepPointFlexConv(Norm(x))))))`` on a point cloud.

    Shape:
        - Input: ``(B, C_in, N)`` with positions ``(B, N, D)``
        - Output: ``(B, C_out, N)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 3,
        *,
        kernel_net: Any = None,
        dropout: float = 0.0,
        norm: str = "batch",
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        factory = {k: conv_kwargs[k] for k in ("device", "dtype") if k in conv_kwargs}
        self.norm = _make_norm(norm, in_channels, **factory)
        self.conv = PointFlexConv(
            in_channels,
            out_channels,
            data_dim,
            kernel_net=kernel_net,
            separable=True,
            **conv_kwargs,
        )
        self.dropout = nn.Dropout(dropout)
        self.linear = PointwiseLinear(out_channels, out_channels, **factory)
        self.shortcut: nn.Module = (
            PointwiseLinear(in_channels, out_channels, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        neighbors: Neighbors | None = None,
        density: torch.Tensor | None = None,
    ) -> torch.Tensor:
        y = self.conv(
            _apply_norm(self.norm, x, mask), pos, mask=mask, neighbors=neighbors, density=density
        )
        y = F.gelu(self.linear(self.dropout(F.gelu(y))))
        return self.shortcut(x) + y


class PointCCNN(nn.Module):
    r"""CCNN for point clouds: classification (``head="mean"``) or per-point prediction
    (``head="none"``, segmentation as in Wang et al.).

    ``stem -> Norm -> GELU -> num_blocks x PointCCNNBlock -> Norm -> head``.

    Args:
        in_channels: input features per point (ModelNet: 6, position + normal).
        out_channels: classes (per cloud, or per point with ``head="none"``).
        data_dim: dimension of the positions.
        hidden_channels, num_blocks: width and depth (presets: :meth:`preset`).
        kernel_net, kernel_hidden, kernel_layers, kernel_omega_0: the kernel networks (MAGNet
            by default; ``omega_0=50`` is the CCNN ModelNet40 value).
        locality, num_neighbors, radius, scale, weighting: neighbourhoods and quadrature, as in
            :class:`~ckconv.nn.PointConv` (the CCNN used the closest 256 of 512 points).
        mask_init_sigma, mask_threshold, isotropic_mask: the point FlexConv masks.
        dropout: dropout inside the blocks.
        norm: ``"batch"`` (masked BatchNorm), ``"layer"`` (per point) or ``"none"``.
        head: ``"mean"`` (masked global mean pool) or ``"none"`` (per point; padded points 0).
        position_channels: with ``pos`` not given to :meth:`forward`, positions are input
            channels ``0..data_dim-1`` (the ModelNet layout ``(x, y, z, nx, ny, nz)``).
        init_gain: kernel re-weighting gain of every conv (``None`` disables it).
        backend, chunk_size: neighbour search backend and conv chunking.

    Forward:
        ``forward(x, mask=None, *, pos=None)``.

    Shape:
        - x: ``(B, C_in, N)``; mask: ``(B, N)`` bool; pos: ``(B, N, D)``
        - Output: ``(B, out_channels)``, or ``(B, out_channels, N)`` with ``head="none"``

    Examples:
        >>> model = PointCCNN.preset("ccnn_4_16", 6, 40)
        >>> sum(p.numel() for p in model.parameters())
        5892
        >>> model(torch.randn(2, 6, 128)).shape
        torch.Size([2, 40])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 3,
        *,
        hidden_channels: int = 140,
        num_blocks: int = 4,
        kernel_net: str = "magnet",
        kernel_hidden: int = 32,
        kernel_layers: int = 4,
        kernel_omega_0: float | None = 50.0,
        locality: Locality = "knn",
        num_neighbors: int = 32,
        radius: float | None = None,
        scale: float = 1.0,
        weighting: Weighting = "mean",
        mask_init_sigma: float = 0.3,
        mask_threshold: float = 0.1,
        isotropic_mask: bool = False,
        dropout: float = 0.0,
        norm: str = "batch",
        head: PointHeadKind = "mean",
        position_channels: bool = True,
        init_gain: float | None = 1.0,
        backend: Backend = "auto",
        chunk_size: int | Literal["auto"] | None = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("hidden_channels", hidden_channels),
            ("num_blocks", num_blocks),
        ):
            positive_int(name, value)
        choice("head", head, ("mean", "none"))
        unit_interval("dropout", dropout)
        if position_channels and in_channels < data_dim:
            raise ArgumentValueError(
                f"position_channels=True reads positions from the first data_dim={data_dim} input "
                f"channels, but in_channels={in_channels}",
                "in_channels",
            )
        factory = {"device": device, "dtype": dtype}
        self.data_dim = data_dim
        self.position_channels = bool(position_channels)
        self.stem = Stem(in_channels, hidden_channels, data_dim=1, owner="PointCCNN", **factory)
        self.stem_norm = _make_norm(norm, hidden_channels, **factory)
        net = kernel_net_factory(
            kernel_net,
            hidden=kernel_hidden,
            layers=kernel_layers,
            omega_0=kernel_omega_0,
            causal=False,
            init_extent=min(1.0, 1.667 * mask_init_sigma),
        )
        conv_kwargs = {
            "locality": locality,
            "num_neighbors": num_neighbors,
            "radius": radius,
            "scale": scale,
            "weighting": weighting,
            "mask_init_sigma": mask_init_sigma,
            "mask_threshold": mask_threshold,
            "isotropic": isotropic_mask,
            "init_gain": init_gain,
            "backend": backend,
            "chunk_size": chunk_size,
            **factory,
        }
        self.blocks = nn.ModuleList(
            PointCCNNBlock(
                hidden_channels,
                hidden_channels,
                data_dim,
                kernel_net=net,
                dropout=dropout,
                norm=norm,
                **conv_kwargs,
            )
            for _ in range(num_blocks)
        )
        self.out_norm = _make_norm(norm, hidden_channels, **factory)
        self.head = Head(hidden_channels, out_channels, head, **factory)

    @classmethod
    def preset(cls, name: str, in_channels: int, out_channels: int, **overrides: Any) -> PointCCNN:
        """Build a preset of :data:`POINT_CCNN_PRESETS` (e.g. ``"ccnn_4_16"``, 5,892 parameters
        with 6 input channels and 40 classes)."""
        kwargs = preset_kwargs("PointCCNN", POINT_CCNN_PRESETS, name, overrides)
        return cls(in_channels, out_channels, **kwargs)

    def neighbors(
        self, pos: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[Neighbors, torch.Tensor | None]:
        """The neighbourhoods (and densities, for ``weighting="density"``) every block uses."""
        conv = self.blocks[0].conv
        nb = conv.find_neighbors(pos, mask=mask)
        density = conv.density(pos, mask, nb) if conv.weighting == "density" else None
        return nb, density

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.stem.check(x, "x")  # (B, C_in, N) floating features, before any layer
        if pos is None:
            if not self.position_channels:
                raise ArgumentValueError(
                    "pos (B, N, D) is required: the model has position_channels=False", "pos"
                )
            pos = x[:, : self.data_dim].transpose(1, 2)
        if mask is not None:
            bool_mask("mask", mask, (x.shape[0], x.shape[2]))
        finite_tensor("x", x.transpose(1, 2), where=mask)
        tensor("pos", pos, dims=3, floating=True)
        if pos.shape != (x.shape[0], x.shape[2], self.data_dim):
            raise ArgumentValueError(
                f"pos must be (B, N, {self.data_dim}) = {(x.shape[0], x.shape[2], self.data_dim)}"
                f" for x of shape {tuple(x.shape)}, got {tuple(pos.shape)}",
                "pos",
            )
        finite_tensor("pos", pos, where=mask)
        nb, density = self.neighbors(pos, mask)
        h = F.gelu(_apply_norm(self.stem_norm, self.stem(x), mask))
        for block in self.blocks:
            h = block(h, pos, mask=mask, neighbors=nb, density=density)
        out = self.head(_apply_norm(self.out_norm, h, mask), mask)
        if self.head.kind == "none" and mask is not None:
            out = out * mask.unsqueeze(1).to(out.dtype)
        return out

    # -- regular -> irregular transfer ---------------------------------------------------
    @classmethod
    def from_ccnn(
        cls,
        ccnn: nn.Module,
        grid_size: int,
        *,
        extent: tuple[float, float] = (-1.0, 1.0),
        num_neighbors: int | None = None,
        backend: Backend = "auto",
    ) -> PointCCNN:
        """The point CCNN that computes a 3D grid :class:`~ckconv.models.CCNN` on voxel centres.

        The grid model's kernel of ``K`` samples spans ``(K - 1) / 2`` voxels either side, so the
        point model uses ``scale = (K - 1) / 2 * h`` (``h`` the voxel size of a ``grid_size^3``
        grid over ``extent^3``), a box window of that half-width, plain sums (``"none"``
        weighting, as a grid convolution) and every weight of ``ccnn``.  On the full grid (all
        voxel centres, :func:`ckconv.functional.batching.grid_to_points`) it reproduces the grid
        model's output; on occupied voxels or raw points it is the transferred model.  Needs a
        cubic kernel with an odd size (an even one has no tap at offset 0) and no FlexConv crop
        cut by the input size.

        ``num_neighbors``: slots per point (default ``K^3``, the whole window; fewer truncates
        the window to the closest points).
        """
        from ckconv.models.ccnn import CCNN

        if not isinstance(ccnn, CCNN) or ccnn.data_dim != 3:
            raise ValueError("from_ccnn needs a 3D ckconv.models.CCNN (data_dim=3)")
        conv = ccnn.blocks[0].conv
        ks = set(conv.kernel_size)
        if len(ks) != 1 or next(iter(ks)) % 2 == 0:
            raise ValueError(
                f"from_ccnn needs a cubic kernel with an odd size, got kernel_size="
                f"{conv.kernel_size} (an even size has no tap at offset 0)"
            )
        k = next(iter(ks))
        h = (extent[1] - extent[0]) / grid_size
        scale = (k - 1) / 2 * h
        norm = "batch" if isinstance(ccnn.stem_norm, nn.BatchNorm3d) else None
        if norm is None:
            if isinstance(ccnn.stem_norm, ChannelLayerNorm):
                norm = "layer"
            elif isinstance(ccnn.stem_norm, nn.Identity):
                norm = "none"
            else:
                raise ValueError(
                    f"from_ccnn supports batch, layer or no norm, got {type(ccnn.stem_norm).__name__}"
                )
        from ckconv.kernelnets import KERNEL_NETS

        kernel_net = conv.kernel_net
        names = [name for name, kind in KERNEL_NETS.items() if type(kernel_net) is kind]
        if not names:
            raise ValueError(f"from_ccnn: unknown kernel net type {type(kernel_net).__name__}")
        ref = next(ccnn.parameters())
        model = cls(
            ccnn.stem.in_channels,
            ccnn.head.linear.out_channels,
            3,
            hidden_channels=ccnn.stem.out_channels,
            num_blocks=len(ccnn.blocks),
            kernel_net=names[0],
            kernel_hidden=getattr(kernel_net, "hidden", 32),
            kernel_layers=getattr(kernel_net, "layers", 4),
            kernel_omega_0=getattr(kernel_net, "omega_0", None),
            locality="window",
            num_neighbors=num_neighbors or k**3,
            radius=scale + h / 2,  # every offset of the window, none beyond
            scale=scale,
            weighting="none",
            mask_init_sigma=conv.kernel_mask.init_sigma,
            mask_threshold=conv.kernel_mask.threshold,
            dropout=ccnn.blocks[0].dropout.p,
            norm=norm,
            head=ccnn.head.kind if ccnn.head.kind in ("mean", "none") else "mean",
            position_channels=False,
            init_gain=None,
            backend=backend,
            device=ref.device,
            dtype=ref.dtype,
        )
        state = {
            k_: v for k_, v in ccnn.state_dict().items() if not k_.endswith("train_kernel_size")
        }
        missing, unexpected = model.load_state_dict(state, strict=False)
        point_only = ("scale", "radius", "density_bandwidth")
        bad_missing = [m for m in missing if not m.endswith(point_only)]
        if bad_missing or unexpected:
            raise ValueError(
                f"from_ccnn: the grid model does not map onto a PointCCNN (missing "
                f"{bad_missing[:5]}, unexpected {list(unexpected)[:5]})"
            )
        return model
