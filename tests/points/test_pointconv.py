"""PointConv / PointFlexConv against a float64 oracle with explicit loops over neighbours."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint as real_checkpoint

import ckconv.functional.pointconv as pointconv_module
from ckconv.functional.neighbors import knn
from ckconv.functional.pointconv import (
    kernel_density,
    neighbor_weights,
    point_conv,
    relative_positions,
)
from ckconv.kernelnets import MLP, SIREN, MAGNet
from ckconv.nn import param_groups
from ckconv.nn.pointconv import PointConv, PointFlexConv

F64 = torch.float64


def _data(b=2, n=14, c=3, m=None, seed=0, padded=True):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(b, n, 3, generator=g, dtype=F64)
    x = torch.randn(b, c, n, generator=g, dtype=F64)
    mask = None
    if padded:
        mask = torch.ones(b, n, dtype=torch.bool)
        mask[-1, n - 4 :] = False
    qpos = qmask = None
    if m is not None:
        qpos = torch.rand(b, m, 3, generator=g, dtype=F64)
        if padded:
            qmask = torch.ones(b, m, dtype=torch.bool)
            qmask[0, -1] = False
    return x, pos, mask, qpos, qmask


def _oracle(layer, x, pos, mask, qpos, qmask, neighbors):
    """h_i = sum_j w_ij m(z_ij) k(z_ij) f_j, every weight recomputed from its definition."""
    same = qpos is None
    if same:
        qpos, qmask = pos, mask
    b, _, n = x.shape
    m = qpos.shape[1]
    scale = float(layer.scale)
    rho = None
    if layer.weighting == "density":
        bw = float(layer.density_bandwidth)
        support_nb = neighbors if same else layer.find_neighbors(pos, mask=mask)
        rho = torch.ones(b, n, dtype=F64)
        for bi in range(b):
            for j in range(n):
                ls = [
                    int(idx)
                    for idx, ok in zip(support_nb.index[bi, j], support_nb.mask[bi, j])
                    if ok
                ]
                if ls:
                    vals = [
                        torch.exp(-((pos[bi, j] - pos[bi, idx]) ** 2).sum() / (2 * bw * bw))
                        for idx in ls
                    ]
                    rho[bi, j] = torch.stack(vals).mean()
    outs = torch.zeros(b, layer.out_channels, m, dtype=F64)
    for bi in range(b):
        for i in range(m):
            if qmask is not None and not qmask[bi, i]:
                continue
            js = [int(j) for j, ok in zip(neighbors.index[bi, i], neighbors.mask[bi, i]) if ok]
            acc = torch.zeros(
                layer.in_channels if layer.separable else layer.out_channels, dtype=F64
            )
            for j in js:
                if layer.weighting == "mean":
                    w = 1.0 / len(js)
                elif layer.weighting == "none":
                    w = 1.0
                else:
                    w = (1 / rho[bi, j]) / sum(1 / rho[bi, idx] for idx in js)
                z = (pos[bi, j] - qpos[bi, i]) / scale
                if isinstance(layer, PointFlexConv):
                    sigma = layer.kernel_mask.sigma
                    reach = math.sqrt(-2 * math.log(layer.kernel_mask.threshold))
                    if layer.isotropic:
                        r2 = (z**2).sum()
                        w = w * torch.exp(-0.5 * r2 / (sigma[0] ** 2 + 1e-8))
                        w = w * float(r2.sqrt() <= (sigma[0].detach() ** 2 + 1e-8).sqrt() * reach)
                    else:
                        w = w * torch.exp(-0.5 * (z**2 / (sigma**2 + 1e-8)).sum())
                        inside = (z.abs() <= (sigma.detach() ** 2 + 1e-8).sqrt() * reach).all()
                        w = w * float(inside)
                kv = layer.kernel_net(z)
                if layer.separable:
                    acc = acc + w * kv * x[bi, :, j]
                else:
                    acc = acc + w * kv.view(layer.out_channels, layer.in_channels) @ x[bi, :, j]
            if layer.separable:
                acc = layer.mixer @ acc
            if layer.bias is not None:
                acc = acc + layer.bias
            outs[bi, :, i] = acc
    return outs


CASES = [
    # (layer class, separable, weighting, locality, kernel net)
    (PointConv, False, "mean", "knn", "mlp"),
    (PointConv, True, "mean", "knn", "mlp"),
    (PointConv, False, "density", "knn", "magnet"),
    (PointConv, True, "density", "radius", "siren"),
    (PointConv, False, "none", "window", "magnet"),
    (PointFlexConv, True, "mean", "knn", "magnet"),
    (PointFlexConv, False, "density", "radius", "magnet"),
    (PointConv, True, "mean", "knn", "plain"),  # any module: the unfactorised depthwise path
]


def _kernel_net(name, n_out):
    if name == "plain":
        return torch.nn.Sequential(
            torch.nn.Linear(3, 8, dtype=F64), torch.nn.Tanh(), torch.nn.Linear(8, n_out, dtype=F64)
        )
    if name == "mlp":
        return MLP(3, n_out, hidden=8, dtype=F64)
    if name == "siren":
        return SIREN(3, n_out, hidden=8, omega_0=3.0, dtype=F64)
    return MAGNet(3, n_out, hidden=8, omega_0=2.0, dtype=F64)


def _layer(cls, separable, weighting, locality, net, *, c_in=3, c_out=4, **kw):
    n_out = c_in if separable else c_in * c_out
    extra = {"mask_init_sigma": 0.6} if cls is PointFlexConv else {}
    if net == "plain":
        extra["init_gain"] = None  # a plain module has no scale_output_()
    extra.update(kw)
    return cls(
        c_in,
        c_out,
        kernel_net=_kernel_net(net, n_out),
        separable=separable,
        weighting=weighting,
        locality=locality,
        num_neighbors=5,
        scale=0.4,
        radius=0.35,
        dtype=F64,
        **extra,
    )


@pytest.mark.parametrize(("cls", "separable", "weighting", "locality", "net"), CASES)
@pytest.mark.parametrize("other_queries", [False, True])
def test_point_conv_equals_loop_oracle_with_gradients(
    cls, separable, weighting, locality, net, other_queries
):
    torch.manual_seed(0)
    layer = _layer(cls, separable, weighting, locality, net)
    with torch.no_grad():
        if layer.bias is not None:
            layer.bias.normal_()
    x, pos, mask, qpos, qmask = _data(m=6 if other_queries else None)
    x.requires_grad_()
    pos.requires_grad_()
    out = layer(x, pos, mask=mask, query_pos=qpos, query_mask=qmask)
    nb = layer.find_neighbors(pos, qpos, mask=mask, query_mask=qmask)
    assert nb.mask.any(-1).sum() > 0 and not nb.mask.all()  # some empty slots exercised
    ref = _oracle(layer, x, pos, mask, qpos, qmask, nb)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)

    params = [x, pos, *layer.parameters()]
    cot = torch.randn_like(out)
    grads = torch.autograd.grad((out * cot).sum(), params, allow_unused=True)
    ref_grads = torch.autograd.grad((ref * cot).sum(), params, allow_unused=True)
    for g, r in zip(grads, ref_grads):
        if r is None:
            assert g is None or torch.all(g == 0)
        else:
            assert torch.allclose(g, r, rtol=1e-9, atol=1e-11)


def test_isotropic_flex_mask_equals_oracle_and_has_one_sigma():
    torch.manual_seed(1)
    layer = _layer(PointFlexConv, True, "none", "knn", "magnet", isotropic=True)
    assert layer.kernel_mask.sigma.shape == (1,)
    x, pos, mask, _, _ = _data(seed=3)
    out = layer(x, pos, mask=mask)
    ref = _oracle(layer, x, pos, mask, None, None, layer.find_neighbors(pos, mask=mask))
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_functional_gradcheck():
    torch.manual_seed(2)
    net = MAGNet(3, 6, hidden=4, omega_0=1.0, dtype=F64)
    x, pos, _, _, _ = _data(b=1, n=7, c=2, padded=False)
    nb = knn(pos, pos, 3, backend="torch")

    def fn(x, pos, mixer_free):
        offsets = relative_positions(pos, pos, nb.index, 0.5)
        w = neighbor_weights(nb, "density", kernel_density(pos, nb, 0.3), dtype=F64)
        return point_conv(x, offsets, nb.index, w, net) + mixer_free.sum()

    assert torch.autograd.gradcheck(
        fn,
        (x.requires_grad_(), pos.requires_grad_(), torch.zeros(1, dtype=F64, requires_grad=True)),
    )


@pytest.mark.parametrize("separable", [False, True])
def test_permuting_points_permutes_outputs_and_translation_changes_nothing(separable):
    torch.manual_seed(4)
    # density weights: the strictest case, every weight depends on the whole neighbourhood
    layer = PointFlexConv(
        3,
        5,
        separable=separable,
        num_neighbors=6,
        scale=0.5,
        mask_init_sigma=0.5,
        weighting="density",
        dtype=F64,
    )
    g = torch.Generator().manual_seed(5)
    pos = torch.rand(2, 40, 3, generator=g, dtype=F64)
    x = torch.randn(2, 3, 40, generator=g, dtype=F64)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 30:] = False
    out = layer(x, pos, mask=mask)
    perm = torch.randperm(40, generator=g)
    out_p = layer(x[:, :, perm], pos[:, perm], mask=mask[:, perm])
    assert torch.allclose(out_p, out[:, :, perm], atol=1e-12)
    shift = torch.tensor([3.0, -7.0, 11.0], dtype=F64)
    out_t = layer(x, pos + shift, mask=mask)
    assert torch.allclose(out_t, out, atol=1e-9)
    assert torch.all(out[1, :, 30:] == 0)  # padded outputs are zero


def test_augmentation_applies_before_relative_positions():
    """Rotating the cloud rotates the offsets the kernel sees: the output equals that of a
    layer whose kernel net is composed with the inverse rotation (nothing is cached)."""
    torch.manual_seed(6)
    layer = PointConv(2, 3, num_neighbors=5, scale=0.5, dtype=F64)
    x, pos, _, _, _ = _data(b=1, n=20, c=2, padded=False)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=F64))
    rotated = layer(x, pos @ q.T)
    base = layer.kernel_net
    twin = PointConv(
        2, 3, num_neighbors=5, scale=0.5, dtype=F64, init_gain=None, kernel_net=_Rotated(base, q)
    )
    twin.load_state_dict({k: v for k, v in layer.state_dict().items()}, strict=False)
    assert torch.allclose(twin(x, pos), rotated, atol=1e-12)
    assert not torch.allclose(layer(x, pos), rotated, atol=1e-3)


class _Rotated(torch.nn.Module):
    """``z -> net(Q z)`` exposing the KernelNet interface."""

    def __init__(self, net, q):
        super().__init__()
        self.net = net
        self.q = q
        self.in_dims, self.out_channels = net.in_dims, net.out_channels
        self.output_linear = net.output_linear

    def hidden_features(self, z):
        return self.net.hidden_features(z @ self.q.T)

    def forward(self, z):
        return self.output_linear(self.hidden_features(z))


def test_state_dict_round_trip_keeps_scale_and_outputs():
    torch.manual_seed(7)
    layer = PointFlexConv(3, 4, separable=True, locality="radius", radius=0.3, scale=0.7)
    x, pos = torch.randn(1, 3, 30), torch.rand(1, 30, 3)
    state = layer.state_dict()
    assert {"scale", "radius", "density_bandwidth", "kernel_mask.sigma"} <= set(state)
    other = PointFlexConv(3, 4, separable=True, locality="radius")
    other.load_state_dict(state)
    assert float(other.scale) == pytest.approx(0.7) and float(other.radius) == pytest.approx(0.3)
    assert torch.equal(other(x, pos), layer(x, pos))


def test_mask_sigma_and_kernel_net_are_found_by_param_groups():
    layer = PointFlexConv(2, 2, num_neighbors=4)
    groups = {g["name"]: g["params"] for g in param_groups(layer, lr=1e-2, mask_lr=1e-1)}
    assert len(groups["mask"]) == 1 and groups["mask"][0] is layer.kernel_mask.sigma
    assert {id(p) for p in groups["kernel_net"]} == {id(p) for p in layer.kernel_net.parameters()}


def test_init_gain_keeps_output_scale():
    """With neighbours spread over the kernel domain the re-weighted layer keeps unit variance
    to within a small factor (it sets the scale; it is not an exact variance), and without the
    re-weighting it does not."""
    torch.manual_seed(8)
    pos = torch.rand(2, 600, 3) * 2 - 1
    x = torch.randn(2, 16, 600)
    stds = {}
    for separable in (False, True):
        for weighting in ("mean", "none"):
            for gain in (1.0, None):
                # neighbourhoods of 24 points here span about 0.4: the kernel scale
                layer = PointConv(
                    16,
                    16,
                    separable=separable,
                    weighting=weighting,
                    num_neighbors=24,
                    scale=0.4,
                    init_gain=gain,
                    kernel_net=lambda d, c: MAGNet(d, c, hidden=16),
                )
                with torch.no_grad():
                    stds[separable, weighting, gain] = float(layer(x, pos).std())
    for key, std in stds.items():
        if key[2] is not None:
            assert 0.25 < std < 4.0, (key, std)
    assert any(not 0.25 < std < 4.0 for key, std in stds.items() if key[2] is None), stds


def test_bad_inputs_name_the_argument():
    layer = PointConv(3, 4, num_neighbors=4)
    pos = torch.rand(2, 10, 3)
    with pytest.raises(ValueError, match=r"expects input \(B, 3, N\) with 3 channels"):
        layer(torch.randn(2, 5, 10), pos)
    with pytest.raises(ValueError, match=r"pos must be \(B, N, 3\) \(data_dim=3\)"):
        layer(torch.randn(2, 3, 10), pos[..., :2])
    with pytest.raises(ValueError, match="disagree on B or N"):
        layer(torch.randn(2, 3, 9), pos)
    with pytest.raises(TypeError, match="must match the layer's parameter dtype"):
        layer(torch.randn(2, 3, 10, dtype=F64), pos.double())
    with pytest.raises(TypeError, match="dense PointConv needs a kernel net with hidden_features"):
        PointConv(3, 4, kernel_net=torch.nn.Linear(3, 12), init_gain=None)
    with pytest.raises(ValueError, match=r"kernel_net\.out_channels is 3, expected 12"):
        PointConv(3, 4, kernel_net=MLP(3, 3))
    with pytest.raises(ValueError, match="locality must be"):
        PointConv(3, 4, locality="ball")
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got 0"):
        PointConv(3, 4, scale=0.0)
    assert "locality='knn'" in repr(layer)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("chunk", [5, "auto"])
def test_chunked_equals_unchunked_with_gradients(separable, chunk, monkeypatch):
    torch.manual_seed(9)
    layer = _layer(PointFlexConv, separable, "mean", "knn", "magnet", chunk_size=None)
    x, pos, mask, _, _ = _data(n=23, seed=10)
    x.requires_grad_()
    nb = layer.find_neighbors(pos, mask=mask)
    out = layer(x, pos, mask=mask, neighbors=nb)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    layer.chunk_size = chunk
    # "auto": a budget of 4 rows per chunk (2 clouds x 5 neighbours x max(C, h)=8 values a row)
    monkeypatch.setattr(pointconv_module, "AUTO_CHUNK_ELEMENTS", 4 * 2 * 5 * 8)
    calls = []
    monkeypatch.setattr(
        pointconv_module, "checkpoint", lambda *a, **k: calls.append(1) or real_checkpoint(*a, **k)
    )
    out_c = layer(x, pos, mask=mask, neighbors=nb)
    grads_c = torch.autograd.grad(out_c.square().sum(), [x, *layer.parameters()])
    assert len(calls) == (5 if chunk == 5 else 6)  # ceil(23 / 5) or ceil(23 / 4) chunks
    assert torch.allclose(out_c, out, rtol=1e-12, atol=1e-14)
    for g, gc in zip(grads, grads_c):
        assert torch.allclose(g, gc, rtol=1e-10, atol=1e-13)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operator returns (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize(
    ("cls", "separable", "chunk"),
    [(PointConv, False, None), (PointFlexConv, True, None), (PointConv, False, 64)],
)
def test_no_tensor_larger_than_pairs_times_channels(cls, separable, chunk):
    """Forward + backward never builds M x K x C_in x C_out (here 32x bigger than the bound):
    the largest tensor is at most a small multiple of B*M*K*max(C, hidden), or the
    factorisation's (B, M, C_in, hidden)."""
    b, n, k, c = 2, 256, 16, 32
    layer = cls(c, c, num_neighbors=k, scale=0.2, separable=separable, chunk_size=chunk)
    hidden = layer.kernel_net.output_linear.in_features
    pos, x = torch.rand(b, n, 3), torch.randn(b, c, n, requires_grad=True)
    nb = layer.find_neighbors(pos)
    probe = _LargestTensor()
    with probe:
        layer(x, pos, neighbors=nb).square().sum().backward()
    rows = n if chunk is None else chunk
    # MAGNet evaluates its 4 filter banks at once: (pairs, 4 * hidden)
    factor = 4 if isinstance(layer.kernel_net, MAGNet) else 1
    bound = factor * b * rows * max(k * max(c, hidden), c * hidden)
    assert probe.numel <= max(bound, b * n * c)  # (B, N, C): the input itself
    assert probe.numel * 8 <= b * n * k * c * c  # far below the M x K x C_in x C_out kernel


