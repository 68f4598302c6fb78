"""CKConv / FlexConv against independent oracles and the papers' properties."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ckconv.kernelnets.base import KernelNet
from ckconv.nn import CKConv, FlexConv, GaussianMask, kernel_l2, param_groups


class TanhNet(KernelNet):
    """A small smooth kernel net, independent of the library's nets."""

    def __init__(self, in_dims, out_channels, hidden=16, *, device=None, dtype=None):
        super().__init__(in_dims, out_channels)
        self.hidden_linear = nn.Linear(in_dims, hidden, device=device, dtype=dtype)
        self.output_linear = nn.Linear(hidden, out_channels, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        self.hidden_linear.reset_parameters()
        nn.init.uniform_(self.hidden_linear.weight, -3, 3)
        self.output_linear.reset_parameters()

    def hidden_features(self, x):
        return torch.tanh(self.hidden_linear(x))


def oracle(layer, x, mask_fn=None):
    """float64 reference: sample the kernel net on a hand-built grid, pad, F.convNd."""
    d = layer.data_dim
    ks = layer.kernel_size
    axes = [
        torch.linspace(-1, 1, k, dtype=torch.float64)
        if k > 1
        else torch.zeros(1, dtype=torch.float64)
        for k in ks
    ]
    if layer.causal and ks[0] == 1:
        axes = [torch.ones(1, dtype=torch.float64)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    vals = layer.kernel_net.double()(grid)
    if mask_fn is not None:
        vals = vals * mask_fn(grid).unsqueeze(-1)
    c_in = layer.in_channels
    w = vals.movedim(-1, 0)
    w = w.reshape(c_in, 1, *ks) if layer.separable else w.reshape(-1, c_in, *ks)
    pads = []
    for k in reversed(ks):
        pads += [k - 1, 0] if layer.causal else [(k - 1) // 2, k - 1 - (k - 1) // 2]
    conv = (F.conv1d, F.conv2d, F.conv3d)[d - 1]
    y = conv(F.pad(x.double(), pads), w, groups=c_in if layer.separable else 1)
    if layer.separable:
        y = torch.einsum("oi,bi...->bo...", layer.mixer.double(), y)
    if layer.bias is not None:
        y = y + layer.bias.double().view(1, -1, *([1] * d))
    return y


CASES = [
    # data_dim, kernel_size, input spatial, causal
    (1, 17, (17,), False),
    (1, 16, (16,), False),
    (1, 31, (20,), True),
    (1, 12, (40,), True),
    (2, (9, 6), (9, 8), False),
    (3, (3, 4, 5), (4, 5, 6), False),
]


@pytest.mark.parametrize("data_dim,ks,spatial,causal", CASES)
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_ckconv_matches_float64_oracle(data_dim, ks, spatial, causal, separable, method):
    torch.manual_seed(0)
    c_in, c_out = 3, 4
    n_out = c_in if separable else c_in * c_out
    layer = CKConv(
        c_in,
        c_out,
        data_dim,
        kernel_size=ks,
        kernel_net=TanhNet(data_dim, n_out),
        separable=separable,
        causal=causal,
        method=method,
    )
    nn.init.normal_(layer.bias)
    x = torch.randn(2, c_in, *spatial)
    y = layer(x)
    ref = oracle(layer, x)
    assert y.shape == (2, c_out, *spatial)
    assert y.dtype == torch.float32
    err = (y.double() - ref).abs().max() / ref.abs().max()
    assert err < 1e-5, err
    layer64 = layer.double()
    err64 = (layer64(x.double()) - ref).abs().max() / ref.abs().max()
    assert err64 < 1e-10, err64


@pytest.mark.parametrize("data_dim,ks,spatial,causal", CASES)
@pytest.mark.parametrize("separable", [False, True])
def test_flexconv_matches_masked_oracle(data_dim, ks, spatial, causal, separable):
    torch.manual_seed(1)
    c_in, c_out = 2, 3
    n_out = c_in if separable else c_in * c_out
    # a wide mask: nothing is cropped, so the oracle is the full masked kernel
    layer = FlexConv(
        c_in,
        c_out,
        data_dim,
        kernel_size=ks,
        kernel_net=TanhNet(data_dim, n_out),
        separable=separable,
        causal=causal,
        mask_init_sigma=2.0,
    ).double()
    assert layer.cropped_kernel_size() == tuple([ks] if isinstance(ks, int) else ks)
    x = torch.randn(2, c_in, *spatial, dtype=torch.float64)
    ref = oracle(layer, x, mask_fn=lambda g: layer.kernel_mask(g))
    torch.testing.assert_close(layer(x), ref, rtol=1e-10, atol=1e-10)


def test_flexconv_crop_sizes_match_spec_examples():
    layer2d = FlexConv(1, 1, 2, kernel_size=33, kernel_net=TanhNet(2, 1))
    assert layer2d.cropped_kernel_size() == (5, 5)
    assert layer2d.kernel().shape == (1, 1, 5, 5)
    layer1d = FlexConv(1, 1, 1, kernel_size=784, causal=True, kernel_net=TanhNet(1, 1))
    assert layer1d.cropped_kernel_size() == (65,)
    assert layer1d.init_kernel_numel() == 65
    # anisotropic: widen one dimension only
    with torch.no_grad():
        layer2d.kernel_mask.sigma[1] = 0.2
    assert layer2d.cropped_kernel_size() == (5, 13)


def test_flexconv_crop_evaluates_kernel_net_only_inside():
    seen = []

    class Spy(TanhNet):
        def hidden_features(self, x):
            seen.append(x.shape)
            return super().hidden_features(x)

    layer = FlexConv(1, 1, 1, kernel_size=784, causal=True, kernel_net=Spy(1, 1))
    layer(torch.randn(1, 1, 784))
    assert seen[-1] == (65, 1)
    # the cropped convolution equals the full masked one wherever the mask is above threshold:
    # every tap dropped has mask value below the threshold
    full = FlexConv(1, 1, 1, kernel_size=784, causal=True, kernel_net=Spy(1, 1))
    pos = torch.linspace(-1, 1, 784)[:-65].unsqueeze(-1)
    assert full.kernel_mask(pos).max() < 0.1


@pytest.mark.parametrize("cls", [CKConv, FlexConv])
@pytest.mark.parametrize("separable", [False, True])
def test_causality(cls, separable):
    torch.manual_seed(2)
    n_out = 2 if separable else 6
    kw = {"mask_init_sigma": 0.5} if cls is FlexConv else {}
    layer = cls(
        2,
        3,
        1,
        kernel_size=64,
        causal=True,
        separable=separable,
        kernel_net=TanhNet(1, n_out),
        **kw,
    ).double()
    # float64: an FFT spreads round-off over all outputs, so exactness is checked where
    # round-off is far below the tolerance
    x = torch.randn(1, 2, 64, dtype=torch.float64)
    y = layer(x)
    for t in [0, 10, 40, 63]:
        x2 = x.clone()
        x2[..., t + 1 :] = torch.randn_like(x2[..., t + 1 :]) * 100
        y2 = layer(x2)
        torch.testing.assert_close(y2[..., : t + 1], y[..., : t + 1], rtol=1e-9, atol=1e-9)
        if t < 63:
            assert not torch.allclose(y2[..., t + 1 :], y[..., t + 1 :])


def test_gradients_reach_sigma_and_stay_finite_for_tiny_sigma():
    torch.manual_seed(3)
    layer = FlexConv(2, 2, 2, kernel_size=15, kernel_net=TanhNet(2, 4))
    x = torch.randn(2, 2, 15, 15)
    layer(x).square().mean().backward()
    assert layer.kernel_mask.sigma.grad is not None and layer.kernel_mask.sigma.grad.abs().sum() > 0
    for sigma in [1e-3, 1e-6]:
        layer.zero_grad()
        with torch.no_grad():
            layer.kernel_mask.sigma.fill_(sigma)
        y = layer(x)
        y.square().mean().backward()
        assert torch.isfinite(y).all()
        for p in layer.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()


def _state_roundtrip(module_factory, trained):
    buf = io.BytesIO()
    torch.save(trained.state_dict(), buf)
    buf.seek(0)
    fresh = module_factory()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    return fresh


def test_state_dict_roundtrip_after_training_sigma_and_changing_buffers():
    torch.manual_seed(4)

    def make(kernel_size=31):
        return FlexConv(
            2, 3, 1, kernel_size=kernel_size, causal=True, separable=True, kernel_net=TanhNet(1, 2)
        )

    layer = make(kernel_size=40)
    opt = torch.optim.SGD(param_groups(layer, lr=0.1, mask_lr=1.0), lr=0.1)
    x = torch.randn(4, 2, 50)
    for _ in range(3):
        opt.zero_grad()
        layer(x).sum().backward()
        opt.step()
    assert not torch.allclose(layer.kernel_mask.sigma, torch.tensor(0.075))
    # the training grid is part of the model: a checkpoint carries it into a layer built
    # with another kernel_size
    fresh = _state_roundtrip(lambda: make(kernel_size=12), layer)
    assert fresh.kernel_size == (40,)
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)
    torch.testing.assert_close(fresh(x, rate=0.5), layer(x, rate=0.5), rtol=0, atol=0)


def test_reload_does_not_reapply_reweighting():
    torch.manual_seed(5)
    layer = CKConv(3, 3, 1, kernel_size=20, kernel_net=TanhNet(1, 9))
    x = torch.randn(2, 3, 20)
    y = layer(x)
    fresh = _state_roundtrip(
        lambda: CKConv(3, 3, 1, kernel_size=20, kernel_net=TanhNet(1, 9)), layer
    )
    torch.testing.assert_close(fresh(x), y, rtol=0, atol=0)
    torch.testing.assert_close(fresh(x), y, rtol=0, atol=0)  # and again: no first-call effects


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("cls", [CKConv, FlexConv])
def test_reweighting_gives_the_papers_kernel_variance(cls, separable):
    torch.manual_seed(6)
    c_in, gain = 3, 2.0
    n_out = c_in if separable else 2 * c_in
    layer = cls(
        c_in,
        2,
        1,
        kernel_size=101,
        kernel_net=TanhNet(1, n_out),
        init_gain=gain,
        separable=separable,
    )
    k = layer.kernel()
    omega = layer.init_kernel_numel()
    assert k.shape[-1] == omega
    fan = omega * (1 if separable else c_in)
    torch.testing.assert_close(k.square().mean().item(), gain**2 / fan, rtol=1e-4, atol=0)
    torch.manual_seed(6)
    plain = cls(
        c_in,
        2,
        1,
        kernel_size=101,
        kernel_net=TanhNet(1, n_out),
        init_gain=None,
        separable=separable,
    )
    ratio = layer.kernel_net.output_linear.weight / plain.kernel_net.output_linear.weight
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.flatten()[0].item()))


