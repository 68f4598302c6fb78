"""CKConv / FlexConv with periodic axes (``padding_mode="circular"``, one mode or one per axis).

Properties checked against oracles that share no code with the layers:

* circular-shift equivariance along the periodic axes (``torch.roll``), and its failure
  along a zero-padded axis;
* the sampled kernel covers one period: at the training rate the documented positions
  ``linspace(-1, 1, L)``; at another rate the positions ``anchor + o * h / r`` for the ``rL``
  offsets ``o`` of one period, written out here; the layer's output equals the kernel net
  evaluated there, scaled by ``1 / r``, and convolved through ``F.pad(mode="circular")``;
* CKConv eq. 5 on a periodic signal sampled at twice the rate;
* gradients, state-dict reload, baking.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ckconv.deploy import BakedConv
from ckconv.kernelnets.base import KernelNet
from ckconv.nn import CKConv, FlexConv

torch.set_num_threads(1)


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


def _layer(cls, data_dim, input_size, modes, separable=False, method="auto", **kw):
    torch.manual_seed(0)
    return cls(
        2,
        3,
        data_dim,
        input_size=input_size,
        padding_mode=modes,
        separable=separable,
        method=method,
        **kw,
    ).double()


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
@pytest.mark.parametrize("separable", [False, True], ids=["dense", "separable"])
@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize(
    "size, modes, shifts",
    [
        ((15,), "circular", ((4,), (-1,))),
        ((16,), ["circular"], ((7,), (-1,))),
        ((8, 9), ("zeros", "circular"), ((0, 5), (-2, -1))),
        ((4, 5, 6), ("circular", "zeros", "circular"), ((1, 0, 4), (-3, -2, -1))),
    ],
    ids=["1d-odd", "1d-even", "2d-mixed", "3d-mixed"],
)
def test_equivariant_to_circular_shifts(cls, separable, method, size, modes, shifts):
    layer = _layer(cls, len(size), size, modes, separable, method)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, *size, generator=g, dtype=torch.float64)
    y = layer(x)
    amounts, dims = shifts
    y_shifted = layer(torch.roll(x, amounts, dims))
    assert torch.allclose(y_shifted, torch.roll(y, amounts, dims), atol=1e-10)
    # the layer sees a whole period: a shift it did not get is visible (not a trivial kernel)
    assert not torch.allclose(y_shifted, y, atol=1e-3)


def test_zero_axis_is_not_periodic():
    layer = _layer(CKConv, 2, (8, 9), ("zeros", "circular"))
    x = torch.randn(1, 2, 8, 9, dtype=torch.float64)
    y = layer(x)
    assert not torch.allclose(layer(torch.roll(x, 3, -2)), torch.roll(y, 3, -2), atol=1e-3)


@pytest.mark.parametrize("L", [7, 8])
def test_kernel_covers_one_period_at_the_training_rate(L):
    layer = _layer(CKConv, 1, L, "circular")
    assert layer.kernel_size == (L,)
    (pos,) = layer.kernel_axes(input_size=(L,), dtype=torch.float64)
    assert torch.equal(pos, torch.linspace(-1, 1, L, dtype=torch.float64))
    # "full" on a circular axis is the period too (every offset once)
    assert CKConv(1, 1, input_size=L, kernel_size="full", padding_mode="circular").kernel_size == (
        L,
    )


def _period_positions(L, r):
    """Kernel positions of one period at rate r, from the documented layout: training step
    h = 2 / (L - 1), anchor tap (L - 1) // 2 at -1 + c h, the rL offsets o with the anchor at
    index (rL - 1) // 2 at anchor + o h / r, a position beyond the window [-1 - h/2, 1 + h/2]
    replaced by its periodic image (+- rL h / r)."""
    h = 2.0 / (L - 1)
    anchor = -1.0 + ((L - 1) // 2) * h
    n = round(r * L)
    o = torch.arange(-((n - 1) // 2), n // 2 + 1, dtype=torch.float64)
    p = anchor + o * h / r
    p = torch.where(p < -1 - h / 2 - 1e-9, p + n * h / r, p)
    return torch.where(p > 1 + h / 2 + 1e-9, p - n * h / r, p)


@pytest.mark.parametrize("L, r", [(7, 2), (8, 2), (8, 3), (12, 0.5), (9, 3), (10, 1.5)])
def test_rate_samples_one_period_and_matches_a_resampled_oracle(L, r):
    layer = _layer(CKConv, 1, L, "circular", kernel_net=SmoothNet(1, 6))
    n = round(r * L)
    (pos,) = layer.kernel_axes(r, (n,), dtype=torch.float64)
    # one tap per offset of the period, every offset covered (the kernel is one period)
    assert torch.allclose(pos, _period_positions(L, r), atol=1e-12)
    x = torch.randn(2, 2, n, dtype=torch.float64)
    # oracle: the kernel net at those positions, times 1 / r (eq. 5), circular F.pad + conv1d
    with torch.no_grad():
        w = layer.kernel_net(pos.unsqueeze(-1)).t().reshape(3, 2, -1) / r
        k = w.shape[-1]
        ref = F.conv1d(F.pad(x, ((k - 1) // 2, k // 2), mode="circular"), w, layer.bias)
        assert torch.allclose(layer(x, rate=r), ref, atol=1e-12)


def _eq5_error(L):
    torch.manual_seed(0)
    layer = CKConv(
        1,
        2,
        kernel_size="same",
        input_size=L,
        padding_mode="circular",
        bias=False,
        kernel_net=SmoothNet(1, 2),
    ).double()
    t = torch.arange(2 * L, dtype=torch.float64) / (2 * L)
    x_fine = (torch.sin(2 * math.pi * t) + 0.5 * torch.cos(2 * math.pi * 3 * t)).view(1, 1, -1)
    with torch.no_grad():
        y1 = layer(x_fine[..., ::2])
        y2 = layer(x_fine, rate=2)
        unscaled = float((y2[..., ::2] * 2 - y1).norm() / y1.norm())
        return float((y2[..., ::2] - y1).norm() / y1.norm()), unscaled


def test_eq5_on_a_periodic_signal():
    """A smooth periodic signal at twice the rate: outputs agree at the shared samples
    (CKConv eq. 5 with the kernel covering one period at both rates), with the first-order
    convergence of a Riemann sum (the kernel is not periodic: it jumps at the seam)."""
    err_64, unscaled = _eq5_error(64)
    err_128, _ = _eq5_error(128)
    assert err_128 < 0.015, err_128
    assert err_128 < 0.6 * err_64, (err_64, err_128)
    # without the 1 / r factor the two would differ by the ratio
    assert unscaled > 0.5


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_rate_on_a_circular_axis_keeps_equivariance(cls):
    layer = _layer(cls, 2, (8, 10), ("circular", "zeros"))
    x = torch.randn(1, 2, 16, 5, dtype=torch.float64)
    y = layer(x, rate=(2, 0.5))
    assert y.shape == (1, 3, 16, 5)
    assert torch.allclose(layer(torch.roll(x, 5, -2), rate=(2, 0.5)), torch.roll(y, 5, -2))


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_gradients_flow(cls):
    layer = _layer(cls, 2, (6, 7), "circular", separable=True)
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_reload_round_trip(cls):
    layer = _layer(cls, 2, (6, 7), ("circular", "zeros"))
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    torch.manual_seed(123)  # a different initialisation, then overwritten by the state dict
    other = cls(2, 3, 2, input_size=(6, 7), padding_mode=("circular", "zeros")).double()
    assert not torch.equal(other(x), layer(x))
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other(x), layer(x))
    assert other.padding_mode == ("circular", "zeros")
    assert "padding_mode=('circular', 'zeros')" in repr(other)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_baked_layer_keeps_the_boundary(method):
    layer = _layer(FlexConv, 2, (8, 9), ("circular", "zeros"), separable=True).eval()
    baked = BakedConv.from_conv(layer, (8, 9), method=method)
    x = torch.randn(2, 2, 8, 9, dtype=torch.float64)
    assert baked.padding_mode == ("circular", "zeros")
    assert torch.allclose(baked(x), layer(x), atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"causal": True, "padding_mode": "circular"}, "padding_mode='circular' with causal=True"),
        ({"padding_mode": "reflect"}, "padding_mode must be 'zeros' or 'circular'"),
        ({"padding_mode": ("circular", "zeros")}, "padding_mode must be one of"),
        ({"padding_mode": "circular", "kernel_size": 9}, r"at most 8 per dimension \(L on a circ"),
    ],
)
def test_bad_padding_mode_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CKConv(1, 1, input_size=8, **{"kernel_size": "same", **kwargs})


def test_timestamps_need_zero_padding():
    layer = CKConv(1, 1, input_size=8, padding_mode="circular")
    with pytest.raises(ValueError, match="padding_mode='circular'"):
        layer(torch.randn(1, 1, 8), times=torch.arange(8.0).view(1, 8))


def test_functional_twins_take_padding_mode():
    from ckconv.functional import ckconv, flexconv

    torch.manual_seed(0)
    net = SmoothNet(2, 6).double()
    x = torch.randn(2, 2, 7, 8, dtype=torch.float64)
    modes = ("circular", "zeros")
    y = ckconv(x, net, (7, 8), padding_mode=modes)
    assert torch.allclose(
        ckconv(torch.roll(x, 3, -2), net, (7, 8), padding_mode=modes),
        torch.roll(y, 3, -2),
        atol=1e-12,
    )
    mu, sigma = torch.zeros(2, dtype=torch.float64), torch.full((2,), 0.3, dtype=torch.float64)
    z = flexconv(x, net, (7, 8), mu, sigma, padding_mode=modes)
    assert torch.allclose(
        flexconv(torch.roll(x, 3, -2), net, (7, 8), mu, sigma, padding_mode=modes),
        torch.roll(z, 3, -2),
        atol=1e-12,
    )
    # the layer computes its functional twin (its constructor re-initialises the net)
    layer = CKConv(
        2, 3, 2, kernel_size=(7, 8), kernel_net=net, padding_mode=modes, bias=False, init_gain=None
    ).double()
    twin = ckconv(x, layer.kernel_net, (7, 8), padding_mode=modes)
    assert torch.allclose(layer(x), twin, atol=1e-12)
    with pytest.raises(ValueError, match="padding_mode"):
        ckconv(x, net, (7, 8), padding_mode="periodic")