@pytest.mark.parametrize("isotropic", [False, True])
def test_point_flexconv_functional_twin_matches_the_brute_force_oracle(isotropic):
    """``point_flexconv`` (the functional twin of PointFlexConv) with the layer's parameters
    gives the brute-force float64 sum, crop included (box per dimension, or isotropic ball)."""
    from ckconv.functional import neighbor_weights, point_flexconv

    torch.manual_seed(11)
    layer = PointFlexConv(
        2, 3, num_neighbors=6, scale=0.5, isotropic=isotropic, mask_init_sigma=0.3, dtype=F64
    )
    with torch.no_grad():
        layer.kernel_mask.sigma.copy_(torch.tensor([0.25] if isotropic else [0.2, 0.35, 0.3]))
        layer.bias.normal_()
    x, pos = torch.randn(2, 2, 25, dtype=F64), torch.rand(2, 25, 3, dtype=F64)
    nb = layer.find_neighbors(pos)
    offsets = relative_positions(pos, pos, nb.index, layer.scale)
    m = layer.kernel_mask
    twin = point_flexconv(
        x, offsets, nb.index, neighbor_weights(nb, "mean", dtype=F64), layer.kernel_net,
        m.mu, m.sigma, mask_threshold=m.threshold, mixer=layer.mixer, bias=layer.bias,
    )  # fmt: skip
    with torch.no_grad():
        ref = _oracle(layer, x, pos, None, None, None, nb)
        torch.testing.assert_close(twin, ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(twin, layer(x, pos, neighbors=nb), rtol=0, atol=0)
