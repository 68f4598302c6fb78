"""Point-cloud convolutions: PointConv (parametric continuous convolution, Wang et al. 2018) and
PointFlexConv (a MAGNet kernel with a learnable Gaussian mask on the relative offsets).

The maths lives in :mod:`ckconv.functional.pointconv`, the neighbour search in
:mod:`ckconv.functional.neighbors`; these modules own the parameters and the locality rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ckconv._checks import (
    ArgumentTypeError,
    ArgumentValueError,
    bool_mask,
    choice,
    finite_tensor,
    open_unit,
    positive_int,
    positive_number,
    tensor,
)
from ckconv.functional.neighbors import Backend, Neighbors, knn, radius_search
from ckconv.functional.pointconv import (
    Weighting,
    kernel_density,
    neighbor_weights,
    point_conv,
    point_flexconv,
    relative_positions,
)
from ckconv.grids import RateLike
from ckconv.nn.base import ContinuousConv, KernelNetArg, autocast_dtype
from ckconv.nn.gaussian_mask import GaussianMask

__all__ = ["Locality", "PointConv", "PointFlexConv"]

Locality = Literal["knn", "radius", "window"]

#: Reference offsets per dimension on which the kernel re-weighting measures the kernel's RMS.
_REFERENCE_POINTS = 9


class PointConv(ContinuousConv):
    r"""Parametric continuous convolution on point clouds (Wang et al. 2018).

    :math:`h_i = \sum_{j \in nbr(i)} w_{ij}\, k((x_j - y_i)/s)\, f_j`: features ``f_j`` at
    support points ``x_j``, outputs at points ``y_i`` (the support points themselves by default,
    or any other ``M`` points), a kernel network ``k`` of the offset normalised by the stored
    ``scale`` ``s``, quadrature weights ``w_ij`` and a locality rule for ``nbr(i)``.  Dense layers
    use the PointConv factorisation and separable layers a depthwise kernel plus one matmul, so
    no ``(M, K, C_in, C_out)`` tensor is ever built (:mod:`ckconv.functional.pointconv`).

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        data_dim: ``D``, dimension of the positions (3 for point clouds).
        kernel_net: a kernel network or a factory ``f(in_dims, out_channels)``; default an
            :class:`~ckconv.kernelnets.MLP` (32 hidden, 3 layers, ReLU) as Wang et al.  Dense
            layers need ``C_out * C_in`` outputs and a :class:`~ckconv.kernelnets.KernelNet`
            (``hidden_features`` + ``output_linear``); separable ones ``C_in`` outputs.
        separable: depthwise kernel followed by a pointwise ``C_in -> C_out`` mixer.
        locality: ``"knn"`` (the ``num_neighbors`` nearest support points), ``"radius"`` (those
            within ``radius``, at most ``num_neighbors``) or ``"window"`` (those in the box
            ``|x_j - y_i|_inf <= radius``, at most ``num_neighbors``: a grid kernel's window).
        num_neighbors: ``K``, neighbours per output point (the most for radius / window).
        radius: radius or box half-width for ``"radius"`` / ``"window"`` (default ``scale``);
            unused by ``"knn"``.
        scale: offsets are divided by it before the kernel network (the kernel domain
            ``[-1, 1]^D`` spans ``+-scale``).  Stored as a persistent buffer.
        weighting: ``"mean"`` (``1/|nbr(i)|``, Monte Carlo), ``"density"`` (inverse kernel
            density, self-normalised) or ``"none"`` (weight 1, as a grid convolution; the old
            name ``"sum"`` still reads, with a DeprecationWarning).
        density_bandwidth: bandwidth of the Gaussian density estimate for ``"density"``
            (default ``scale``).
        bias: learnable output bias.
        init_gain: kernel re-weighting in the spirit of CCNN §4.1: :meth:`reset_parameters`
            scales the kernel network's output layer so that, for offsets spread uniformly over
            the kernel domain and ``K`` neighbours, the output keeps the input's variance times
            ``init_gain**2``.  ``None`` disables it.
        backend: neighbour search backend (``"auto"``, ``"torch"``, ``"scipy"``).
        chunk_size: process output points in checkpointed chunks of this many (memory scales
            with the chunk, one extra forward in the backward pass); ``"auto"`` (default) sizes
            them from the input (one chunk for small clouds); ``None``: all at once.  See
            :func:`~ckconv.functional.pointconv.point_conv`.

    Forward:
        ``forward(input, pos, *, mask=None, query_pos=None, query_mask=None, neighbors=None,
        density=None)``.  ``neighbors`` (:meth:`find_neighbors`) and ``density``
        (:func:`~ckconv.functional.pointconv.kernel_density`) may be computed once and shared
        by the layers of a network.  Outputs at padded output points are 0.

    Shape:
        - input: ``(B, C_in, N)`` features; pos: ``(B, N, D)``; mask: ``(B, N)`` bool
        - query_pos: ``(B, M, D)``; query_mask: ``(B, M)`` (default: ``pos`` and ``mask``)
        - Output: ``(B, C_out, M)``

    Examples:
        >>> conv = PointConv(4, 8, num_neighbors=8, scale=0.5)
        >>> pos = torch.rand(2, 100, 3)
        >>> conv(torch.randn(2, 4, 100), pos).shape
        torch.Size([2, 8, 100])
        >>> conv(torch.randn(2, 4, 100), pos, query_pos=pos[:, :10]).shape
        torch.Size([2, 8, 10])
    """

    scale: torch.Tensor
    radius: torch.Tensor
    density_bandwidth: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 3,
        *,
        kernel_net: KernelNetArg = None,
        separable: bool = False,
        locality: Locality = "knn",
        num_neighbors: int = 16,
        radius: float | None = None,
        scale: float = 1.0,
        weighting: Weighting = "mean",
        density_bandwidth: float | None = None,
        bias: bool = True,
        init_gain: float | None = 1.0,
        backend: Backend = "auto",
        chunk_size: int | Literal["auto"] | None = "auto",
        kernel_mask: GaussianMask | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        positive_int("num_neighbors", num_neighbors)
        choice("locality", locality, ("knn", "radius", "window"))
        choice("backend", backend, ("auto", "torch", "scipy"))
        if chunk_size != "auto":
            positive_int("chunk_size", chunk_size, allow_none=True)
        scale = positive_number("scale", scale)
        radius = scale if radius is None else positive_number("radius", radius)
        bandwidth = (
            scale
            if density_bandwidth is None
            else positive_number("density_bandwidth", density_bandwidth)
        )
        if kernel_mask is not None and not isinstance(kernel_mask, GaussianMask):
            raise TypeError(
                f"kernel_mask must be a ckconv.nn.GaussianMask or None, got {type(kernel_mask)}"
            )
        super().__init__(
            in_channels,
            out_channels,
            data_dim,
            kernel_net=kernel_net,
            separable=separable,
            bias=bias,
            init_gain=init_gain,
            kernel_mask=kernel_mask,
            weighting=weighting,
            device=device,
            dtype=dtype,
        )
        self.num_neighbors = num_neighbors
        self.chunk_size = chunk_size
        self.locality: Locality = locality
        self.backend: Backend = backend
        factory = {"device": device, "dtype": dtype}
        # Part of the model: the kernel's spatial scale and the search radius (SPEC §3.1).
        self.register_buffer("scale", torch.tensor(scale, **factory), persistent=True)
        self.register_buffer("radius", torch.tensor(radius, **factory), persistent=True)
        self.register_buffer(
            "density_bandwidth", torch.tensor(bandwidth, **factory), persistent=True
        )
        self.reset_parameters()

    # -- construction ---------------------------------------------------------------
    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module:
        from ckconv.kernelnets import MLP

        return MLP(self.data_dim, n_out, hidden=32, layers=3, activation="relu", **factory)

    def _check_kernel_net(self, net: nn.Module) -> None:
        if not self.separable and not (
            hasattr(net, "hidden_features") and hasattr(net, "output_linear")
        ):
            raise TypeError(
                "a dense PointConv needs a kernel net with hidden_features() and output_linear "
                "(a ckconv.kernelnets.KernelNet) for the factorised form; use separable=True for "
                "other kernel nets"
            )

    # -- the kernel -----------------------------------------------------------------
    def kernel_axes(
        self,
        rate: RateLike | None = None,
        input_size: Sequence[int] | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> list[torch.Tensor]:
        """The reference grid of normalised offsets: ``9`` points per dimension spread
        uniformly over the kernel domain ``[-1, 1]`` (with a mask part: over its current
        crop, at most the domain, so no point of it is cropped).  :meth:`kernel` samples it; the
        re-weighting, the kernel L2 penalty and the plots read the kernel there (points have no sampling grid of
        their own, so ``rate`` and ``input_size`` do not apply)."""
        if rate is not None or input_size is not None:
            raise ValueError(
                f"{type(self).__name__} samples its kernel at neighbour offsets, not on a grid: "
                "rate= and input_size= do not apply"
            )
        ref = self.scale
        axis = torch.linspace(
            -1.0, 1.0, _REFERENCE_POINTS, device=device or ref.device, dtype=dtype or ref.dtype
        )
        if self.kernel_mask is None:
            return [axis] * self.data_dim
        widths = self.kernel_mask.extent(self.data_dim).clamp(max=1.0).tolist()
        return [axis * w for w in widths]

    def _init_fan(self, kernel: torch.Tensor) -> float:
        """``fan * sum_j w_ij^2`` for ``K`` neighbours: ``sum_j w_j^2`` is ``K`` (sum) or
        ``1/K`` (mean, density)."""
        k = self.num_neighbors
        per_neighbor = float(k) if self.weighting == "none" else 1.0 / k
        return (1 if self.separable else self.in_channels) * per_neighbor

    def _kernel_dtype(self) -> torch.dtype:
        return self._reference_tensor().dtype

    # -- forward --------------------------------------------------------------------
    def find_neighbors(
        self,
        pos: torch.Tensor,
        query_pos: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
    ) -> Neighbors:
        """Neighbours of every output point among the support points by this layer's rule."""
        if query_pos is None:
            query_pos, query_mask = pos, mask
        if self.locality == "knn":
            return knn(
                query_pos,
                pos,
                self.num_neighbors,
                query_mask=query_mask,
                support_mask=mask,
                backend=self.backend,
            )
        return radius_search(
            query_pos,
            pos,
            float(self.radius),
            self.num_neighbors,
            p=2 if self.locality == "radius" else math.inf,
            query_mask=query_mask,
            support_mask=mask,
            backend=self.backend,
        )

    def density(
        self,
        pos: torch.Tensor,
        mask: torch.Tensor | None = None,
        neighbors: Neighbors | None = None,
    ) -> torch.Tensor:
        """Kernel density ``(B, N)`` at the support points (for ``weighting="density"``).

        ``neighbors`` must be a search of ``pos`` against itself (default: this layer's rule).
        """
        if neighbors is None:
            neighbors = self.find_neighbors(pos, mask=mask)
        return kernel_density(pos, neighbors, self.density_bandwidth.to(pos.dtype))

    def _check_forward(self, input, pos, mask, query_pos, query_mask) -> None:
        """Every forward argument, named as the caller passed it (``mask``, ``query_mask``),
        before any neighbour search: shapes, dtypes, bool masks and finite values (a NaN
        position would silently be nobody's neighbour)."""
        name = type(self).__name__
        tensor("input", input, dims=3)
        if input.shape[1] != self.in_channels:
            raise ArgumentValueError(
                f"{name} expects input (B, {self.in_channels}, N) with {self.in_channels} "
                f"channels, got shape {tuple(input.shape)}",
                "input",
            )
        tensor("pos", pos, dims=3, floating=True)
        if pos.shape[-1] != self.data_dim:
            raise ArgumentValueError(
                f"pos must be (B, N, {self.data_dim}) (data_dim={self.data_dim}), got "
                f"{tuple(pos.shape)}",
                "pos",
            )
        if pos.shape[:2] != (input.shape[0], input.shape[2]):
            raise ArgumentValueError(
                f"input (B, C, N) and pos (B, N, D) disagree on B or N: {tuple(input.shape)} vs "
                f"{tuple(pos.shape)}",
                "pos",
            )
        if mask is not None:
            bool_mask("mask", mask, tuple(pos.shape[:2]))
        if query_pos is not None:
            tensor("query_pos", query_pos, dims=3, floating=True)
            if query_pos.shape[0] != pos.shape[0] or query_pos.shape[2] != self.data_dim:
                raise ArgumentValueError(
                    f"query_pos must be (B={pos.shape[0]}, M, {self.data_dim}), got "
                    f"{tuple(query_pos.shape)}",
                    "query_pos",
                )
        if query_mask is not None:
            if query_pos is None:
                raise ArgumentValueError(
                    "query_mask given without query_pos; pass mask for the support points",
                    "query_mask",
                )
            bool_mask("query_mask", query_mask, tuple(query_pos.shape[:2]))
        dtype = self._kernel_dtype()
        if input.dtype != dtype or pos.dtype != dtype:
            raise ArgumentTypeError(
                f"input ({input.dtype}) and pos ({pos.dtype}) must match the layer's parameter "
                f"dtype {dtype}; convert one of them (e.g. layer.to(torch.float64))",
                "input" if input.dtype != dtype else "pos",
            )
        finite_tensor("pos", pos, where=mask)
        finite_tensor("input", input.transpose(1, 2), where=mask)
        if query_pos is not None:
            finite_tensor("query_pos", query_pos, where=query_mask)

    def forward(
        self,
        input: torch.Tensor,
        pos: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        neighbors: Neighbors | None = None,
        density: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cast = autocast_dtype(input.device)
        if cast is not None and input.dtype != torch.float64:
            # Under autocast a point convolution runs in its parameters' dtype with autocast
            # off: most of its work is the kernel net at every neighbour offset, whose phases
            # need float32 (see ckconv.functional.kernel_compute_dtype); the output is rounded.
            dtype = self._kernel_dtype()
            with torch.autocast(input.device.type, enabled=False):
                out = self.forward(
                    input.to(dtype),
                    pos.to(dtype),
                    mask=mask,
                    query_pos=None if query_pos is None else query_pos.to(dtype),
                    query_mask=query_mask,
                    neighbors=neighbors,
                    density=None if density is None else density.to(dtype),
                )
            return out.to(cast)
        self._check_forward(input, pos, mask, query_pos, query_mask)
        same_points = query_pos is None
        if same_points:
            query_pos, query_mask = pos, mask
        if neighbors is None:
            neighbors = self.find_neighbors(
                pos, None if same_points else query_pos, mask=mask, query_mask=query_mask
            )
        elif neighbors.index.shape[:2] != query_pos.shape[:2]:
            raise ValueError(
                f"neighbors are for {tuple(neighbors.index.shape[:2])} output points, query_pos "
                f"has {tuple(query_pos.shape[:2])}"
            )
        if self.weighting == "density" and density is None:
            density = self.density(pos, mask, neighbors if same_points else None)
        weights = neighbor_weights(neighbors, self.weighting, density, dtype=input.dtype)
        offsets = relative_positions(query_pos, pos, neighbors.index, self.scale)
        common = {
            "mixer": self.mixer,
            "bias": self.bias,
            "query_mask": query_mask,
            "chunk_size": self.chunk_size,
        }
        if self.kernel_mask is None:
            return point_conv(input, offsets, neighbors.index, weights, self.kernel_net, **common)
        mask = self.kernel_mask
        return point_flexconv(
            input,
            offsets,
            neighbors.index,
            weights,
            self.kernel_net,
            mask.mu,
            mask.sigma,
            mask_threshold=mask.threshold,
            **common,
        )

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, data_dim={self.data_dim}, "
            f"locality={self.locality!r}, num_neighbors={self.num_neighbors}"
        )
        if self.locality != "knn":
            s += f", radius={float(self.radius):g}"
        s += f", scale={float(self.scale):g}, weighting={self.weighting!r}"
        if self.separable:
            s += ", separable=True"
        if self.bias is None:
            s += ", bias=False"
        if self.init_gain != 1.0:
            s += f", init_gain={self.init_gain}"
        if self.chunk_size != "auto":
            s += f", chunk_size={self.chunk_size}"
        return s


class PointFlexConv(PointConv):
    r"""Point FlexConv: a :class:`PointConv` whose kernel is multiplied by a learnable Gaussian
    mask of the normalised offset, and cropped where the mask is small.

    The mask is :class:`~ckconv.nn.GaussianMask` (centred, ``mu = 0``): anisotropic with one
    ``sigma`` per dimension, or ``isotropic=True`` with one ``sigma`` applied to ``|z|``.
    Offsets outside ``|z_d| <= sigma_d sqrt(-2 ln tau)`` per dimension (isotropic: the ball of
    that radius) get weight 0 -- the crop rule of the grid FlexConv, so on a full grid this layer
    computes what :class:`~ckconv.nn.FlexConv` computes.  The default kernel network is a
    :class:`~ckconv.kernelnets.MAGNet` whose Gabor centres start within
    ``1.667 * mask_init_sigma`` of the origin.  Mask parameters are found by
    :func:`ckconv.nn.param_groups` (by module type) for their own learning rate.

    Args:
        in_channels, out_channels, data_dim, separable, locality, num_neighbors, radius, scale,
            weighting, density_bandwidth, bias, init_gain, backend, chunk_size: as in
            :class:`PointConv`.
        kernel_net: default a MAGNet (32 hidden, 4 linears, ``omega_0=50``).
        mask_init_sigma: initial mask width in normalised offsets (0.075 as the papers' grids).
        mask_threshold: crop threshold ``tau`` (0.1).
        isotropic: one ``sigma`` for all dimensions.

    Shape:
        as :class:`PointConv`.

    Examples:
        >>> conv = PointFlexConv(4, 8, separable=True, num_neighbors=8, mask_init_sigma=0.3)
        >>> conv(torch.randn(2, 4, 50), torch.rand(2, 50, 3)).shape
        torch.Size([2, 8, 50])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int = 3,
        *,
        kernel_net: KernelNetArg = None,
        separable: bool = False,
        locality: Locality = "knn",
        num_neighbors: int = 16,
        radius: float | None = None,
        scale: float = 1.0,
        weighting: Weighting = "mean",
        density_bandwidth: float | None = None,
        bias: bool = True,
        init_gain: float | None = 1.0,
        mask_init_sigma: float = 0.075,
        mask_threshold: float = 0.1,
        isotropic: bool = False,
        backend: Backend = "auto",
        chunk_size: int | Literal["auto"] | None = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        mask = GaussianMask(
            positive_int("data_dim", data_dim),
            init_sigma=positive_number("mask_init_sigma", mask_init_sigma),
            threshold=open_unit("mask_threshold", mask_threshold),
            isotropic=isotropic,
            device=device,
            dtype=dtype,
        )
        super().__init__(
            in_channels,
            out_channels,
            data_dim,
            kernel_net=kernel_net,
            separable=separable,
            locality=locality,
            num_neighbors=num_neighbors,
            radius=radius,
            scale=scale,
            weighting=weighting,
            density_bandwidth=density_bandwidth,
            bias=bias,
            init_gain=init_gain,
            backend=backend,
            chunk_size=chunk_size,
            kernel_mask=mask,
            device=device,
            dtype=dtype,
        )

    @property
    def isotropic(self) -> bool:
        return self.kernel_mask.isotropic

    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module:
        from ckconv.kernelnets import MAGNet

        return MAGNet(self.data_dim, n_out, init_extent=self.kernel_mask.init_extent, **factory)

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", mask_init_sigma={self.kernel_mask.init_sigma}"
        if self.isotropic:
            s += ", isotropic=True"
        return s
