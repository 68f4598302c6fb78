"""On a full voxel grid read as a point cloud, the point layers compute the grid layers."""

from __future__ import annotations

import copy

import pytest
import torch

from ckconv.functional.batching import grid_to_points
from ckconv.kernelnets import MAGNet
from ckconv.nn import CKConv, FlexConv, PointConv, PointFlexConv

F64 = torch.float64


def _point_twin(grid_layer, cls, grid_size, kernel_size, **kw):
    """A point layer on the voxel centres of a grid over [-1, 1]^3 with grid_layer's weights."""
    h = 2.0 / grid_size
    scale = (kernel_size - 1) / 2 * h  # the kernel's edge offset maps to +-1, as on the grid
    layer = cls(
        grid_layer.in_channels,
        grid_layer.out_channels,
        3,
        kernel_net=copy.deepcopy(grid_layer.kernel_net),
        separable=grid_layer.separable,
        locality="window",
        radius=scale + h / 2,  # every offset of the kernel window, none beyond
        num_neighbors=kernel_size**3,
        scale=scale,
        weighting="none",
        init_gain=None,
        dtype=F64,
        **kw,
    )
    layer.kernel_net.load_state_dict(grid_layer.kernel_net.state_dict())  # construction re-inits
    for name in ("mixer", "bias"):
        if getattr(grid_layer, name) is not None:
            getattr(layer, name).data.copy_(getattr(grid_layer, name))
    return layer


@pytest.mark.parametrize("separable", [False, True])
def test_point_conv_on_full_grid_equals_ckconv(separable):
    torch.manual_seed(0)
    g, k, c_in, c_out = 6, 5, 2, 3
    n_out = c_in if separable else c_in * c_out
    net = MAGNet(3, n_out, hidden=8, omega_0=3.0, dtype=F64)
    grid = CKConv(c_in, c_out, 3, kernel_size=k, kernel_net=net, separable=separable, dtype=F64)
    with torch.no_grad():
        grid.bias.normal_()
    x = torch.randn(2, c_in, g, g, g, dtype=F64)
    expected = grid(x).flatten(2)
    pos, feat, mask = grid_to_points(x)
    point = _point_twin(grid, PointConv, g, k)
    out = point(feat, pos, mask=mask)
    assert torch.allclose(out, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("separable", [False, True])
def test_point_flexconv_on_full_grid_equals_flexconv(separable):
    torch.manual_seed(1)
    g, k, c_in, c_out = 7, 7, 2, 3
    n_out = c_in if separable else c_in * c_out
    net = MAGNet(3, n_out, hidden=8, omega_0=3.0, dtype=F64)
    grid = FlexConv(c_in, c_out, 3, kernel_size=k, kernel_net=net, separable=separable, dtype=F64)
    with torch.no_grad():
        grid.kernel_mask.sigma.copy_(torch.tensor([0.3, 0.5, 0.9], dtype=F64))  # anisotropic crop
    x = torch.randn(1, c_in, g, g, g, dtype=F64)
    expected = grid(x).flatten(2)
    pos, feat, mask = grid_to_points(x)
    point = _point_twin(grid, PointFlexConv, g, k)
    point.kernel_mask.load_state_dict(grid.kernel_mask.state_dict())
    out = point(feat, pos, mask=mask)
    assert torch.allclose(out, expected, rtol=1e-9, atol=1e-11)
    # the crop matters: without it (threshold -> 0) the result differs
    point.kernel_mask.threshold = 1e-12
    assert not torch.allclose(point(feat, pos, mask=mask), expected, atol=1e-6)
