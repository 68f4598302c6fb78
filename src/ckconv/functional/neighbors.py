"""Neighbour search on batches of point clouds: kNN, radius (ball or box) search, farthest
point sampling.

Conventions (shared by every function here and by :mod:`ckconv.nn.pointconv`):

- Clouds are padded: positions ``(B, N, D)`` plus an optional bool mask ``(B, N)`` (True on
  real points), so clouds of different sizes share a batch.  Packed clouds (all points in one
  ``(P, D)`` tensor plus a batch vector) convert with :func:`ckconv.functional.batching.pad_points`.
- A search returns :class:`Neighbors`: ``index (B, M, K)`` into the support points,
  ``mask (B, M, K)`` (True on real neighbours) and ``distance (B, M, K)``, sorted by distance
  (ties by index).  A slot without a neighbour -- the cloud has fewer than ``K`` points, the
  ball holds fewer than ``K``, or the query itself is padding -- has ``mask`` False,
  ``distance = inf`` and ``index = 0``: it is explicit, never a silently repeated point.
  ``knn(..., strict=True)`` raises instead when a cloud has fewer than ``k`` points.
- Distances are recomputed exactly (``sqrt(sum_d (q_d - s_d)^2)`` in the input dtype) for the
  returned neighbours, whichever backend found them, and are differentiable with respect to the
  positions (the indices are not).

Backends: ``"torch"`` works in blocks of query points so at most ``block_elements`` distances
exist at a time (never ``M x N`` at once for large clouds); ``"scipy"`` builds a
:class:`scipy.spatial.cKDTree` per cloud; ``"auto"`` picks scipy when it is installed, the
tensors are on the CPU and the search is large enough for the tree to pay off
(:data:`SCIPY_MIN_PAIRS`, measured by ``benchmarks/bench_points.py``).  Both return the same
neighbours (up to the order of exactly tied distances, which both break by index).

Under ``torch.export`` (pt2 or ONNX) the search always runs the torch backend, in blocks sized
for one cloud (:func:`block_rows`) so the program keeps a dynamic batch; in an ONNX export the
final ordering is ONNX's ``TopK``, which keeps equal distances in index order like the stable
sort used otherwise.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from ckconv._checks import positive_int, positive_number

__all__ = [
    "SCIPY_MIN_PAIRS",
    "Backend",
    "Neighbors",
    "farthest_point_sampling",
    "gather_neighbors",
    "knn",
    "radius_search",
    "scipy_available",
]

Backend = Literal["auto", "torch", "scipy"]

#: ``"auto"`` uses scipy when ``B * M * N`` (query x support pairs over the batch) is at least
#: this.  Measured (1 thread, k=16): torch faster at 8 x 256^2 pairs (0.85x), scipy 2.2x faster
#: at 1024^2, 6x at 4096^2, 16x at 16384^2 (``benchmarks/bench_points.py``).
SCIPY_MIN_PAIRS = 1 << 20

#: Default largest number of pairwise distances held at once by the torch backend.
BLOCK_ELEMENTS = 1 << 22


class Neighbors(NamedTuple):
    """Result of a neighbour search (see the module docstring).

    Attributes:
        index: ``(B, M, K)`` int64 indices into the support points (``0`` on empty slots).
        mask: ``(B, M, K)`` bool, True where the slot holds a real neighbour.
        distance: ``(B, M, K)`` distances in the search's norm, ``inf`` on empty slots.
    """

    index: torch.Tensor
    mask: torch.Tensor
    distance: torch.Tensor

    def counts(self) -> torch.Tensor:
        """Neighbours found per query point, ``(B, M)`` int64."""
        return self.mask.sum(-1)


def scipy_available() -> bool:
    """Whether :mod:`scipy.spatial` can be imported (the optional fast backend)."""
    try:
        import scipy.spatial  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- validation
def _check_cloud(name: str, points: torch.Tensor) -> None:
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a tensor (B, N, D), got {type(points).__name__}")
    if points.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, D), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {points.dtype}")


def _check_mask(name: str, mask: torch.Tensor | None, points: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a bool tensor (B, N), got {got}")
    if mask.shape != points.shape[:2]:
        raise ValueError(
            f"{name} must have shape {tuple(points.shape[:2])} (B, N of its points), "
            f"got {tuple(mask.shape)}"
        )
    return mask


def _check_pair(query, support, query_mask, support_mask):
    _check_cloud("query", query)
    _check_cloud("support", support)
    if query.shape[0] != support.shape[0] or query.shape[2] != support.shape[2]:
        raise ValueError(
            f"query (B, M, D) and support (B, N, D) must agree in B and D, got "
            f"{tuple(query.shape)} and {tuple(support.shape)}"
        )
    if query.dtype != support.dtype or query.device != support.device:
        raise TypeError(
            f"query and support must share dtype and device, got {query.dtype}/{query.device} "
            f"and {support.dtype}/{support.device}"
        )
    return _check_mask("query_mask", query_mask, query), _check_mask(
        "support_mask", support_mask, support
    )


def _choose_backend(backend: str, query: torch.Tensor, support: torch.Tensor) -> str:
    if backend not in ("auto", "torch", "scipy"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'scipy', got {backend!r}")
    if torch.compiler.is_exporting():
        return "torch"  # a KD-tree on NumPy arrays cannot be traced into a program
    if backend == "scipy":
        if not scipy_available():
            raise ImportError("backend='scipy' needs scipy (pip install 'ckconv[points]')")
        return "scipy"
    if backend == "torch":
        return "torch"
    pairs = query.shape[0] * query.shape[1] * support.shape[1]
    if query.device.type == "cpu" and pairs >= SCIPY_MIN_PAIRS and scipy_available():
        return "scipy"
    return "torch"


# ----------------------------------------------------------------------------- helpers
def block_rows(budget: int, batch: int, per_row: int, rows: int) -> int:
    """Rows per block so a ``(batch, block, ...)`` working set holds about ``budget`` values,
    with ``per_row`` values per row and cloud; between 1 and ``rows``.

    Under ``torch.export`` the batch is counted as 1: the block (and so the number of blocks,
    a Python loop) must not depend on the batch size, which an exported program keeps dynamic.
    Rows are computed independently, so the blocking never changes what is computed, only the
    memory held at once (an exported program holds ``batch`` times the budget).
    """
    if torch.compiler.is_exporting():
        batch = 1
    return max(1, min(rows, budget // max(batch * per_row, 1)))


def gather_neighbors(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick rows of ``values`` by neighbour indices.

    Shape:
        - values: ``(B, N, C)`` (point-major) or ``(B, N)``
        - index: ``(B, M, K)``
        - Output: ``(B, M, K, C)`` or ``(B, M, K)``
    """
    b, m, k = index.shape
    flat = index.reshape(b, m * k)
    if values.dim() == 2:
        return torch.gather(values, 1, flat).view(b, m, k)
    c = values.shape[-1]
    return torch.gather(values, 1, flat.unsqueeze(-1).expand(b, m * k, c)).view(b, m, k, c)


