"""Tests of ckconv.kernelnets: the contract, the papers' initialisations, and a fitting claim."""

from __future__ import annotations

import copy
import doctest
import importlib
import io
import math

import pytest
import torch
from torch import nn

from ckconv.kernelnets import (
    KERNEL_NETS,
    MLP,
    SIREN,
    FourierNet,
    GaborNet,
    KernelNet,
    MAGNet,
    RFFNet,
    build_kernel_net,
)

# Small configurations of every net (and the MLP's variants), keyed for readable test ids.
CONFIGS = {
    "siren": (SIREN, {}),
    "siren-plain-ref": (SIREN, {"weight_norm": False, "bias_init": "reference", "layers": 4}),
    "siren-torch-init": (SIREN, {"weight_init": "torch", "bias_init": "reference"}),
    "siren-learn-omega": (SIREN, {"learn_omega_0": True, "omega_0": 10.0}),
    "magnet": (MAGNet, {"omega_0": 5.0}),
    "magnet-causal": (MAGNet, {"omega_0": 5.0, "causal": True, "init_extent": 0.5}),
    "gabor": (GaborNet, {"omega_0": 5.0}),
    "fourier": (FourierNet, {"omega_0": 5.0, "layers": 2}),
    "rff": (RFFNet, {"omega_0": 3.0}),
    "mlp-relu": (MLP, {}),
    "mlp-leaky-knots": (MLP, {"activation": "leaky_relu", "init": "uniform_knots"}),
    "mlp-swish-ln": (MLP, {"activation": "swish", "norm": "layer"}),
    "mlp-gelu-knots-ln": (MLP, {"activation": "gelu", "norm": "layer", "init": "uniform_knots"}),
    "mlp-sine": (MLP, {"activation": "sine", "omega_0": 10.0, "layers": 2}),
}
HIDDEN = 8
OUT = 3


def make(key: str, in_dims: int, **overrides) -> KernelNet:
    cls, kwargs = CONFIGS[key]
    return cls(in_dims, overrides.pop("out_channels", OUT), HIDDEN, **{**kwargs, **overrides})


def positions(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, dtype=dtype) * 2 - 1


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These are tiny ops: one intra-op thread avoids contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("key", CONFIGS)
@pytest.mark.parametrize("in_dims", [1, 2, 3])
@pytest.mark.parametrize("lead", [(), (7,), (2, 3, 4), (0, 5)])
def test_output_shape(key, in_dims, lead):
    net = make(key, in_dims)
    out = net(positions(*lead, in_dims))
    assert out.shape == (*lead, OUT)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("key", CONFIGS)
def test_leading_dims_are_independent_samples(key):
    """Evaluating a grid at once equals evaluating each position alone."""
    net = make(key, 2)
    x = positions(3, 4, 2)
    whole = net(x)
    single = torch.stack([net(p) for p in x.reshape(-1, 2)]).reshape(3, 4, OUT)
    torch.testing.assert_close(whole, single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("key", CONFIGS)
def test_float64_module_matches_float32(key):
    net32 = make(key, 2)
    net64 = make(key, 2, dtype=torch.float64, device="cpu")
    for tensor in [*net64.parameters(), *net64.buffers()]:
        assert tensor.dtype == torch.float64
        assert tensor.device == torch.device("cpu")
    net64.load_state_dict(net32.state_dict())
    x = positions(50, 2, dtype=torch.float64)
    out64 = net64(x)
    assert out64.dtype == torch.float64
    out32 = net32(x.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", CONFIGS)
def test_reset_parameters_redraws(key):
    net = make(key, 2)
    x = positions(20, 2)
    before = net(x).detach()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.reset_parameters()
    after = net(x).detach()
    assert not torch.allclose(before, after)
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, state[k])]
    # every randomly drawn tensor is re-drawn (constants such as MAGNet's unit biases are not)
    assert any("output_linear" in k for k in changed)
    assert len(changed) >= 3