def test_kernel_l2_is_half_sum_of_squares_of_generated_kernels():
    torch.manual_seed(7)
    model = nn.Sequential(
        CKConv(2, 2, 1, kernel_size=9, kernel_net=TanhNet(1, 4)),
        FlexConv(2, 2, 1, kernel_size=33, kernel_net=TanhNet(1, 4)),
    )
    expected = sum(0.5 * m.kernel().square().sum() for m in model)
    torch.testing.assert_close(kernel_l2(model), expected)
    kernel_l2(model).backward()
    assert model[0].kernel_net.output_linear.weight.grad.abs().sum() > 0
    assert model[1].kernel_mask.sigma.grad.abs().sum() > 0
    assert kernel_l2(nn.Linear(2, 2)).item() == 0.0


def test_param_groups_select_masks_and_kernel_nets_by_type():
    model = nn.Sequential(
        FlexConv(2, 2, 1, kernel_size=9, kernel_net=TanhNet(1, 4)),
        nn.Linear(3, 3),
    )
    # a parameter named like a mask but not in a GaussianMask stays in the main group
    model.register_parameter("mask_sigma_lookalike", nn.Parameter(torch.zeros(1)))
    groups = param_groups(model, lr=1e-3, weight_decay=0.1, mask_lr=1e-2)
    by_name = {g["name"]: g for g in groups}
    assert list(by_name) == ["default", "kernel_net", "mask"]
    assert [p is model[0].kernel_mask.sigma for p in by_name["mask"]["params"]] == [True]
    assert by_name["mask"]["lr"] == 1e-2 and by_name["mask"]["weight_decay"] == 0.0
    net = {id(p) for p in model[0].kernel_net.parameters()}
    assert {id(p) for p in by_name["kernel_net"]["params"]} == net
    assert by_name["kernel_net"]["weight_decay"] == 0.0  # unless asked
    asked = param_groups(model, lr=1e-3, kernel_net_weight_decay=0.5)
    assert [g["weight_decay"] for g in asked if g["name"] == "kernel_net"] == [0.5]
    default = {id(p) for p in by_name["default"]["params"]}
    assert (
        id(model.mask_sigma_lookalike) in default and id(model[0].mixer or model[0].bias) in default
    )
    # every trainable parameter lands in exactly one group
    n_all = sum(1 for _ in model.parameters())
    assert sum(len(g["params"]) for g in groups) == n_all
    assert any(isinstance(m, GaussianMask) for m in model.modules())


