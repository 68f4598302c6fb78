"""Resolution changes (CKConv eq. 5, App. E.3) and timestamped irregular sequences (SPEC §3.6-3.7)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ckconv.functional.ckconv import blur_kernel
from ckconv.functional.irregular import density_weights
from ckconv.kernelnets import MAGNet
from ckconv.kernelnets.base import KernelNet
from ckconv.nn import CKConv, FlexConv, aliasing_penalty


class SmoothNet(KernelNet):
    """A smooth, low-frequency kernel net (Riemann sums of it converge fast)."""

    def __init__(self, in_dims, out_channels, hidden=8):
        super().__init__(in_dims, out_channels)
        self.hidden_linear = nn.Linear(in_dims, hidden)
        self.output_linear = nn.Linear(hidden, out_channels)
        self.reset_parameters()

    def reset_parameters(self):
        self.hidden_linear.reset_parameters()
        self.output_linear.reset_parameters()

    def hidden_features(self, x):
        return torch.tanh(self.hidden_linear(x))


def test_eq5_resolution_scaling_1d():
    """Same signal extent at 2x the rate: outputs agree at shared samples after scaling by
    sr_train / sr_test, and differ by the ratio without it (CKConv eq. 5)."""
    torch.manual_seed(0)
    k1 = 201
    layer = CKConv(
        1, 2, 1, kernel_size=k1, causal=True, kernel_net=SmoothNet(1, 2), bias=False
    ).double()
    t_fine = torch.linspace(0, 1, 2 * (k1 - 1) + 1, dtype=torch.float64)
    x_fine = (torch.sin(2 * math.pi * 3 * t_fine) + t_fine).view(1, 1, -1)
    x_coarse = x_fine[..., ::2]  # seq[::2] keeps the first sample
    y1 = layer(x_coarse)
    y2 = layer(x_fine, rate=2)
    rel = (y2[..., ::2] - y1).norm() / y1.norm()
    assert rel < 0.02, rel
    # independent unscaled oracle: the kernel net sampled at the fine step, plain F.conv1d
    k2 = 2 * (k1 - 1) + 1
    pos = torch.linspace(-1, 1, k2, dtype=torch.float64).unsqueeze(-1)
    w = layer.kernel_net(pos).t().unsqueeze(1)  # (C_out, 1, K2)
    unscaled = F.conv1d(F.pad(x_fine, (k2 - 1, 0)), w)
    torch.testing.assert_close(y2, unscaled / 2, rtol=1e-10, atol=1e-12)
    ratio = unscaled[..., ::2].norm() / y1.norm()
    assert abs(ratio - 2.0) < 0.05, ratio


def test_eq5_resolution_scaling_2d_per_dimension_rates():
    torch.manual_seed(1)
    layer = CKConv(1, 1, 2, kernel_size=(21, 21), kernel_net=SmoothNet(2, 1), bias=False).double()
    g = torch.linspace(0, 1, 41, dtype=torch.float64)
    img = (torch.sin(3 * g)[:, None] * torch.cos(2 * g)[None, :]).view(1, 1, 41, 41)
    y_train = layer(img[..., ::2, ::2])  # 21 x 21: the training grid
    y_fine_w = layer(img[..., ::2, :], rate=(1, 2))  # finer along width only
    rel = (y_fine_w[..., ::2] - y_train).norm() / y_train.norm()
    assert rel < 0.05, rel


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("causal", [True, False])
def test_timestamps_on_the_regular_grid_equal_the_grid_path(cls, separable, causal):
    torch.manual_seed(2)
    c_in, c_out, length = 3, 2, 40
    n_out = c_in if separable else c_in * c_out
    kw = {"mask_init_sigma": 0.2} if cls is FlexConv else {}
    layer = cls(
        c_in,
        c_out,
        1,
        kernel_size=31,
        causal=causal,
        separable=separable,
        kernel_net=MAGNet(1, n_out, hidden=8, omega_0=5.0),
        **kw,
    ).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(2, c_in, length, dtype=torch.float64)
    times = torch.arange(length, dtype=torch.float64).expand(2, length)
    grid = layer(x)
    stamped = layer(x, times=times)
    torch.testing.assert_close(stamped, grid, rtol=1e-10, atol=1e-10)
    # the factorised path equals the plain (un-factorised) evaluation
    from ckconv.functional.irregular import irregular_ckconv

    plain_net = lambda p: layer.kernel_net(p)  # noqa: E731 - hides hidden_features
    plain = irregular_ckconv(
        x,
        times,
        plain_net,
        31,
        layer.bias,
        mixer=layer.mixer,
        causal=causal,
        mask_mu=None if layer.kernel_mask is None else layer.kernel_mask.mu,
        mask_sigma=None if layer.kernel_mask is None else layer.kernel_mask.sigma,
    )
    torch.testing.assert_close(plain, grid, rtol=1e-10, atol=1e-10)


def test_subsampled_timestamps_with_density_weights_equal_rate_path():
    torch.manual_seed(3)
    layer = CKConv(
        2, 2, 1, kernel_size=33, causal=True, kernel_net=SmoothNet(1, 4), weighting="density"
    ).double()
    x = torch.randn(1, 2, 60, dtype=torch.float64)
    sub = x[..., ::3]
    times = torch.arange(0, 60, 3, dtype=torch.float64).unsqueeze(0)
    via_rate = layer(sub, rate=1 / 3)
    via_times = layer(sub, times=times)
    torch.testing.assert_close(via_times, via_rate, rtol=1e-10, atol=1e-10)


def test_missing_samples_equal_zero_filled_grid_and_batches_differ_per_element():
    torch.manual_seed(4)
    layer = FlexConv(
        2, 3, 1, kernel_size=25, causal=True, mask_init_sigma=0.3, kernel_net=SmoothNet(1, 6)
    ).double()
    x = torch.randn(3, 2, 30, dtype=torch.float64)
    mask = torch.rand(3, 30) > 0.4
    times = torch.arange(30, dtype=torch.float64).expand(3, 30)
    zero_filled = layer(x * mask.unsqueeze(1))
    stamped = layer(x, times=times, mask=mask)
    expect = zero_filled * mask.unsqueeze(1)  # no outputs at unobserved samples
    torch.testing.assert_close(stamped, expect, rtol=1e-10, atol=1e-10)


def test_density_weights():
    t = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 3.0, 7.0]], dtype=torch.float64)
    torch.testing.assert_close(
        density_weights(t),
        torch.tensor([[1.0, 1, 1, 1], [2.0, 1.5, 2.5, 4.0]], dtype=torch.float64),
    )
    mask = torch.tensor([[True, False, True, True], [True, True, True, True]])
    w = density_weights(t, mask)
    assert w[0].tolist() == [2.0, 0.0, 1.5, 1.0]


def test_out_of_domain_offsets_mask_or_error():
    layer = CKConv(1, 1, 1, kernel_size=10, causal=True, kernel_net=SmoothNet(1, 1)).double()
    x = torch.randn(1, 1, 5, dtype=torch.float64)
    times = torch.tensor([[0.0, 1.0, 2.0, 30.0, 31.0]], dtype=torch.float64)
    y = layer(x, times=times)  # default: far-past pairs are dropped
    lone = layer(x[..., 3:], times=times[:, 3:])
    torch.testing.assert_close(y[..., 3:], lone)
    with pytest.raises(ValueError, match="trained extent"):
        layer(x, times=times, out_of_domain="error")
    with pytest.raises(ValueError, match="either rate= or times="):
        layer(x, times=times, rate=0.5)
    with pytest.raises(ValueError, match="times must have shape"):
        layer(x, times=times[:, :3])
    with pytest.raises(ValueError, match="1D"):
        CKConv(1, 1, 2, kernel_size=5, kernel_net=SmoothNet(2, 1))(
            torch.randn(1, 1, 4, 4), times=torch.zeros(1, 4)
        )


def test_blur_only_when_finer_and_preserves_dc():
    w = torch.zeros(1, 1, 11, dtype=torch.float64)
    w[..., 5] = 1.0
    assert torch.equal(blur_kernel(w, 1.0), w) and torch.equal(blur_kernel(w, 0.5), w)
    b = blur_kernel(w, 2.0)[0, 0]
    g = torch.exp(-0.5 * (torch.arange(-2, 3, dtype=torch.float64) / 0.5) ** 2)
    torch.testing.assert_close(b[3:8], g / g.sum())
    assert b.sum().item() == pytest.approx(1.0)
    w2 = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    only_w = blur_kernel(w2, (1.0, 3.0))  # blur along the width only
    g3 = torch.exp(-0.5 * (torch.arange(-3, 4, dtype=torch.float64) / 0.5) ** 2)
    rows = F.conv1d(w2.reshape(-1, 1, 9), (g3 / g3.sum()).view(1, 1, -1), padding=3)
    torch.testing.assert_close(only_w, rows.reshape(2, 3, 9, 9))
    layer = CKConv(1, 1, 1, kernel_size=9, kernel_net=SmoothNet(1, 1)).double()
    x = torch.randn(1, 1, 40, dtype=torch.float64)
    assert not torch.allclose(layer(x, rate=2, blur=True), layer(x, rate=2))


def test_aliasing_penalty_targets_frequencies_above_training_nyquist():
    torch.manual_seed(5)
    low = CKConv(1, 1, 1, kernel_size=1001, kernel_net=MAGNet(1, 1, omega_0=1.0))
    assert aliasing_penalty(low).item() == 0.0
    high = CKConv(1, 1, 1, kernel_size=11, kernel_net=MAGNet(1, 1, omega_0=500.0))
    penalty = aliasing_penalty(high)
    assert penalty.item() > 0
    before = high.kernel_net.max_frequency().item()
    opt = torch.optim.Adam(high.parameters(), lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        aliasing_penalty(high).backward()
        opt.step()
    assert high.kernel_net.max_frequency().item() < before - 0.1  # moves down, every step