@pytest.mark.parametrize("key", CONFIGS)
def test_state_dict_round_trip(key):
    net = make(key, 3)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(123)
    other = make(key, 3)
    x = positions(4, 5, 3)
    assert not torch.equal(net(x), other(x))
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(net(x), other(x))
    assert torch.equal(copy.deepcopy(net)(x), net(x))


@pytest.mark.parametrize("key", CONFIGS)
@pytest.mark.parametrize("bias", [False, True])
def test_scale_output_scales_outputs(key, bias):
    net = make(key, 2, bias=bias) if "knots" not in key else make(key, 2)
    if net.output_linear.bias is not None:
        with torch.no_grad():
            net.output_linear.bias.zero_()
    x = positions(30, 2)
    before = net(x).detach()
    weight_before = net.output_linear.weight.detach().clone()
    net.scale_output_(0.37)
    torch.testing.assert_close(net.output_linear.weight, 0.37 * weight_before)
    torch.testing.assert_close(net(x), 0.37 * before, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("key", ["siren", "magnet", "gabor", "fourier", "rff", "mlp-swish-ln"])
def test_torch_compile_eager_fullgraph(key):
    net = make(key, 2)
    x = positions(6, 2)
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), net(x))


@pytest.mark.parametrize("key", CONFIGS)
def test_every_parameter_gets_a_finite_gradient(key):
    net = make(key, 2)
    net(positions(40, 2)).square().sum().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("name", sorted(KERNEL_NETS))
def test_registry_builds_each_net(name):
    net = build_kernel_net(name.upper(), 2, 5, hidden=6)
    assert isinstance(net, KERNEL_NETS[name])
    assert isinstance(net.output_linear, nn.Linear)
    assert (net.in_dims, net.out_channels, net.hidden) == (2, 5, 6)
    assert "hidden=6" in repr(net) and "in_dims=2" in repr(net)


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"unknown kernel net 'tanhnet'.*siren"):
        build_kernel_net("tanhnet", 1, 1)


@pytest.mark.parametrize("module", ["base", "siren", "mfn", "magnet", "rff", "mlp", "__init__"])
def test_docstring_examples_run(module):
    name = "ckconv.kernelnets" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: SIREN(0, 1), "in_dims"),
        (lambda: SIREN(1, 0), "out_channels"),
        (lambda: SIREN(1, 1, hidden=0), "hidden must be an int >= 1, got 0"),
        (lambda: SIREN(1, 1, layers=1), "layers must be an int >= 2, got 1"),
        (lambda: SIREN(1, 1, omega_0=0.0), "omega_0 must be a finite number > 0, got 0.0"),
        (lambda: SIREN(1, 1, omega_0=float("nan")), "omega_0"),
        (lambda: SIREN(1, 1, bias_init="kaiming"), "bias_init must be one of"),
        (lambda: MAGNet(1, 1, layers=0), "layers must be an int >= 1, got 0"),
        (lambda: MAGNet(1, 1, init_extent=0.0), "init_extent"),
        (lambda: MAGNet(1, 1, omega_0=-3.0), "omega_0"),
        (lambda: GaborNet(1, 1, alpha=0.0), "alpha"),
        (lambda: FourierNet(2, 1, hidden=2.5), "hidden"),
        (lambda: RFFNet(1, 1, hidden=7), "hidden must be even"),
        (lambda: RFFNet(1, 1, hidden=0), "hidden must be an int >= 2"),
        (lambda: MLP(1, 1, activation="tanh"), "activation must be one of"),
        (lambda: MLP(1, 1, norm="batch"), "norm must be one of"),
        (lambda: MLP(1, 1, init="orthogonal"), "init must be one of"),
        (lambda: MLP(1, 1, init="uniform_knots", bias=False), "needs bias=True"),
        (lambda: MLP(1, 1, knot_range=(1.0, -1.0)), "knot_range"),
    ],
)
def test_bad_arguments_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("key", ["siren", "magnet", "rff", "mlp-relu"])
def test_bad_positions_raise_clear_errors(key):
    net = make(key, 2)
    with pytest.raises(ValueError, match=r"positions of shape \(\.\.\., 2\), got \(5, 3\)"):
        net(positions(5, 3))
    with pytest.raises(ValueError, match=r"got \(\)"):
        net(torch.tensor(0.5))
    with pytest.raises(TypeError, match="floating-point positions"):
        net(torch.ones(5, 2, dtype=torch.int64))