def test_rate_one_is_the_default_and_kernel_matches_forward():
    torch.manual_seed(8)
    layer = CKConv(2, 2, 1, kernel_size=21, kernel_net=TanhNet(1, 4), causal=True)
    x = torch.randn(1, 2, 21)
    torch.testing.assert_close(layer(x, rate=1), layer(x))
    w = layer.kernel()
    ref = F.conv1d(F.pad(x, (20, 0)), w, layer.bias)
    torch.testing.assert_close(layer(x), ref, rtol=1e-5, atol=1e-5)


def test_compile_forward():
    torch.manual_seed(9)
    for layer in [
        CKConv(2, 3, 1, kernel_size=16, kernel_net=TanhNet(1, 6), causal=True),
        FlexConv(2, 3, 2, kernel_size=9, kernel_net=TanhNet(2, 2), separable=True),
    ]:
        x = torch.randn(2, 2, *([16] if layer.data_dim == 1 else [9, 9]))
        compiled = torch.compile(layer, backend="eager")
        torch.testing.assert_close(compiled(x), layer(x))


def test_bad_arguments_name_what_is_wrong():
    net = TanhNet(1, 4)
    with pytest.raises(ValueError, match="in_channels"):
        CKConv(0, 2, 1, kernel_size=5, kernel_net=net)
    with pytest.raises(ValueError, match="data_dim"):
        CKConv(2, 2, 4, kernel_size=5, kernel_net=net)
    with pytest.raises(ValueError, match="causal"):
        CKConv(2, 2, 2, kernel_size=5, causal=True, kernel_net=TanhNet(2, 4))
    with pytest.raises(ValueError, match="input_size"):
        CKConv(2, 2, 1, kernel_size="same", kernel_net=net)
    with pytest.raises(ValueError, match="kernel_size"):
        CKConv(2, 2, 1, kernel_size=0, kernel_net=net)
    with pytest.raises(ValueError, match="kernel_size"):
        CKConv(2, 2, 1, kernel_size=50, input_size=10, causal=True, kernel_net=net)
    with pytest.raises(ValueError, match="out_channels"):
        CKConv(2, 3, 1, kernel_size=5, kernel_net=net)  # needs 6 outputs
    with pytest.raises(ValueError, match="init_gain"):
        CKConv(2, 2, 1, kernel_size=5, kernel_net=net, init_gain=-1.0)
    with pytest.raises(ValueError, match="init_sigma"):
        FlexConv(2, 2, 1, kernel_size=5, kernel_net=net, mask_init_sigma=0.0)
    layer = CKConv(2, 2, 1, kernel_size=5, kernel_net=net)
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(1, 3, 10))
    with pytest.raises(ValueError, match="spatial"):
        layer(torch.randn(1, 2, 10, 10))
    with pytest.raises(ValueError, match="non-empty"):
        layer(torch.randn(1, 2, 0))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((1, 2, 10), float("nan")))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(1, 2, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(1, 2, 10), rate=0)


def test_kernel_size_strings():
    layer = CKConv(1, 1, 2, kernel_size="full", input_size=(8, 5), kernel_net=TanhNet(2, 1))
    assert layer.kernel_size == (15, 9)
    layer = CKConv(
        1, 1, 1, kernel_size="same", input_size=100, causal=True, kernel_net=TanhNet(1, 1)
    )
    assert layer.kernel_size == (100,)
    assert "kernel_size=(100,)" in repr(layer) and "causal=True" in repr(layer)