def _pair_distance(
    query: torch.Tensor, support: torch.Tensor, index: torch.Tensor, p: float
) -> torch.Tensor:
    """Exact distances between every query point and its candidate support points."""
    diff = gather_neighbors(support, index) - query.unsqueeze(2)
    if p == 2:
        return diff.square().sum(-1).sqrt()
    return diff.abs().amax(-1)


def _finalize(
    query: torch.Tensor,
    support: torch.Tensor,
    candidates: torch.Tensor,
    candidate_ok: torch.Tensor,
    k: int,
    *,
    p: float,
    radius: float | None,
    query_mask: torch.Tensor | None,
    support_mask: torch.Tensor | None,
) -> Neighbors:
    """Exact distances for the candidates, drop invalid ones, sort by (distance, index), keep k."""
    candidates = candidates.masked_fill(~candidate_ok, 0)
    with torch.no_grad():
        exact = _pair_distance(query.detach(), support.detach(), candidates, p)
        ok = candidate_ok
        if support_mask is not None:
            ok = ok & gather_neighbors(support_mask, candidates)
        if query_mask is not None:
            ok = ok & query_mask.unsqueeze(-1)
        if radius is not None:
            ok = ok & (exact <= radius)
        key = exact.masked_fill(~ok, math.inf)
        # ties broken by index: order by index first, then a stable sort by distance
        by_index = candidates.masked_fill(~ok, torch.iinfo(torch.int64).max).argsort(dim=-1)
        key = key.gather(-1, by_index)
        if torch.onnx.is_in_onnx_export():
            # ONNX has no stable sort (aten.sort.stable does not convert), but its TopK puts
            # equal values in the order of their positions (the operator's specification):
            # the same (distance, index) order
            _, by_key = key.topk(min(k, key.shape[-1]), dim=-1, largest=False, sorted=True)
        else:
            by_key = key.argsort(dim=-1, stable=True)[..., :k]
        order = by_index.gather(-1, by_key)
    index = candidates.gather(-1, order)
    mask = ok.gather(-1, order)
    index = index.masked_fill(~mask, 0)
    distance = _pair_distance(query, support, index, p).masked_fill(~mask, math.inf)
    if index.shape[-1] < k:  # fewer candidates than k exist at all: explicit empty slots
        pad = k - index.shape[-1]
        index = torch.nn.functional.pad(index, (0, pad), value=0)
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
        distance = torch.nn.functional.pad(distance, (0, pad), value=math.inf)
    return Neighbors(index, mask, distance)