# ------------------------------------------------------------------------------- SIREN
def test_siren_paper_initialisation():
    net = SIREN(1, 2, hidden=2000, layers=3, omega_0=20.0)
    first, second = net.linears
    w = first.weight.detach()
    assert w.abs().max() <= 1.0  # U(-1/fan_in, 1/fan_in), fan_in = 1
    assert w.abs().max() > 0.99
    # b_i ~ U(-pi/||W_i||, pi/||W_i||): the normalised bias fills (-1, 1) uniformly.
    u = first.bias.detach() * w.norm(dim=1) / math.pi
    assert u.abs().max() <= 1.0 + 1e-6
    assert u.min() < -0.98 and u.max() > 0.98
    assert abs(u.mean().item()) < 0.05
    assert abs(u.var().item() - 1 / 3) < 0.03
    bound = math.sqrt(6.0 / 2000) / 20.0
    w2 = second.weight.detach()
    assert w2.abs().max() <= bound * (1 + 1e-6) and w2.abs().max() > 0.99 * bound
    # the weight-norm magnitude g holds the row norms of the drawn weight
    g = first.parametrizations.weight.original0.detach().squeeze(-1)
    torch.testing.assert_close(g, w.norm(dim=1))


def test_siren_first_layer_bound_in_higher_dims():
    net = SIREN(3, 1, hidden=500, omega_0=30.0)
    w = net.linears[0].weight.detach()
    assert w.abs().max() <= 1 / 3
    u = net.linears[0].bias.detach() * w.norm(dim=1) / math.pi
    assert u.abs().max() <= 1.0 + 1e-6 and u.abs().max() > 0.95


@pytest.mark.parametrize(("bias_init", "low", "high"), [("reference", -1.0, 1.0), ("zero", 0, 0)])
def test_siren_alternative_bias_inits(bias_init, low, high):
    net = SIREN(1, 500, hidden=500, bias_init=bias_init)
    for linear in [*net.linears, net.output_linear]:
        b = linear.bias.detach()
        assert b.min() >= low and b.max() <= high
        if high > low:
            assert b.min() < low + 0.05 and b.max() > high - 0.05


@pytest.mark.parametrize("weight_norm", [True, False])
def test_siren_torch_weight_init_is_the_linear_default(weight_norm):
    # every layer U(-1/sqrt(fan_in), 1/sqrt(fan_in)), first layer too, whatever omega_0
    torch.manual_seed(0)
    net = SIREN(2, 400, hidden=400, omega_0=30.0, weight_init="torch", weight_norm=weight_norm)
    for linear in [*net.linears, net.output_linear]:
        w = linear.weight.detach()
        bound = 1.0 / math.sqrt(linear.in_features)
        assert w.abs().max() <= bound * (1 + 1e-6) and w.abs().max() > 0.99 * bound
        assert abs(w.var().item() * 3 / bound**2 - 1) < 0.05
    # the paper's first-layer bias scales with the drawn first-layer rows
    w = net.linears[0].weight.detach()
    u = net.linears[0].bias.detach() * w.norm(dim=1) / math.pi
    assert u.abs().max() <= 1.0 + 1e-6 and u.abs().max() > 0.95
    with pytest.raises(ValueError, match="weight_init must be one of"):
        SIREN(1, 1, weight_init="default")


