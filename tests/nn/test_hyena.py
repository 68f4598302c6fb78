"""Hyena (Poli et al. 2023): its implicit filter, the operator, its functional twin, streaming."""

from __future__ import annotations

import functools
import io
import math

import pytest
import torch
import torch.nn.functional as F

import ckconv.functional as CF
from ckconv.deploy import bake, stream
from ckconv.kernelnets import SIREN, HyenaFilter, build_kernel_net
from ckconv.nn import CKConv, DepthwiseCKConv, Hyena, PointConv, ShortConv


def _positions(n: int) -> torch.Tensor:
    return torch.linspace(-1, 1, n, dtype=torch.float64).unsqueeze(-1)


# -- the implicit filter ----------------------------------------------------------------------


def test_filter_window_reaches_target_at_the_decay_lags():
    """Hyena's modulation: channel 0's window is `target` at lag fast_decay, the last channel's
    at slow_decay; lag 0 is the current sample (p = 1 causal, p = 0 centred)."""
    net = HyenaFilter(1, 5, causal=True, fast_decay=0.3, slow_decay=1.5, target=1e-2).double()
    lags = torch.tensor([0.0, 0.3, 1.5], dtype=torch.float64)
    w = net.window((1.0 - 2.0 * lags).unsqueeze(-1))  # causal: p = 1 - 2 lag
    torch.testing.assert_close(w[0], torch.ones(5, dtype=torch.float64))
    assert math.isclose(float(w[1, 0]), 1e-2, rel_tol=1e-9)
    assert math.isclose(float(w[2, -1]), 1e-2, rel_tol=1e-9)
    centred = HyenaFilter(2, 3, causal=False).double()
    p = torch.tensor([[0.0, 0.0], [0.3, 0.4]], dtype=torch.float64)  # |p| = 0, 0.5
    expected = torch.exp(-0.5 * centred.decay_rates(dtype=torch.float64))
    torch.testing.assert_close(centred.window(p)[1], expected)
    torch.testing.assert_close(centred.window(p)[0], torch.ones(3, dtype=torch.float64))


def test_filter_is_ffn_times_window_and_reloads_exactly():
    torch.manual_seed(0)
    net = HyenaFilter(1, 4, hidden=16, n_freqs=3, causal=True)
    p = _positions(50).float()
    out = net(p)
    # positional features: p, cos(pi k p), sin(pi k p) for k = 1..3
    feats = net.features(p)
    k = torch.arange(1, 4, dtype=torch.float32) * math.pi
    torch.testing.assert_close(feats, torch.cat([p, torch.cos(p * k), torch.sin(p * k)], -1))
    assert torch.all(net.window(p) > 0)
    other = HyenaFilter(1, 4, hidden=16, n_freqs=3, causal=True)
    other.load_state_dict(net.state_dict())
    assert torch.equal(other(p), out)
    out.square().sum().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_filter_refuses_factorised_use_and_mismatched_causality():
    net = build_kernel_net("hyena", 1, 3, hidden=8)
    with pytest.raises(TypeError, match="decay window differs per output channel"):
        net.hidden_features(_positions(4).float())
    with pytest.raises(TypeError, match="decay window"):
        PointConv(1, 2, 1, kernel_net=HyenaFilter(1, 2))(torch.randn(1, 1, 5), torch.randn(1, 5, 1))
    with pytest.raises(
        ValueError, match="HyenaFilter with causal=False, but the layer has causal=True"
    ):
        DepthwiseCKConv(3, kernel_size=5, causal=True, kernel_net=HyenaFilter(1, 3))
    for bad, match in (({"target": 1.5}, "target"), ({"n_freqs": -1}, "n_freqs")):
        with pytest.raises(ValueError, match=match):
            HyenaFilter(1, 2, **bad)


# -- the operator -----------------------------------------------------------------------------


def _oracle_long_conv(layer: DepthwiseCKConv, z: torch.Tensor) -> torch.Tensor:
    """float64 oracle of a causal global long filter: the kernel net on linspace(-1, 1, L),
    F.conv1d with left padding L - 1."""
    L = z.shape[-1]
    w = layer.kernel_net(_positions(L)).t().unsqueeze(1)  # (C, 1, L)
    y = F.conv1d(F.pad(z, (L - 1, 0)), w, groups=z.shape[1])
    return y + layer.bias.view(1, -1, 1)


