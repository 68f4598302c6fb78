"""Neighbour search against brute force: kNN, ball and box radius search, farthest points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ckconv.functional.neighbors import (
    farthest_point_sampling,
    gather_neighbors,
    knn,
    radius_search,
    scipy_available,
)

BACKENDS = ["torch", "scipy"] if scipy_available() else ["torch"]


def _cloud(b, n, d=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, d, generator=g, dtype=dtype)


def _brute(query, support, qmask, smask, k, *, radius=None, p=2):
    """Brute force in numpy float64: the full distance matrix, rows sorted by (distance, index)."""
    q = query.double().numpy()
    s = support.double().numpy()
    b, m, _ = q.shape
    index = np.zeros((b, m, k), dtype=np.int64)
    valid = np.zeros((b, m, k), dtype=bool)
    for bi in range(b):
        diff = s[bi][None, :, :] - q[bi][:, None, :]
        dist = np.sqrt((diff**2).sum(-1)) if p == 2 else np.abs(diff).max(-1)
        ok = np.ones_like(dist, dtype=bool)
        if smask is not None:
            ok &= smask[bi].numpy()[None, :]
        if qmask is not None:
            ok &= qmask[bi].numpy()[:, None]
        if radius is not None:
            ok &= dist <= radius
        dist = np.where(ok, dist, np.inf)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # stable: ties by index
        found = np.take_along_axis(ok, order, 1)
        kk = order.shape[1]
        index[bi, :, :kk] = np.where(found, order, 0)
        valid[bi, :, :kk] = found
    return torch.from_numpy(index), torch.from_numpy(valid)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("masked", [False, True])
def test_knn_equals_brute_force(backend, masked):
    q, s = _cloud(3, 40, seed=1), _cloud(3, 70, seed=2)
    g = torch.Generator().manual_seed(3)
    smask = torch.rand(3, 70, generator=g) < 0.7 if masked else None
    qmask = torch.rand(3, 40, generator=g) < 0.8 if masked else None
    nb = knn(q, s, 9, query_mask=qmask, support_mask=smask, backend=backend)
    index, valid = _brute(q, s, qmask, smask, 9)
    assert torch.equal(nb.mask, valid)
    assert torch.equal(nb.index, index)
    expected = (gather_neighbors(s, index) - q.unsqueeze(2)).norm(dim=-1)
    assert torch.allclose(nb.distance[valid], expected[valid])
    assert torch.isinf(nb.distance[~valid]).all()


def test_knn_small_blocks_and_float32_match_float64():
    """Blocked search (tiny blocks) in float32 finds the float64 brute-force neighbours."""
    q, s = _cloud(2, 300, seed=4), _cloud(2, 500, seed=5)
    nb = knn(q.float(), s.float(), 16, backend="torch", block_elements=20_000)
    index, _ = _brute(q, s, None, None, 16)
    # float32 may swap two neighbours whose float64 distances differ by ~1e-7: compare sets
    # and distances, not the order of near-ties
    same = (nb.index.sort(-1).values == index.sort(-1).values).float().mean()
    assert same > 0.999
    d64 = (gather_neighbors(s, index) - q.unsqueeze(2)).norm(dim=-1)
    assert torch.allclose(nb.distance.double(), d64, atol=1e-6)


def test_knn_far_from_origin_float32():
    """Coordinates far from the origin do not break the matmul distance trick (centring)."""
    q, s = _cloud(1, 100, seed=6), _cloud(1, 200, seed=7)
    shift = torch.tensor([1000.0, -2000.0, 500.0], dtype=torch.float64)
    nb = knn((q + shift).float(), (s + shift).float(), 8, backend="torch")
    index, _ = _brute(q, s, None, None, 8)
    assert (nb.index.sort(-1).values == index.sort(-1).values).float().mean() > 0.99


def test_knn_too_few_points_mask_or_error():
    s = _cloud(2, 6, seed=8)
    smask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])
    nb = knn(s, s, 5, query_mask=smask, support_mask=smask, backend="torch")
    assert nb.mask[0].all()
    assert nb.counts()[1, :3].tolist() == [3, 3, 3]
    assert not nb.mask[1, 3:].any()  # padded query points have no neighbours
    assert torch.isinf(nb.distance[1, 0, 3:]).all() and (nb.index[1, 0, 3:] == 0).all()
    with pytest.raises(ValueError, match=r"too few neighbours.*cloud.*\[1\].*\[3\]"):
        knn(s, s, 5, query_mask=smask, support_mask=smask, strict=True)
    # k larger than the padded cloud: explicit empty slots, not an error
    nb = knn(s, s, 8, backend="torch")
    assert nb.index.shape == (2, 6, 8) and nb.counts().eq(6).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [2, math.inf])
def test_radius_search_equals_brute_force(backend, p):
    q, s = _cloud(2, 50, seed=9), _cloud(2, 120, seed=10)
    smask = torch.rand(2, 120, generator=torch.Generator().manual_seed(11)) < 0.8
    nb = radius_search(q, s, 0.25, 12, p=p, support_mask=smask, backend=backend)
    index, valid = _brute(q, s, None, smask, 12, radius=0.25, p=p)
    assert torch.equal(nb.mask, valid)
    assert torch.equal(nb.index, index)
    assert 0 < valid.sum() < valid.numel()  # some balls overflow, some are not full


@pytest.mark.parametrize("backend", BACKENDS)
def test_radius_includes_points_exactly_on_the_sphere(backend):
    grid = torch.stack(
        torch.meshgrid(*[torch.arange(3.0, dtype=torch.float64)] * 2, indexing="ij"), -1
    ).reshape(1, 9, 2)
    centre = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)
    assert radius_search(centre, grid, 1.0, 9, backend=backend).counts().item() == 5
    assert radius_search(centre, grid, 1.0, 9, p=math.inf, backend=backend).counts().item() == 9


def test_radius_bad_arguments():
    s = _cloud(1, 5)
    with pytest.raises(ValueError, match="radius must be a finite number > 0, got -1"):
        radius_search(s, s, -1.0, 3)
    with pytest.raises(ValueError, match=r"p must be 2 or math\.inf"):
        radius_search(s, s, 1.0, 3, p=1)
    with pytest.raises(ValueError, match=r"query .* and support .* must agree"):
        knn(s, _cloud(1, 5, d=2), 2)
    with pytest.raises(ValueError, match=r"support_mask must have shape \(1, 5\)"):
        knn(s, s, 2, support_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        knn(s, s, 0)


def _fps_brute(points, m, start):
    pts = points.numpy()
    picked = [start]
    best = np.full(len(pts), np.inf)
    for _ in range(m - 1):
        best = np.minimum(best, ((pts - pts[picked[-1]]) ** 2).sum(-1))
        picked.append(int(np.argmax(best)))
    return picked


def test_farthest_point_sampling_equals_brute_force():
    pts = _cloud(3, 80, seed=12)
    mask = torch.ones(3, 80, dtype=torch.bool)
    mask[1, 50:] = False
    index, valid = farthest_point_sampling(pts, 20, mask=mask, start=2)
    assert valid.all()
    for b in range(3):
        n = int(mask[b].sum())
        assert index[b].tolist() == _fps_brute(pts[b, :n], 20, 2)
    # fewer real points than samples: explicit empty slots, or an error when strict
    index, valid = farthest_point_sampling(pts, 60, mask=mask)
    assert valid[1].sum() == 50 and valid[0].all()
    assert sorted(index[1, :50].tolist()) == list(range(50))
    with pytest.raises(ValueError, match="too few points"):
        farthest_point_sampling(pts, 60, mask=mask, strict=True)


def test_farthest_point_sampling_random_start_is_seeded():
    pts = _cloud(2, 30, seed=13)
    a = farthest_point_sampling(pts, 5, start="random", generator=torch.Generator().manual_seed(0))
    b = farthest_point_sampling(pts, 5, start="random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0])
    for bi in range(2):
        assert a[0][bi].tolist() == _fps_brute(pts[bi], 5, int(a[0][bi, 0]))


def test_distances_are_differentiable_positions_not_indices():
    q = _cloud(1, 10, seed=14).requires_grad_()
    s = _cloud(1, 20, seed=15)
    nb = knn(q, s, 3, backend="torch")
    nb.distance.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
    assert not nb.index.requires_grad
