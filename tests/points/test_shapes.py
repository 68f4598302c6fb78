"""The synthetic shapes dataset: surfaces, normals, area-uniform sampling, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ckconv.data.shapes import (
    SHAPE_CLASSES,
    CubeNormalize,
    RandomPointAugment,
    SyntheticShapes,
    VoxelCentres,
    random_rotation,
    sample_shape,
)
from ckconv.functional.neighbors import knn


def test_items_are_deterministic_balanced_and_in_the_modelnet_layout():
    ds = SyntheticShapes("train", size=16, num_points=100)
    x, y = ds[5]
    assert x.shape == (6, 100) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(ds[5][0], x)
    assert not torch.equal(SyntheticShapes("test", size=16, num_points=100)[5][0], x)
    assert not torch.equal(SyntheticShapes("train", size=16, num_points=100, seed=1)[5][0], x)
    assert [int(ds[i][1]) for i in range(16)] == [i % 8 for i in range(16)]
    assert x[:3].norm(dim=0).max() < 1.05  # unit ball (x scale <= 1, plus jitter)
    with pytest.raises(ValueError, match="classes must be distinct names"):
        SyntheticShapes(classes=["sphere", "blob"])
    with pytest.raises(IndexError):
        ds[16]


@pytest.mark.parametrize("name", SHAPE_CLASSES)
def test_normals_are_outward_unit_and_orthogonal_to_the_surface(name):
    rng = np.random.default_rng(0)
    pts, normals = sample_shape(name, 3000, rng, rotation="so3", noise=0.0)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    # tangent plane: the nearest neighbours of a point lie (almost) orthogonal to its normal
    p = torch.from_numpy(pts).unsqueeze(0)
    nb = knn(p, p, 6, backend="torch")
    chords = p[0][nb.index[0, :, 1:]] - p[0][:, None, :]
    cos = (chords / chords.norm(dim=-1, keepdim=True) * torch.from_numpy(normals)[:, None]).sum(-1)
    assert cos.abs().median() < 0.1
    # outward: the normal points away from the centre of the solid (for the torus: its tube)
    if name == "torus":
        pts, normals = sample_shape(name, 3000, rng, rotation="none", noise=0.0)
        radial = np.hypot(pts[:, 0], pts[:, 1])
        ring = (radial.max() + radial.min()) / 2
        centre = np.zeros_like(pts)
        centre[:, :2] = pts[:, :2] / radial[:, None] * ring
        assert ((pts - centre) * normals).sum(1).min() > 0
    else:
        assert ((pts - pts.mean(0)) * normals).sum(1).min() > -1e-9


def test_torus_and_sphere_sampling_is_uniform_by_area():
    rng = np.random.default_rng(1)
    # sphere (no rotation): z is uniform on [-1, 1] (Archimedes)
    pts, _ = sample_shape("sphere", 20000, rng, rotation="none", noise=0.0, scale_range=(1, 1))
    counts, _ = np.histogram(pts[:, 2], bins=10, range=(-1, 1))
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(2000))
    # torus: the tube angle phi has density proportional to R + r cos(phi); the normal's z is
    # sin(phi), and the outer half (cos phi > 0) holds (pi R + 2 r) / (2 pi R) of the area
    pts, normals = sample_shape("torus", 20000, rng, rotation="none", noise=0.0, scale_range=(1, 1))
    radial = np.hypot(pts[:, 0], pts[:, 1])
    outer = (normals[:, :2] * pts[:, :2]).sum(1) > 0  # cos(phi) > 0
    tube_r = (radial.max() - radial.min()) / 2
    ring_r = (radial.max() + radial.min()) / 2
    expected = (np.pi * ring_r + 2 * tube_r) / (2 * np.pi * ring_r)
    assert abs(outer.mean() - expected) < 0.02


def test_cylinder_caps_get_their_share_of_the_area():
    rng = np.random.default_rng(2)
    pts, normals = sample_shape(
        "cylinder", 20000, rng, rotation="none", noise=0.0, scale_range=(1, 1)
    )
    caps = np.abs(normals[:, 2]) > 0.5
    r = np.hypot(pts[~caps, 0], pts[~caps, 1]).mean()
    h = pts[:, 2].max() - pts[:, 2].min()
    expected = 2 * r * r / (2 * r * h + 2 * r * r)
    assert abs(caps.mean() - expected) < 0.015


def test_random_rotations_are_rotations_and_haar_mean_zero():
    rng = np.random.default_rng(3)
    rots = np.stack([random_rotation(rng) for _ in range(3000)])
    assert np.allclose(rots @ rots.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rots), 1.0)
    assert np.abs(rots.mean(0)).max() < 0.06  # E[R] = 0 under the Haar measure
    z = np.stack([random_rotation(rng, "z") for _ in range(10)])
    assert np.allclose(z[:, 2], [0, 0, 1])


def test_augment_rotates_points_and_normals_together():
    ds = SyntheticShapes("train", size=2, num_points=200, rotation="none", noise=0.0)
    x, _ = ds[1]
    aug = RandomPointAugment("so3", scale=(2.0, 2.0), generator=np.random.default_rng(4))
    y = aug(x)
    assert torch.allclose(y[:3].norm(dim=0), 2 * x[:3].norm(dim=0), atol=1e-5)
    assert torch.allclose((y[:3] * y[3:]).sum(0), 2 * (x[:3] * x[3:]).sum(0), atol=1e-5)
    shifted = RandomPointAugment("none", translate=0.5, generator=np.random.default_rng(5))(x)
    delta = shifted[:3] - x[:3]
    assert torch.allclose(delta, delta[:, :1].expand_as(delta)) and torch.equal(shifted[3:], x[3:])


def test_voxel_centres_cover_the_cube_normalised_points():
    ds = SyntheticShapes("train", size=3, num_points=500)
    x, _ = ds[2]
    grid = 16
    centres = VoxelCentres(grid)(x)
    points = CubeNormalize()(x)
    assert points.abs().max() <= 1 + 1e-6
    # every point lies in (the closed box of) some occupied voxel, and every voxel holds a point
    half = 1.0 / grid
    d = (points.T[:, None, :] - centres.T[None, :, :]).abs().amax(-1)
    assert (d.min(1).values <= half + 1e-6).all()
    assert (d.min(0).values <= half + 1e-6).all()
    assert len(torch.unique(centres, dim=1).T) == centres.shape[1]
    capped = VoxelCentres(grid, max_points=50, generator=np.random.default_rng(6))(x)
    assert capped.shape == (3, 50)