def test_causal_hyena_equals_a_direct_oracle_and_ignores_the_future():
    torch.manual_seed(1)
    c, L = 4, 40
    op = Hyena(c, order=2, causal=True, input_size=L).double()
    x = torch.randn(2, c, L, dtype=torch.float64)
    # oracle: projections, F.conv1d short filter, oracle long filters, gates
    u = torch.einsum("oc,ncl->nol", op.in_weight, x) + op.in_bias.view(1, -1, 1)
    u = F.conv1d(F.pad(u, (2, 0)), op.short_filter.weight, op.short_filter.bias, groups=3 * c)
    v, g1, g2 = u.split(c, 1)
    z = g1 * _oracle_long_conv(op.long_filters[0], v)
    z = g2 * _oracle_long_conv(op.long_filters[1], z)
    expected = torch.einsum("oc,ncl->nol", op.out_weight, z) + op.out_bias.view(1, -1, 1)
    y = op(x)
    torch.testing.assert_close(y, expected, rtol=1e-9, atol=1e-10)
    x2 = x.clone()
    x2[..., 25:] += torch.randn(2, c, L - 25, dtype=torch.float64)
    y2 = op(x2)
    torch.testing.assert_close(y2[..., :25], y[..., :25], rtol=0, atol=1e-12)
    assert (y2[..., 25:] - y[..., 25:]).abs().max() > 1e-3


def test_centred_hyena_sees_both_sides():
    torch.manual_seed(2)
    op = Hyena(3, order=2, causal=False, input_size=30).double()
    assert op.kernel_size == (59,)  # "full": every offset of a centred global kernel
    x = torch.randn(1, 3, 30, dtype=torch.float64)
    x2 = x.clone()
    x2[..., -1] += 1.0
    assert (op(x2) - op(x))[..., 0].abs().max() > 1e-8  # the last sample reaches the first


