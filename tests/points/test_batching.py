"""Padded <-> packed point batches and voxel grids read as point clouds."""

from __future__ import annotations

import pytest
import torch

from ckconv.functional.batching import grid_to_points, lengths_to_mask, pack_points, pad_points


def test_pack_pad_round_trip_with_unsorted_batch_and_empty_cloud():
    g = torch.Generator().manual_seed(0)
    batch = torch.tensor([2, 0, 2, 2, 0, 3])  # cloud 1 is empty
    x = torch.randn(6, 4, generator=g)
    padded, mask = pad_points(x, batch, fill_value=-9.0)
    assert padded.shape == (4, 3, 4) and mask.sum(1).tolist() == [2, 0, 3, 1]
    assert torch.equal(padded[2, :3], x[[0, 2, 3]])  # order inside a cloud is kept
    assert torch.equal(padded[0, :2], x[[1, 4]])
    assert (padded[~mask] == -9.0).all()
    packed, back = pack_points(padded, mask)
    order = torch.argsort(batch, stable=True)
    assert torch.equal(packed, x[order]) and torch.equal(back, batch[order])
    again, mask2 = pad_points(packed, back, batch_size=5, max_points=4)
    assert again.shape == (5, 4, 4) and not mask2[4].any()
    assert torch.equal(again[:4, :3][mask], padded[mask])


def test_pad_points_errors_name_the_argument():
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="batch must be an integer tensor"):
        pad_points(x, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="batch_size=1 but batch holds cloud index 1"):
        pad_points(x, torch.tensor([0, 1, 1]), batch_size=1)
    with pytest.raises(ValueError, match="max_length=1 is shorter than the longest cloud"):
        pad_points(x, torch.tensor([0, 1, 1]), max_points=1)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        pack_points(x.view(1, 3, 2), torch.ones(1, 3))
    assert lengths_to_mask(torch.tensor([1, 3]), 4).sum(1).tolist() == [1, 3]


def test_grid_to_points_reads_voxel_centres():
    g = torch.Generator().manual_seed(1)
    vol = torch.randn(2, 3, 4, 5, 6, generator=g)
    occ = torch.rand(2, 4, 5, 6, generator=g) < 0.3
    pos, feat, mask = grid_to_points(vol, occ, extent=[(-1, 1), (0, 5), (-3, 3)])
    for b in range(2):
        idx = occ[b].nonzero()  # row-major order, like the function
        n = len(idx)
        assert mask[b].sum() == n
        centres = torch.stack(
            [-1 + (idx[:, 0] + 0.5) * 0.5, (idx[:, 1] + 0.5) * 1.0, -3 + (idx[:, 2] + 0.5) * 1.0],
            -1,
        )
        assert torch.allclose(pos[b, :n], centres)
        assert torch.equal(feat[b, :, :n], vol[b][:, idx[:, 0], idx[:, 1], idx[:, 2]])
    full_pos, full_feat, full_mask = grid_to_points(vol)
    assert full_mask.all() and full_pos.shape == (2, 120, 3)
    assert torch.equal(full_feat, vol.flatten(2))
    with pytest.raises(ValueError, match="occupied must be a bool tensor"):
        grid_to_points(vol, occ.float())
