"""One base for every continuous convolution: grid and point layers are seen by the
regularisers, the optimiser groups, bake and stream alike; the mask is a part."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ckconv.deploy import bake, stream
from ckconv.kernelnets import MAGNet
from ckconv.models import PointCCNN
from ckconv.nn import (
    CKConv,
    ContinuousConv,
    FlexConv,
    GaussianMask,
    PointConv,
    PointFlexConv,
    continuous_convs,
    kernel_l2,
)

F64 = torch.float64


def _hand_point_kernel_l2(conv: PointFlexConv) -> torch.Tensor:
    """1/2 sum k^2 of a PointFlexConv's kernel on its reference grid, computed here from the
    definition: 9 offsets per dimension spread over the crop ``|z_d| <= sigma_d sqrt(-2 ln
    tau)`` (at most [-1, 1], so every point is inside the crop), kernel net times the Gaussian
    mask."""
    sigma = conv.kernel_mask.sigma.detach().double().expand(conv.data_dim)
    reach = math.sqrt(-2.0 * math.log(conv.kernel_mask.threshold))
    total = torch.zeros((), dtype=F64)
    widths = [min(1.0, math.sqrt(float(s) ** 2 + 1e-8) * reach) for s in sigma]
    axes = [torch.linspace(-1.0, 1.0, 9, dtype=F64) * w for w in widths]
    for point in torch.cartesian_prod(*axes):
        z = point.float()
        value = conv.kernel_net(z.unsqueeze(0))[0].double()  # (C_k,)
        gauss = math.exp(-0.5 * sum(float(z[d]) ** 2 / (float(sigma[d]) ** 2 + 1e-8)
                                    for d in range(conv.data_dim)))  # fmt: skip
        total = total + 0.5 * (value * gauss).square().sum()
    return total


def test_kernel_l2_of_a_point_ccnn_is_the_sum_over_its_generated_kernels():
    torch.manual_seed(0)
    model = PointCCNN.preset("ccnn_4_16", 6, 40)
    convs = [m for m in model.modules() if isinstance(m, PointFlexConv)]
    assert len(convs) == 4
    with torch.no_grad():  # a trained-looking, anisotropic crop
        convs[0].kernel_mask.sigma.copy_(torch.tensor([0.2, 0.5, 0.05]))
    got = kernel_l2(model)
    expected = sum(_hand_point_kernel_l2(c) for c in convs)
    assert float(got.detach()) > 0.0  # it was 0.0 when only CKConv layers were seen
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=0)
    got.backward()  # the penalty trains the kernel nets and the mask widths
    assert all(c.kernel_net.output_linear.weight.grad.abs().sum() > 0 for c in convs)
    assert convs[1].kernel_mask.sigma.grad.abs().sum() > 0


def test_every_layer_is_one_continuous_conv_and_is_found_everywhere():
    model = nn.Sequential(
        CKConv(2, 2, kernel_size=5),
        nn.Sequential(FlexConv(2, 2, kernel_size=33)),
        PointConv(2, 2, num_neighbors=4),
        PointFlexConv(2, 2, num_neighbors=4, separable=True),
    )
    found = continuous_convs(model)
    assert [name for name, _ in found] == ["0", "1.0", "2", "3"]
    assert all(isinstance(m, ContinuousConv) for _, m in found)
    # every layer exposes the kernel it generates in the conv-weight layout
    shapes = [tuple(m.kernel().shape) for _, m in found]
    assert shapes == [(2, 2, 5), (2, 2, 5), (2, 2, 9, 9, 9), (2, 1, 9, 9, 9)]
    # bake and stream see the point layers too, and refuse them by name instead of skipping
    with pytest.raises(TypeError, match=r"PointConv at '2'.*cannot be baked"):
        bake(model, 16)
    with pytest.raises(ValueError, match=r"PointConv at '1' samples its kernel"):
        stream(nn.Sequential(CKConv(2, 2, kernel_size=5, causal=True), model[2]))


def test_the_mask_is_a_part_a_ckconv_with_a_gaussian_mask_is_a_flexconv():
    torch.manual_seed(1)
    flex = FlexConv(2, 3, 2, kernel_size=17, mask_init_sigma=0.3, dtype=F64)
    part = GaussianMask(2, init_sigma=0.3, dtype=F64)
    plain = CKConv(2, 3, 2, kernel_size=17, kernel_net=MAGNet(2, 6, dtype=F64), kernel_mask=part,
                   dtype=F64)  # fmt: skip
    plain.load_state_dict(flex.state_dict())
    assert plain.kernel_mask is part
    x = torch.randn(2, 2, 12, 10, dtype=F64)
    torch.testing.assert_close(plain(x), flex(x), rtol=0, atol=0)
    # cropped by the part: |j| <= floor(0.3 sqrt(2 ln 10) / (2 / 16)) = 5, 11 of 17 taps
    assert plain.kernel().shape == flex.kernel().shape == (3, 2, 11, 11)
    with pytest.raises(TypeError, match=r"kernel_mask must be a ckconv\.nn\.GaussianMask"):
        CKConv(2, 3, kernel_size=5, kernel_mask=nn.Identity())


@pytest.mark.parametrize("kind", ["flex", "point"])
def test_old_checkpoints_with_the_mask_under_mask_still_load(kind):
    """Before the Gaussian part was named ``kernel_mask`` it was stored as ``mask.*``."""
    torch.manual_seed(2)
    if kind == "flex":
        make = lambda: FlexConv(2, 2, kernel_size=15, causal=True)  # noqa: E731
        x, args = torch.randn(1, 2, 30), ()
    else:
        make = lambda: PointFlexConv(2, 2, num_neighbors=5, isotropic=True)  # noqa: E731
        x, args = torch.randn(1, 2, 20), (torch.rand(1, 20, 3),)
    trained = make()
    with torch.no_grad():
        trained.kernel_mask.sigma.mul_(3.0)
    new_format = trained.state_dict()
    old_format = {
        ("mask." + k[len("kernel_mask."):] if k.startswith("kernel_mask.") else k): v
        for k, v in new_format.items()
    }  # fmt: skip
    assert "mask.sigma" in old_format and "kernel_mask.sigma" not in old_format
    fresh = make()
    result = fresh.load_state_dict(old_format)  # strict: no missing or unexpected keys
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(fresh.kernel_mask.sigma, trained.kernel_mask.sigma)
    torch.testing.assert_close(fresh(x, *args), trained(x, *args), rtol=0, atol=0)
    # a model holding such layers loads too (the prefix is the layer's)
    outer_old = {"body." + k: v for k, v in old_format.items()}
    holder = nn.Module()
    holder.body = make()
    holder.load_state_dict(outer_old)
    torch.testing.assert_close(holder.body.kernel_mask.sigma, trained.kernel_mask.sigma)


def test_argument_errors_name_the_users_argument():
    with pytest.raises(ValueError, match="mask_init_sigma must be a finite number > 0, got -1"):
        FlexConv(2, 2, kernel_size=5, mask_init_sigma=-1)
    with pytest.raises(ValueError, match=r"mask_threshold must be a number in \(0, 1\), got 2"):
        PointFlexConv(2, 2, mask_threshold=2)
    with pytest.raises(
        ValueError, match=r"kernel_net.in_dims is 1, expected 2 \(the layer's data_dim\)"
    ):
        CKConv(2, 2, 2, kernel_size=5, kernel_net=MAGNet(1, 4))
    with pytest.raises(ValueError, match="in_channels must be a positive int, got 0"):
        PointConv(0, 2)
    with pytest.raises(ValueError, match="method must be one of 'auto', 'fft', 'direct', got 'x'"):
        CKConv(2, 2, kernel_size=5, method="x")