def test_siren_forward_matches_formula():
    net = SIREN(2, 3, hidden=5, layers=3, omega_0=7.0).double()
    x = positions(11, 2, dtype=torch.float64)
    h = x
    for linear in net.linears:
        w = linear.weight.detach()
        h = torch.sin(7.0 * (h @ w.T + linear.bias.detach()))
    expected = h @ net.output_linear.weight.detach().T + net.output_linear.bias.detach()
    torch.testing.assert_close(net(x), expected)


# ------------------------------------------------------------------------------- MAGNet
def test_magnet_gamma_is_anisotropic_gamma_distributed():
    n, in_dims = 4000, 3
    net = MAGNet(in_dims, 1, hidden=n, layers=4, alpha=6.0, beta=1.0)
    gamma = net.gamma.detach()
    assert gamma.shape == (4, n, in_dims)
    for layer in range(4):
        alpha = 6.0 / (layer + 1)  # Gamma(alpha, 1): mean alpha, variance alpha
        for d in range(in_dims):
            g = gamma[layer, :, d]
            assert (g > 0).all()
            assert abs(g.mean().item() - alpha) < 5 * math.sqrt(alpha / n)
            assert abs(g.var().item() / alpha - 1) < 0.15
        # anisotropic: each dimension draws its own value
        assert not torch.allclose(gamma[layer, :, 0], gamma[layer, :, 1])


def test_magnet_initialisation_matches_spec():
    omega_0, in_dims = 7.0, 2
    net = MAGNet(in_dims, 3, hidden=1000, layers=3, omega_0=omega_0)
    # W^g = default draw U(+-1/sqrt(in_dims)) times 2 pi omega_0 gamma
    ratio = net.filter_weight.detach() / (2 * math.pi * omega_0 * net.gamma.detach())
    bound = 1 / math.sqrt(in_dims)
    assert ratio.abs().max() <= bound * (1 + 1e-5) and ratio.abs().max() > 0.99 * bound
    assert torch.count_nonzero(net.filter_bias) == 0
    mu = net.mu.detach()
    assert mu.min() >= -1 and mu.max() <= 1 and mu.min() < -0.99 and mu.max() > 0.99
    for linear in net.linears:
        kaiming = math.sqrt(3.0 / linear.in_features)  # kaiming-uniform, linear gain
        assert linear.weight.abs().max() <= kaiming and linear.weight.abs().max() > 0.95 * kaiming
        assert torch.equal(linear.bias, torch.ones_like(linear.bias))
    assert torch.count_nonzero(net.output_linear.bias) == 0
    kaiming = math.sqrt(3.0 / 1000)
    assert net.output_linear.weight.abs().max() <= kaiming


@pytest.mark.parametrize("extent", [1.0, 0.3])
def test_magnet_causal_mu(extent):
    net = MAGNet(1, 1, hidden=2000, causal=True, init_extent=extent)
    mu = net.mu.detach()
    assert mu.min() >= 1 - extent and mu.max() <= 1
    assert mu.min() < 1 - 0.98 * extent and mu.max() > 1 - 0.02 * extent
    centred = MAGNet(1, 1, hidden=2000, init_extent=extent).mu.detach()
    assert centred.min() >= -extent and centred.max() <= extent and centred.min() < -0.98 * extent


def _mfn_oracle(net, x: torch.Tensor) -> torch.Tensor:
    """Direct float64 evaluation of an MFN from its parameters, one filter at a time."""
    p = {k: v.detach().double() for k, v in net.named_parameters()}
    x = x.double()
    g = []
    for layer in range(net.layers):
        z = x @ p["filter_weight"][layer].T + p["filter_bias"][layer]
        out = torch.sin(z)
        if isinstance(net, MAGNet):
            diff = x[:, None, :] - p["mu"][layer]
            out = out * torch.exp(-0.5 * ((p["gamma"][layer] * diff) ** 2).sum(-1))
        elif isinstance(net, GaborNet):
            sq = ((x[:, None, :] - p["mu"][layer]) ** 2).sum(-1)
            out = out * torch.exp(-0.5 * p["gamma"][layer] * sq)
        g.append(out)
    h = g[0]
    for layer in range(1, net.layers):
        w, b = p[f"linears.{layer - 1}.weight"], p[f"linears.{layer - 1}.bias"]
        h = g[layer] * (h @ w.T + b)
    return h @ p["output_linear.weight"].T + p["output_linear.bias"]


