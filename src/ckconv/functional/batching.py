"""Batches of point clouds of different sizes: padded <-> packed, and voxel grids -> points.

Two layouts hold a batch of ``B`` clouds with ``n_b`` points each:

- **padded** (what every layer of :mod:`ckconv.nn.pointconv` takes): ``(B, N_max, ...)`` with a
  bool mask ``(B, N_max)``, True on real points.  Point-major; channel-first features
  ``(B, C, N_max)`` convert with ``.transpose(1, 2)``.
- **packed**: all real points in one ``(P, ...)`` tensor, ``P = sum_b n_b``, plus a batch
  vector ``(P,)`` int64 giving each point's cloud (the PyTorch Geometric layout).

``pack_points(*pad_points(x, batch))`` returns ``x`` and ``batch`` (grouped by cloud, keeping the
order of points within a cloud).  To collate ``(x (C, N_i), y)`` dataset items into a padded
batch use :func:`ckconv.data.pad_collate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["grid_to_points", "lengths_to_mask", "pack_points", "pad_points"]


def lengths_to_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """``(B,)`` point counts -> ``(B, max_length)`` bool mask with the first ``n_b`` True.

    Examples:
        >>> lengths_to_mask(torch.tensor([2, 0, 3])).int().tolist()
        [[1, 1, 0], [0, 0, 0], [1, 1, 1]]
    """
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.is_floating_point():
        raise ValueError(f"lengths must be a 1-D integer tensor, got {lengths!r}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_length is None:
        max_length = longest
    elif max_length < longest:
        raise ValueError(f"max_length={max_length} is shorter than the longest cloud ({longest})")
    return torch.arange(max_length, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def pad_points(
    packed: torch.Tensor,
    batch: torch.Tensor,
    *,
    batch_size: int | None = None,
    max_points: int | None = None,
    fill_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed points ``(P, ...)`` + batch vector ``(P,)`` -> padded ``(B, N_max, ...)`` + mask.

    Points keep their relative order inside each cloud; ``batch`` need not be sorted.

    Args:
        packed: ``(P, *features)`` values of every point.
        batch: ``(P,)`` int64 cloud index of every point, in ``[0, B)``.
        batch_size: ``B`` (default ``batch.max() + 1``; give it when trailing clouds are empty).
        max_points: ``N_max`` (default: the largest cloud).
        fill_value: value of the padding slots.

    Returns:
        ``(padded, mask)``: ``(B, N_max, *features)`` and ``(B, N_max)`` bool.

    Examples:
        >>> x = torch.tensor([[1.0], [2.0], [3.0]])
        >>> padded, mask = pad_points(x, torch.tensor([0, 1, 0]))
        >>> padded.squeeze(-1).tolist(), mask.tolist()
        ([[1.0, 3.0], [2.0, 0.0]], [[True, True], [True, False]])
    """
    if not isinstance(packed, torch.Tensor) or packed.dim() < 1:
        raise ValueError(f"packed must be a tensor (P, ...), got {packed!r}")
    if (
        not isinstance(batch, torch.Tensor)
        or batch.dim() != 1
        or batch.is_floating_point()
        or batch.shape[0] != packed.shape[0]
    ):
        raise ValueError(
            f"batch must be an integer tensor (P,) with P = packed.shape[0] = {packed.shape[0]}, "
            f"got {tuple(batch.shape) if isinstance(batch, torch.Tensor) else batch!r}"
        )
    batch = batch.long()
    if batch.numel() and int(batch.min()) < 0:
        raise ValueError(f"batch indices must be >= 0, got min {int(batch.min())}")
    needed = int(batch.max()) + 1 if batch.numel() else 0
    if batch_size is None:
        batch_size = needed
    elif batch_size < needed:
        raise ValueError(f"batch_size={batch_size} but batch holds cloud index {needed - 1}")
    counts = torch.bincount(batch, minlength=batch_size)
    mask = lengths_to_mask(counts, max_points)
    order = torch.argsort(batch, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    sorted_batch = batch[order]
    slot = torch.arange(batch.shape[0], device=batch.device) - starts[sorted_batch]
    padded = packed.new_full((batch_size, mask.shape[1], *packed.shape[1:]), fill_value)
    padded[sorted_batch, slot] = packed[order]
    return padded, mask


def pack_points(padded: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``(B, N, ...)`` + mask ``(B, N)`` -> packed ``(P, ...)`` + batch vector ``(P,)``.

    Examples:
        >>> padded = torch.tensor([[[1.0], [3.0]], [[2.0], [0.0]]])
        >>> mask = torch.tensor([[True, True], [True, False]])
        >>> x, batch = pack_points(padded, mask)
        >>> x.squeeze(-1).tolist(), batch.tolist()
        ([1.0, 3.0, 2.0], [0, 0, 1])
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (B, N), got {mask!r}")
    if padded.dim() < 2 or mask.shape != padded.shape[:2]:
        raise ValueError(
            f"padded (B, N, ...) and mask (B, N) disagree: {tuple(padded.shape)} vs "
            f"{tuple(mask.shape)}"
        )
    batch = torch.arange(padded.shape[0], device=padded.device).unsqueeze(1).expand_as(mask)
    return padded[mask], batch[mask]


def grid_to_points(
    volume: torch.Tensor,
    occupied: torch.Tensor | None = None,
    *,
    extent: tuple[float, float] | Sequence[tuple[float, float]] = (-1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read a batch of voxel grids as point clouds at the voxel centres.

    Grid cell ``i`` along a dimension of size ``G`` spanning ``extent = (low, high)`` has its
    centre at ``low + (i + 1/2) (high - low) / G`` (the convention of
    :func:`ckconv.data.modelnet.voxelize`).  Without ``occupied`` every cell becomes a point
    (the whole grid as a cloud: a point convolution on it equals the grid convolution).

    Args:
        volume: ``(B, C, *G)`` features on ``D = volume.dim() - 2`` spatial dimensions.
        occupied: ``(B, *G)`` bool, the cells to keep (e.g. non-empty voxels).
        extent: ``(low, high)`` for every dimension, or one pair per dimension.

    Returns:
        ``(positions, features, mask)``: ``(B, N_max, D)``, ``(B, C, N_max)``, ``(B, N_max)``;
        points follow the grid's row-major ('ij') order.

    Examples:
        >>> vol = torch.arange(4.0).view(1, 1, 2, 2)
        >>> pos, feat, mask = grid_to_points(vol, vol[:, 0] > 0)
        >>> pos.tolist(), feat.tolist()
        ([[[-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]], [[[1.0, 2.0, 3.0]]])
    """
    if not isinstance(volume, torch.Tensor) or volume.dim() < 3:
        raise ValueError(f"volume must be a tensor (B, C, *grid), got {volume!r}")
    b, c, *grid = volume.shape
    dims = len(grid)
    if occupied is None:
        occupied = torch.ones((b, *grid), dtype=torch.bool, device=volume.device)
    elif occupied.dtype != torch.bool or tuple(occupied.shape) != (b, *grid):
        raise ValueError(
            f"occupied must be a bool tensor {(b, *grid)} (B, *grid), got "
            f"{occupied.dtype} {tuple(occupied.shape)}"
        )
    pairs = [extent] * dims if isinstance(extent[0], (int, float)) else list(extent)
    if len(pairs) != dims or any(len(p) != 2 or not p[0] < p[1] for p in pairs):
        raise ValueError(
            f"extent must be (low, high) or one such pair per dimension, got {extent!r}"
        )
    axes = [
        low + (torch.arange(g, device=volume.device, dtype=volume.dtype) + 0.5) * (high - low) / g
        for (low, high), g in zip(pairs, grid)
    ]
    centres = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, dims)
    flat_occ = occupied.reshape(b, -1)
    batch = torch.arange(b, device=volume.device).unsqueeze(1).expand_as(flat_occ)[flat_occ]
    cell = torch.arange(flat_occ.shape[1], device=volume.device).expand_as(flat_occ)[flat_occ]
    positions, mask = pad_points(centres[cell], batch, batch_size=b)
    feats = volume.reshape(b, c, -1).transpose(1, 2)[flat_occ]  # (P, C)
    features, _ = pad_points(feats, batch, batch_size=b)
    return positions, features.transpose(1, 2), mask
