"""Point CCNN: masked batch statistics, padding never leaks, grid -> point transfer."""

from __future__ import annotations

import pytest
import torch

from ckconv.functional.batching import grid_to_points
from ckconv.models import CCNN
from ckconv.models.point_ccnn import POINT_CCNN_PRESETS, MaskedBatchNorm, PointCCNN

F64 = torch.float64


def test_masked_batch_norm_equals_batch_norm_on_real_points():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 10, generator=g, dtype=F64)
    mask = torch.rand(3, 10, generator=g) < 0.6
    masked = MaskedBatchNorm(4, dtype=F64)
    plain = torch.nn.BatchNorm1d(4, dtype=F64)
    with torch.no_grad():
        masked.weight.normal_()
        masked.bias.normal_()
    plain.load_state_dict(masked.state_dict())
    real = x.transpose(1, 2)[mask].T.unsqueeze(0)  # (1, C, P): the real points only
    out = masked(x, mask)
    ref = plain(real)
    assert torch.allclose(out.transpose(1, 2)[mask].T.unsqueeze(0), ref, atol=1e-12)
    assert torch.all(out.transpose(1, 2)[~mask] == 0)
    assert torch.allclose(masked.running_mean, plain.running_mean, atol=1e-12)
    assert torch.allclose(masked.running_var, plain.running_var, atol=1e-12)
    masked.eval()
    plain.eval()
    out = masked(x, mask)
    assert torch.allclose(out.transpose(1, 2)[mask].T.unsqueeze(0), plain(real), atol=1e-12)


def _batch(b=3, n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 6, n, generator=g)
    x[:, :3] = torch.rand(b, 3, n, generator=g) * 2 - 1
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 25:] = False
    mask[2, 32:] = False
    return x, mask


@pytest.mark.parametrize("head", ["mean", "none"])
def test_padding_never_reaches_real_points(head):
    torch.manual_seed(2)
    model = PointCCNN(
        6,
        5,
        hidden_channels=8,
        num_blocks=2,
        kernel_hidden=8,
        head=head,
        num_neighbors=6,
        weighting="density",
    )
    x, mask = _batch()
    out = model(x, mask)  # training mode: batch statistics over real points only
    noisy = x.clone()
    noisy[~mask.unsqueeze(1).expand_as(x)] = 1e3  # garbage features and positions in padding
    out_noisy = model(noisy, mask)
    assert torch.allclose(out, out_noisy, atol=1e-5)
    if head == "none":
        assert out.shape == (3, 5, 40) and torch.all(out[1, :, 25:] == 0)
    # eval mode: a cloud alone gives what it gives inside the padded batch
    model.eval()
    batched = model(x, mask)
    alone = model(x[1:2, :, :25])
    assert torch.allclose(
        batched[1:2, ..., :25] if head == "none" else batched[1:2], alone, atol=1e-5
    )


def test_permutation_and_translation():
    torch.manual_seed(3)
    model = PointCCNN(
        3,
        4,
        hidden_channels=8,
        num_blocks=2,
        kernel_hidden=8,
        num_neighbors=6,
        position_channels=False,
        head="none",
        dtype=F64,
    ).eval()
    g = torch.Generator().manual_seed(4)
    pos = torch.rand(2, 30, 3, generator=g, dtype=F64)
    normals = torch.randn(2, 3, 30, generator=g, dtype=F64)
    out = model(normals, pos=pos)
    perm = torch.randperm(30, generator=g)
    assert torch.allclose(model(normals[:, :, perm], pos=pos[:, perm]), out[:, :, perm], atol=1e-10)
    # features that do not contain positions: translating the cloud changes nothing
    assert torch.allclose(model(normals, pos=pos + 5.0), out, atol=1e-9)
    with pytest.raises(ValueError, match="pos \\(B, N, D\\) is required"):
        model(normals)


def test_tiny_presets_have_the_papers_sizes():
    """CCNN Fig. 8 / App. C: CCNN-4,16 has 6,545 and CCNN-4,32 14,401 parameters (6 inputs,
    40 classes, kernel hidden 8); ours differ by the reference code's unpublished details (<11%)."""
    for name, paper in (("ccnn_4_16", 6545), ("ccnn_4_32", 14401), ("ccnn_4_48", 26353)):
        model = PointCCNN.preset(name, 6, 40)
        count = sum(p.numel() for p in model.parameters())
        assert abs(count - paper) / paper < 0.11, (name, count)
    assert set(POINT_CCNN_PRESETS) >= {"ccnn_4_16", "ccnn_4_32", "ccnn_4_140"}
    with pytest.raises(ValueError, match="unknown PointCCNN preset"):
        PointCCNN.preset("ccnn_9_9", 6, 40)


def test_logits_have_moderate_scale_at_init():
    torch.manual_seed(5)
    model = PointCCNN.preset("ccnn_4_32", 6, 10)
    x, mask = _batch(b=8, n=128, seed=6)
    with torch.no_grad():
        std = float(model(x, mask).std())
    assert 0.05 < std < 5.0


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_from_ccnn_reproduces_the_grid_model_on_voxel_centres(norm):
    torch.manual_seed(7)
    g = 5
    grid_model = CCNN(
        4,
        3,
        data_dim=3,
        input_size=(g, g, g),
        hidden_channels=6,
        num_blocks=2,
        kernel_hidden=8,
        kernel_omega_0=3.0,
        mask_init_sigma=0.4,
        norm=norm,
        dtype=F64,
    )
    with torch.no_grad():  # non-trivial masks, norms and statistics
        for block in grid_model.blocks:
            block.conv.kernel_mask.sigma.copy_(torch.tensor([0.35, 0.6, 0.9], dtype=F64))
        for module in grid_model.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
    grid_model.eval()
    x = torch.randn(2, 4, g, g, g, dtype=F64)
    expected = grid_model(x)
    point_model = PointCCNN.from_ccnn(grid_model, g).eval()
    pos, feats, mask = grid_to_points(x)
    out = point_model(feats, mask, pos=pos)
    assert torch.allclose(out, expected, rtol=1e-8, atol=1e-10)
    # occupied voxels only: a smaller cloud, the same model (the transfer), still finite
    occupied = x[:, 0] > 0
    pos, feats, mask = grid_to_points(x, occupied)
    assert torch.isfinite(point_model(feats, mask, pos=pos)).all()


def test_from_ccnn_refuses_even_kernels():
    grid_model = CCNN(2, 3, data_dim=3, input_size=(4, 4, 4), hidden_channels=4, num_blocks=1)
    with pytest.raises(ValueError, match="odd size"):
        PointCCNN.from_ccnn(grid_model, 4)