@pytest.mark.parametrize("cls", [MAGNet, GaborNet, FourierNet])
@pytest.mark.parametrize("in_dims", [1, 3])
def test_mfn_forward_matches_float64_oracle(cls, in_dims):
    net = cls(in_dims, 4, hidden=6, layers=3, omega_0=3.0)
    x = positions(25, in_dims)
    torch.testing.assert_close(net(x).double(), _mfn_oracle(net, x), rtol=1e-4, atol=1e-5)


def test_gabornet_and_fouriernet_fathony_initialisation():
    gabor = GaborNet(2, 1, hidden=3000, layers=4, omega_0=2.0, alpha=6.0)
    alpha = 6.0 / 4
    gamma = gabor.gamma.detach()
    assert gamma.shape == (4, 3000)  # isotropic: one precision per filter
    assert abs(gamma.mean().item() - alpha) < 5 * math.sqrt(alpha / gamma.numel())
    ratio = gabor.filter_weight.detach() / (2 * math.pi * 2.0 / 2 * gamma.sqrt()[..., None])
    assert ratio.abs().max() <= 1 / math.sqrt(2) * (1 + 1e-5)
    fourier = FourierNet(1, 1, hidden=3000, layers=4, omega_0=2.0)
    w = fourier.filter_weight.detach()
    assert w.abs().max() <= 2 * math.pi * 2.0 / 2 and w.abs().max() > 0.99 * 2 * math.pi
    for net in (gabor, fourier):
        b = net.filter_bias.detach()
        assert b.abs().max() <= math.pi and b.abs().max() > 0.99 * math.pi


def test_filter_frequencies_definition():
    net = MAGNet(2, 1, hidden=5, layers=3, omega_0=4.0)
    expected = (net.filter_weight.abs() + 2.0 * net.gamma.abs()) / (2 * math.pi)
    torch.testing.assert_close(net.filter_frequencies(n_std=2.0), expected)
    torch.testing.assert_close(net.max_frequency(2.0), expected.amax(1).sum(0))
    net.max_frequency().sum().backward()  # differentiable, for a regulariser
    assert net.filter_weight.grad is not None and net.gamma.grad is not None
    gabor = GaborNet(2, 1, hidden=5, layers=2)
    expected = (gabor.filter_weight.abs() + gabor.gamma.sqrt()[..., None]) / (2 * math.pi)
    torch.testing.assert_close(gabor.filter_frequencies(), expected)
    fourier = FourierNet(1, 1, hidden=5, layers=2)
    torch.testing.assert_close(
        fourier.max_frequency(), fourier.filter_weight.abs().amax(1).sum(0) / (2 * math.pi)
    )