@pytest.mark.parametrize(("data_dim", "size"), [(1, (33,)), (2, (7, 9)), (3, (4, 5, 3))])
def test_nd_shapes_and_every_parameter_learns(data_dim, size):
    torch.manual_seed(3)
    op = Hyena(5, order=3, data_dim=data_dim, input_size=size)
    x = torch.randn(2, 5, *size)
    y = op(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    for name, param in op.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert f"order=3, data_dim={data_dim}" in repr(op)


def test_functional_twin_equals_the_module():
    torch.manual_seed(4)
    op = Hyena(4, order=2, causal=True, input_size=24, short_kernel_size=4).double()
    x = torch.randn(3, 4, 24, dtype=torch.float64)
    twin = CF.hyena(
        x,
        op.in_weight,
        op.short_filter.weight,
        [f.kernel_net for f in op.long_filters],
        op.kernel_size,
        op.out_weight,
        in_bias=op.in_bias,
        short_bias=op.short_filter.bias,
        long_biases=[f.bias for f in op.long_filters],
        out_bias=op.out_bias,
        causal=True,
        rate=0.5,
    )
    torch.testing.assert_close(twin, op(x, rate=0.5), rtol=1e-10, atol=1e-12)


def test_reload_round_trip_is_exact():
    torch.manual_seed(5)
    op = Hyena(6, order=2, data_dim=2, input_size=(8, 8), filter=functools.partial(SIREN, hidden=8))
    x = torch.randn(2, 6, 8, 8)
    buf = io.BytesIO()
    torch.save(op.state_dict(), buf)
    torch.manual_seed(99)
    other = Hyena(
        6, order=2, data_dim=2, input_size=(8, 8), filter=functools.partial(SIREN, hidden=8)
    )
    assert not torch.equal(other(x), op(x))
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    assert torch.equal(other(x), op(x))


def test_filter_argument_forms():
    nets = [HyenaFilter(1, 3, causal=True), SIREN(1, 3)]
    op = Hyena(3, order=2, causal=True, input_size=10, filter=nets)
    assert op.long_filters[0].kernel_net is nets[0] and op.long_filters[1].kernel_net is nets[1]
    with pytest.raises(ValueError, match="filter is one module, but order=2"):
        Hyena(3, order=2, input_size=10, filter=SIREN(1, 3))
    with pytest.raises(ValueError, match="filter has 1 kernel nets, expected order=2"):
        Hyena(3, order=2, input_size=10, filter=[SIREN(1, 3)])
    with pytest.raises(ValueError, match=r"kernel_net\.out_channels is 4, expected 3"):
        Hyena(3, order=1, input_size=10, filter=SIREN(1, 4))
    with pytest.raises(ValueError, match="causal=True needs data_dim=1"):
        Hyena(3, data_dim=2, causal=True, input_size=(4, 4))
    with pytest.raises(ValueError, match=r"Hyena with data_dim=1 expects input of shape \(N, 3"):
        Hyena(3, input_size=10)(torch.randn(1, 4, 10))


# -- resolution (CKConv eq. 5) ----------------------------------------------------------------


def test_long_filter_at_another_rate_follows_eq5():
    """The Hyena filter at 2x the sampling rate: the same continuous kernel sampled at half the
    step and scaled by 1/2, so outputs at the shared samples match the coarse ones (a Riemann
    sum of the same integral), as CKConv's (tests/nn/test_resolution.py)."""
    torch.manual_seed(6)
    k1 = 201
    net = HyenaFilter(1, 2, hidden=16, n_freqs=2, causal=True)
    layer = DepthwiseCKConv(2, kernel_size=k1, causal=True, kernel_net=net, bias=False).double()
    t = torch.linspace(0, 1, 2 * (k1 - 1) + 1, dtype=torch.float64)
    x_fine = torch.stack([torch.sin(2 * math.pi * 3 * t) + t, torch.cos(5 * t)]).unsqueeze(0)
    y1 = layer(x_fine[..., ::2])
    y2 = layer(x_fine, rate=2)
    rel = (y2[..., ::2] - y1).norm() / y1.norm()
    assert rel < 0.02, rel
    # independent unscaled oracle: the net on the fine grid, F.conv1d, then the 1/rate factor
    k2 = 2 * (k1 - 1) + 1
    w = layer.kernel_net(_positions(k2)).t().unsqueeze(1)
    unscaled = F.conv1d(F.pad(x_fine, (k2 - 1, 0)), w, groups=2)
    torch.testing.assert_close(y2, unscaled / 2, rtol=1e-9, atol=1e-11)
    assert abs(unscaled[..., ::2].norm() / y1.norm() - 2.0) < 0.05


def test_hyena_with_a_pointwise_short_filter_is_resolution_consistent():
    """With short_kernel_size=1 every part but the long filters is per sample, so the whole
    operator follows eq. 5: at rate 2 its outputs at the shared samples match rate 1."""
    torch.manual_seed(7)
    L = 101
    op = Hyena(3, order=2, causal=True, input_size=L, short_kernel_size=1,
               filter=functools.partial(HyenaFilter, hidden=16, n_freqs=2, causal=True)).double()  # fmt: skip
    t = torch.linspace(0, 1, 2 * (L - 1) + 1, dtype=torch.float64)
    x = torch.stack([torch.sin(2 * math.pi * 2 * t), t, torch.cos(3 * t)]).unsqueeze(0)
    y1 = op(x[..., ::2])
    y2 = op(x, rate=2)
    rel = (y2[..., ::2] - y1).norm() / y1.norm()
    assert rel < 0.03, rel
    unscaled_rel = op.long_filters[0](x, rate=2)[..., ::2] * 2 - op.long_filters[0](x[..., ::2])
    assert unscaled_rel.norm() / op.long_filters[0](x[..., ::2]).norm() > 0.5  # eq. 5 matters


# -- deploy: streaming and baking -------------------------------------------------------------


@pytest.mark.parametrize("chunks", [(1, 13, 50), (64,)])
def test_streaming_equals_offline(chunks):
    torch.manual_seed(8)
    op = Hyena(4, order=2, causal=True, input_size=48, short_kernel_size=3).double().eval()
    x = torch.randn(2, 4, sum(chunks), dtype=torch.float64)
    s = stream(op)
    parts, start = [], 0
    for n in chunks:
        parts.append(s.step(x[..., start : start + n]))
        start += n
    torch.testing.assert_close(torch.cat(parts, -1), op(x), rtol=1e-9, atol=1e-10)


def test_streaming_refuses_a_centred_hyena():
    op = Hyena(2, order=1, causal=False, input_size=16).eval()
    with pytest.raises(ValueError, match="stream\\(\\) needs causal 1D convolutions"):
        stream(op)
    with pytest.raises(ValueError, match="this ShortConv is centred"):
        from ckconv.deploy import StreamingConv

        StreamingConv.from_conv(ShortConv(2, 3))


def test_bake_equals_the_original():
    torch.manual_seed(9)
    op = Hyena(3, order=2, data_dim=2, input_size=(6, 7)).eval()
    x = torch.randn(2, 3, 6, 7)
    baked = bake(op, (6, 7))
    assert not any(isinstance(m, CKConv) for m in baked.modules())
    torch.testing.assert_close(baked(x), op(x), rtol=1e-5, atol=1e-6)