def _torch_candidates(
    query: torch.Tensor,
    support: torch.Tensor,
    n_candidates: int,
    *,
    p: float,
    radius: float | None,
    support_mask: torch.Tensor | None,
    block_elements: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n_candidates`` nearest support points of every query by a blocked search.

    Euclidean distances use ``|q|^2 + |s|^2 - 2 q.s`` (one batched matmul per block) on
    coordinates centred per cloud; candidates carry a margin (extra candidates, a slack on the
    radius) for its rounding error and are re-checked exactly by :func:`_finalize`.
    Chebyshev distances are computed exactly dimension by dimension.
    """
    b, m, d = query.shape
    n = support.shape[1]
    with torch.no_grad():
        q = query.detach()
        s = support.detach()
        if support_mask is not None:
            w = support_mask.unsqueeze(-1).to(s.dtype)
            centre = (s * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1.0)
        else:
            centre = s.mean(1, keepdim=True)
        q = q - centre
        s = s - centre
        rows = block_rows(block_elements, b, n * (1 if p == 2 else d), m)
        eps = torch.finfo(q.dtype).eps
        if p == 2:
            s2 = s.square().sum(-1)
            s2max = s2.amax(-1, keepdim=True).unsqueeze(-1)  # (B, 1, 1)
        index_blocks, ok_blocks = [], []
        for start in range(0, m, rows):
            qb = q[:, start : start + rows]
            if p == 2:
                q2 = qb.square().sum(-1, keepdim=True)
                dist = torch.baddbmm(s2.unsqueeze(1), qb, s.transpose(1, 2), alpha=-2.0).add_(q2)
                slack = 16 * eps * (q2 + s2max)
                limit = None if radius is None else radius * radius + slack
            else:
                dist = (qb[:, :, None, 0] - s[:, None, :, 0]).abs_()
                for dim in range(1, d):
                    dist = torch.maximum(dist, (qb[:, :, None, dim] - s[:, None, :, dim]).abs_())
                limit = None if radius is None else radius * (1 + 4 * eps)
            bad = torch.zeros_like(dist, dtype=torch.bool)
            if support_mask is not None:
                bad |= ~support_mask.unsqueeze(1)
            if limit is not None:
                bad |= dist > limit
            dist.masked_fill_(bad, math.inf)
            values, idx = dist.topk(n_candidates, dim=-1, largest=False, sorted=False)
            index_blocks.append(idx)
            ok_blocks.append(torch.isfinite(values))
        return torch.cat(index_blocks, 1), torch.cat(ok_blocks, 1)


def _scipy_candidates(
    query: torch.Tensor,
    support: torch.Tensor,
    n_candidates: int,
    *,
    p: float,
    radius: float | None,
    query_mask: torch.Tensor | None,
    support_mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cloud ``cKDTree`` queries (float64), mapped back to padded indices."""
    import numpy as np
    from scipy.spatial import cKDTree

    b, m, _ = query.shape
    index = np.zeros((b, m, n_candidates), dtype=np.int64)
    ok = np.zeros((b, m, n_candidates), dtype=bool)
    q_all = query.detach().cpu().double().numpy()
    s_all = support.detach().cpu().double().numpy()
    for i in range(b):
        s_idx = (
            np.arange(support.shape[1])
            if support_mask is None
            else np.flatnonzero(support_mask[i].cpu().numpy())
        )
        q_idx = np.arange(m) if query_mask is None else np.flatnonzero(query_mask[i].cpu().numpy())
        if len(s_idx) == 0 or len(q_idx) == 0:
            continue
        tree = cKDTree(s_all[i, s_idx])
        kk = min(n_candidates, len(s_idx))
        bound = math.inf if radius is None else radius * (1 + 1e-6) + 1e-12
        dist, found = tree.query(q_all[i, q_idx], k=kk, p=p, distance_upper_bound=bound, workers=-1)
        dist = dist.reshape(len(q_idx), kk)
        found = found.reshape(len(q_idx), kk)
        hit = np.isfinite(dist)
        found = np.where(hit, found, 0)
        index[i, q_idx, :kk] = s_idx[found]
        ok[i, q_idx, :kk] = hit
    device = query.device
    return torch.from_numpy(index).to(device), torch.from_numpy(ok).to(device)


def _search(
    query,
    support,
    k,
    *,
    p,
    radius,
    query_mask,
    support_mask,
    backend,
    block_elements,
) -> Neighbors:
    n = support.shape[1]
    if n == 0 or query.shape[1] == 0:
        shape = (*query.shape[:2], k)
        return Neighbors(
            torch.zeros(shape, dtype=torch.long, device=query.device),
            torch.zeros(shape, dtype=torch.bool, device=query.device),
            torch.full(shape, math.inf, dtype=query.dtype, device=query.device),
        )
    chosen = _choose_backend(backend, query, support)
    if chosen == "scipy":
        cand, ok = _scipy_candidates(
            query,
            support,
            min(k, n),
            p=p,
            radius=radius,
            query_mask=query_mask,
            support_mask=support_mask,
        )
    else:
        margin = 0 if p != 2 else max(4, k // 4)
        cand, ok = _torch_candidates(
            query,
            support,
            min(k + margin, n),
            p=p,
            radius=radius,
            support_mask=support_mask,
            block_elements=block_elements,
        )
    return _finalize(
        query,
        support,
        cand,
        ok,
        k,
        p=p,
        radius=radius,
        query_mask=query_mask,
        support_mask=support_mask,
    )


# ----------------------------------------------------------------------------- public API
def knn(
    query: torch.Tensor,
    support: torch.Tensor,
    k: int,
    *,
    query_mask: torch.Tensor | None = None,
    support_mask: torch.Tensor | None = None,
    strict: bool = False,
    backend: Backend = "auto",
    block_elements: int = BLOCK_ELEMENTS,
) -> Neighbors:
    """The ``k`` nearest support points (Euclidean) of every query point, per cloud.

    A query point that is also a support point finds itself first (distance 0).

    Args:
        query: ``(B, M, D)`` query positions.
        support: ``(B, N, D)`` support positions.
        k: neighbours per query point.
        query_mask, support_mask: ``(B, M)`` / ``(B, N)`` bool, True on real points (padded
            batches of clouds of different sizes).
        strict: raise a ``ValueError`` when some cloud has fewer than ``k`` real support
            points, instead of returning empty (``mask`` False) slots.
        backend: ``"auto"``, ``"torch"`` or ``"scipy"`` (see the module docstring).
        block_elements: the torch backend holds at most about this many distances at once.

    Returns:
        :class:`Neighbors` with ``K = k``.

    Examples:
        >>> pts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [3, 0, 0]]])
        >>> nb = knn(pts, pts, 2)
        >>> nb.index.tolist(), nb.distance.tolist()
        ([[[0, 1], [1, 0], [2, 1]]], [[[0.0, 1.0], [0.0, 1.0], [0.0, 2.0]]])
    """
    query_mask, support_mask = _check_pair(query, support, query_mask, support_mask)
    positive_int("k", k)
    positive_int("block_elements", block_elements)
    if strict:
        counts = (
            torch.full((support.shape[0],), support.shape[1], device=support.device)
            if support_mask is None
            else support_mask.sum(1)
        )
        if query_mask is not None:  # clouds without any query point need no neighbours
            counts = torch.where(query_mask.any(1), counts, torch.full_like(counts, k))
        short = (counts < k).nonzero().flatten().tolist()
        if short:
            got = [int(counts[i]) for i in short[:5]]
            raise ValueError(
                f"too few neighbours: knn(k={k}, strict=True) but cloud(s) {short[:5]} have only "
                f"{got} support points; lower k, or use strict=False and the returned mask"
            )
    return _search(
        query,
        support,
        k,
        p=2,
        radius=None,
        query_mask=query_mask,
        support_mask=support_mask,
        backend=backend,
        block_elements=block_elements,
    )


def radius_search(
    query: torch.Tensor,
    support: torch.Tensor,
    radius: float,
    max_neighbors: int,
    *,
    p: float = 2,
    query_mask: torch.Tensor | None = None,
    support_mask: torch.Tensor | None = None,
    backend: Backend = "auto",
    block_elements: int = BLOCK_ELEMENTS,
) -> Neighbors:
    """Support points within ``radius`` of every query point, the ``max_neighbors`` closest.

    ``p=2`` searches a ball; ``p=inf`` a box (Chebyshev distance ``max_d |q_d - s_d|``): the
    window of a grid convolution kernel of half-width ``radius``.  Points exactly at the radius
    are included.  Queries with fewer neighbours get empty slots (``mask`` False).

    Args:
        query, support, query_mask, support_mask, backend, block_elements: as in :func:`knn`.
        radius: search radius (``> 0``), in the positions' units.
        max_neighbors: ``K``, the slots per query point.
        p: ``2`` (Euclidean) or ``math.inf`` (Chebyshev); distances are returned in this norm.

    Returns:
        :class:`Neighbors` with ``K = max_neighbors``.

    Examples:
        >>> pts = torch.tensor([[[0.0, 0], [1, 0], [1, 1], [5, 5]]])
        >>> nb = radius_search(pts[:, :1], pts, 1.2, 3)
        >>> nb.index.tolist(), nb.mask.tolist()
        ([[[0, 1, 0]]], [[[True, True, False]]])
        >>> radius_search(pts[:, :1], pts, 1.0, 3, p=math.inf).index.tolist()
        [[[0, 1, 2]]]
    """
    query_mask, support_mask = _check_pair(query, support, query_mask, support_mask)
    positive_int("max_neighbors", max_neighbors)
    positive_int("block_elements", block_elements)
    positive_number("radius", radius)
    if p not in (2, math.inf):
        raise ValueError(f"p must be 2 or math.inf, got {p!r}")
    return _search(
        query,
        support,
        max_neighbors,
        p=p,
        radius=float(radius),
        query_mask=query_mask,
        support_mask=support_mask,
        backend=backend,
        block_elements=block_elements,
    )


def farthest_point_sampling(
    points: torch.Tensor,
    num_samples: int,
    *,
    mask: torch.Tensor | None = None,
    start: int | Literal["random"] = 0,
    generator: torch.Generator | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Farthest point sampling: greedily pick the point farthest from those already picked.

    The first pick is the ``start``-th real point of each cloud (``"random"``: a uniformly
    random real point, drawn from ``generator``); each next pick maximises the Euclidean
    distance to the picked set (ties: the lowest index).  Cost ``O(B N num_samples)`` time,
    ``O(B N)`` memory.

    Args:
        points: ``(B, N, D)``.
        num_samples: ``M``, points to pick per cloud.
        mask: ``(B, N)`` bool, True on real points.
        start: index among each cloud's real points of the first pick, or ``"random"``.
        generator: random generator for ``start="random"``.
        strict: raise a ``ValueError`` when a cloud has fewer than ``num_samples`` real points,
            instead of returning empty (mask False, index 0) slots.

    Returns:
        ``(index, valid)``: ``(B, M)`` int64 indices into ``points`` and ``(B, M)`` bool.  A cloud
        with ``n < M`` real points gets all of them in its first ``n`` slots.

    Examples:
        >>> pts = torch.tensor([[[0.0], [1.0], [2.0], [10.0]]])
        >>> farthest_point_sampling(pts, 3)[0].tolist()
        [[0, 3, 2]]
    """
    _check_cloud("points", points)
    mask = _check_mask("mask", mask, points)
    positive_int("num_samples", num_samples)
    b, n, _ = points.shape
    device = points.device
    valid_points = (
        torch.ones(b, n, dtype=torch.bool, device=device) if mask is None else mask.clone()
    )
    counts = valid_points.sum(1)
    if strict and bool((counts < num_samples).any()):
        short = (counts < num_samples).nonzero().flatten().tolist()
        raise ValueError(
            f"too few points: farthest_point_sampling(num_samples={num_samples}, strict=True) but "
            f"cloud(s) {short[:5]} have only {[int(counts[i]) for i in short[:5]]} points"
        )
    # rank of every real point among its cloud's real points, to find the start point
    rank = valid_points.long().cumsum(1) - 1
    if start == "random":
        u = torch.rand(b, generator=generator, device=generator.device if generator else "cpu")
        first = (
            (u.to(device) * counts.clamp_min(1)).floor().long().clamp_max((counts - 1).clamp_min(0))
        )
    elif isinstance(start, int) and not isinstance(start, bool) and start >= 0:
        first = torch.full((b,), start, dtype=torch.long, device=device)
        if bool((first >= counts).any()):
            raise ValueError(f"start={start} but some cloud has only {int(counts.min())} points")
    else:
        raise ValueError(f"start must be a non-negative int or 'random', got {start!r}")
    hit = valid_points & (rank == first.unsqueeze(1))
    current = hit.long().argmax(1)
    index = torch.zeros(b, num_samples, dtype=torch.long, device=device)
    with torch.no_grad():
        pts = points.detach()
        best = torch.full((b, n), math.inf, dtype=pts.dtype, device=device)
        best.masked_fill_(~valid_points, -math.inf)
        rows = torch.arange(b, device=device)
        for i in range(num_samples):
            index[:, i] = current
            if i + 1 == num_samples:
                break
            picked = pts[rows, current].unsqueeze(1)  # (B, 1, D)
            dist = (pts - picked).square().sum(-1)
            best = torch.minimum(best, dist)
            current = best.argmax(1)
    valid = torch.arange(num_samples, device=device).unsqueeze(0) < counts.unsqueeze(1)
    return index.masked_fill(~valid, 0), valid