@pytest.mark.parametrize("cls", [MAGNet, FourierNet])
def test_max_frequency_bounds_the_output_spectrum(cls):
    """Little spectral energy of the generated kernel lies above the reported bound."""
    torch.manual_seed(1)
    net = cls(1, 1, hidden=6, layers=2, omega_0=2.0).double()
    n, half_width = 2**15, 64.0
    x = torch.linspace(-half_width, half_width, n, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        y = net(x).squeeze(-1)
        if cls is FourierNet:  # no envelope: window the (periodic-free) signal to limit leakage
            y = (y - y.mean()) * torch.hann_window(n, periodic=False, dtype=torch.float64)
        power = torch.fft.rfft(y).abs().square()
        freqs = torch.fft.rfftfreq(n, d=2 * half_width / (n - 1))
        bound = net.max_frequency(n_std=3.0).item()
    assert bound < freqs[-1] / 2  # the grid resolves well beyond the bound
    # 5% margin: FourierNet attains its bound exactly and the window smears each line.
    above = power[freqs > 1.05 * bound].sum() / power.sum()
    assert above < 1e-4
    # and the bound is not vacuous: a quarter of it would cut real energy
    assert power[freqs > bound / 4].sum() / power.sum() > 1e-3


# ---------------------------------------------------------------------------------- RFF
def test_rff_frequencies_are_a_persistent_fixed_buffer():
    net = RFFNet(2, 1, hidden=4000, omega_0=3.0)
    assert "frequencies" in net.state_dict()
    assert all(p is not net.frequencies for p in net.parameters())
    assert net.frequencies.shape == (2, 2000)
    std = net.frequencies.std().item()
    assert abs(std / (2 * math.pi * 3.0) - 1) < 0.05
    x = positions(3, 2)
    proj = x @ net.frequencies
    torch.testing.assert_close(net.features(x), torch.cat([proj.cos(), proj.sin()], -1))


# ---------------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "swish", "gelu", "sine"])
@pytest.mark.parametrize("in_dims", [1, 2])
def test_mlp_uniform_knots_place_one_knot_per_unit(activation, in_dims):
    net = MLP(in_dims, 1, hidden=16, layers=4, activation=activation, init="uniform_knots")
    points = net._knot_points()
    if in_dims == 1:
        torch.testing.assert_close(points.squeeze(-1), torch.linspace(-1, 1, 16))
        first = net.linears[0]
        knots = -first.bias / first.weight.squeeze(-1)
        torch.testing.assert_close(knots, torch.linspace(-1, 1, 16), rtol=1e-5, atol=1e-5)
    assert points.min() >= -1 and points.max() <= 1
    h = points
    with torch.no_grad():
        for index, linear in enumerate(net.linears):
            pre = linear(h)  # unit i's pre-activation at its own point p_i is zero
            torch.testing.assert_close(pre.diagonal(), torch.zeros(16), atol=1e-5, rtol=0)
            assert pre.abs().max() > 1e-2  # ... but not everywhere
            h = net._hidden_layer(index, h)


def test_mlp_activations_are_the_named_functions():
    x = positions(9, 1)
    for activation, fn in [
        ("relu", torch.relu),
        ("leaky_relu", lambda z: torch.where(z > 0, z, 0.01 * z)),
        ("swish", lambda z: z * torch.sigmoid(z)),
        ("gelu", lambda z: 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))),
        ("sine", torch.sin),
    ]:
        net = MLP(1, 1, hidden=4, layers=2, activation=activation, omega_0=2.0)
        lin = net.linears[0]
        expected = net.output_linear(fn(2.0 * lin(x)))
        torch.testing.assert_close(net(x), expected, msg=activation)


# ------------------------------------------------------------------- the fitting claim
def _fit(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 300) -> float:
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        return nn.functional.mse_loss(net(x), y).item()


def test_siren_fits_a_step_that_a_relu_mlp_of_the_same_size_cannot():
    """CKConv Sec. 4 / Fig. 4: a SIREN fits a step near-perfectly, a ReLU MLP does not."""
    x = torch.linspace(-1, 1, 1000).unsqueeze(-1)
    y = (x > 0).float()
    torch.manual_seed(0)
    siren = SIREN(1, 1, hidden=32, layers=3, omega_0=30.0)
    torch.manual_seed(0)
    relu = MLP(1, 1, hidden=32, layers=3, activation="relu")
    siren_mse, relu_mse = _fit(siren, x, y), _fit(relu, x, y)
    assert siren_mse < 1e-3, siren_mse
    assert relu_mse > 3e-3, relu_mse
