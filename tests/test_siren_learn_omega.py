"""``SIREN(learn_omega_0=True)``: one learned omega_0 per sine layer, bounded below.

Checks: the default is untouched (state-dict keys, the plain formula), the learned values
start at ``omega_0``, receive gradients, stay above ``omega_0_min`` under aggressive
optimisers, reload exactly, the first layer runs in float32 under autocast, and the models'
``kernel_learn_omega_0`` reaches the SIRENs.
"""

from __future__ import annotations

import math

import pytest
import torch

from ckconv.kernelnets import SIREN
from ckconv.models import CCNN, CKCNN
from ckconv.models.registry import build_model

torch.set_num_threads(1)


def _net(seed=0, **kw):
    torch.manual_seed(seed)
    return SIREN(1, 3, hidden=16, layers=3, omega_0=20.0, **kw)


def test_default_has_the_same_keys_and_the_plain_formula():
    net = _net()
    assert sorted(net.state_dict()) == sorted(
        [
            *(f"linears.{i}.bias" for i in range(2)),
            *(f"linears.{i}.parametrizations.weight.original{j}" for i in range(2) for j in (0, 1)),
            "output_linear.bias",
            "output_linear.parametrizations.weight.original0",
            "output_linear.parametrizations.weight.original1",
        ]
    )
    assert net.omega_0_raw is None and not net.learn_omega_0
    x = torch.rand(9, 1) * 2 - 1
    h = x
    for lin in net.linears:
        h = torch.sin(20.0 * torch.nn.functional.linear(h, lin.weight, lin.bias))
    assert torch.equal(net.hidden_features(x), h)
    assert torch.equal(net.layer_omega_0(), torch.full((2,), 20.0))


def test_learned_values_start_at_omega_0_with_the_default_initialisation():
    plain, learned = _net(), _net(learn_omega_0=True)
    assert torch.allclose(learned.layer_omega_0(), torch.full((2,), 20.0), atol=1e-5)
    assert learned.omega_0_min == 2.0  # omega_0 / 10
    assert "omega_0_raw" in learned.state_dict()
    x = torch.rand(50, 1) * 2 - 1
    # same random draws for the linears: the nets agree until the frequencies move
    assert torch.allclose(learned(x), plain(x), atol=1e-4)


def test_omega_receives_gradients():
    net = _net(learn_omega_0=True)
    x = torch.rand(64, 1) * 2 - 1
    net(x).square().mean().backward()
    g = net.omega_0_raw.grad
    assert g is not None and torch.isfinite(g).all() and (g != 0).all()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=1e6),
        lambda p: torch.optim.Adam(p, lr=50.0),
    ],
    ids=["sgd-1e6", "adam-50"],
)
def test_stays_above_the_floor_under_aggressive_steps(make_opt):
    net = _net(learn_omega_0=True, omega_0_min=3.0)
    others = [p for n, p in net.named_parameters() if n != "omega_0_raw"]
    opt = make_opt([net.omega_0_raw])
    rest = torch.optim.Adam(others, lr=1e-3)
    x = torch.rand(32, 1) * 2 - 1
    for _ in range(30):
        opt.zero_grad()
        rest.zero_grad()
        # pull the frequencies down as hard as possible, and fit something meanwhile
        loss = net.layer_omega_0().sum() * 100 + net(x).square().mean()
        loss.backward()
        opt.step()
        rest.step()
        omegas = net.layer_omega_0()
        assert torch.isfinite(omegas).all()
        assert (omegas >= 3.0).all(), omegas
    assert torch.isfinite(net(x)).all()
    assert (omegas < 3.5).all()  # it did go down to the floor


def test_reload_round_trip():
    net = _net(learn_omega_0=True)
    with torch.no_grad():
        net.omega_0_raw.add_(torch.tensor([1.5, -2.0]))
    other = _net(seed=1, learn_omega_0=True)
    x = torch.rand(20, 1) * 2 - 1
    assert not torch.equal(other(x), net(x))
    other.load_state_dict(net.state_dict())
    assert torch.equal(other(x), net(x))
    assert torch.equal(other.layer_omega_0(), net.layer_omega_0())


def test_first_layer_runs_in_float32_under_autocast():
    # layers=2: one sine layer, the first; its features must be the float32 ones
    torch.manual_seed(0)
    net = SIREN(2, 3, hidden=16, layers=2, omega_0=60.0, learn_omega_0=True)
    x = torch.rand(100, 2) * 2 - 1
    ref = net.hidden_features(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = net.hidden_features(x)
        out = net(x)
    assert got.dtype == torch.float32
    assert torch.allclose(got, ref, atol=1e-6)
    assert out.dtype == torch.bfloat16  # the layers after it follow autocast
    # a bfloat16 first layer would be far off at omega_0 = 60 (what the float32 layer avoids)
    with torch.no_grad():
        lin = net.linears[0]
        pre = torch.nn.functional.linear(
            x.bfloat16(), lin.weight.bfloat16(), lin.bias.bfloat16()
        ).float()
        naive = torch.sin(60.0 * pre)
    assert (naive - ref).abs().max() > 0.05


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"learn_omega_0": True, "omega_0_min": 20.0}, ValueError, "omega_0_min must be below"),
        ({"learn_omega_0": True, "omega_0_min": 0.0}, ValueError, "omega_0_min"),
        ({"omega_0_min": 1.0}, ValueError, "learn_omega_0=True"),
        ({"learn_omega_0": 1}, TypeError, "learn_omega_0 must be a bool"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _net(**kwargs)


def test_models_pass_kernel_learn_omega_0_to_their_sirens():
    model = CKCNN(1, 2, input_size=16, hidden_channels=4, kernel_learn_omega_0=True)
    sirens = [m for m in model.modules() if isinstance(m, SIREN)]
    assert sirens and all(s.learn_omega_0 for s in sirens)
    x = torch.randn(2, 1, 16)
    model(x).sum().backward()
    assert all(s.omega_0_raw.grad is not None for s in sirens)
    # a config's model options go through the registry
    built = build_model(
        "ccnn",
        in_channels=1,
        out_channels=2,
        data_dim=1,
        input_size=16,
        hidden_channels=4,
        num_blocks=1,
        kernel_net="siren",
        kernel_learn_omega_0=True,
    )
    assert all(s.learn_omega_0 for s in built.modules() if isinstance(s, SIREN))
    assert not any(
        s.learn_omega_0 for s in CKCNN(1, 2, input_size=16).modules() if isinstance(s, SIREN)
    )


def test_models_refuse_learned_omega_for_other_kernel_nets():
    with pytest.raises(ValueError, match=r"kernel_learn_omega_0=True .* kernel_net='siren'"):
        CCNN(1, 2, input_size=16, hidden_channels=4, num_blocks=1, kernel_learn_omega_0=True)


@pytest.mark.parametrize("model_cls", [CKCNN, CCNN])
def test_models_pass_kernel_bias_init_to_their_sirens(model_cls):
    extra = {"kernel_net": "siren", "num_blocks": 1} if model_cls is CCNN else {}
    torch.manual_seed(0)
    model = model_cls(1, 2, input_size=16, hidden_channels=4, kernel_bias_init="reference", **extra)
    sirens = [m for m in model.modules() if isinstance(m, SIREN)]
    assert sirens and all(s.bias_init == "reference" for s in sirens)
    # the sine layers' biases U(-1, 1) (a CCNN's kernel re-weighting rescales the output
    # layer); the paper's hidden-layer biases would stay within 1/sqrt(32)
    biases = torch.cat([lin.bias for s in sirens for lin in s.linears[1:]])
    assert biases.abs().max() <= 1.0 and biases.abs().max() > 1 / math.sqrt(32)
    default = model_cls(1, 2, input_size=16, hidden_channels=4, **extra)
    assert all(s.bias_init == "paper" for s in default.modules() if isinstance(s, SIREN))


@pytest.mark.parametrize("model_cls", [CKCNN, CCNN])
def test_models_pass_kernel_weight_init_to_their_sirens(model_cls):
    extra = {"kernel_net": "siren", "num_blocks": 1} if model_cls is CCNN else {}
    model = model_cls(1, 2, input_size=16, hidden_channels=4, kernel_weight_init="torch", **extra)
    sirens = [m for m in model.modules() if isinstance(m, SIREN)]
    assert sirens and all(s.weight_init == "torch" for s in sirens)
    # hidden layers U(-1/sqrt(32), 1/sqrt(32)), wider than Sitzmann's sqrt(6/32)/30
    hidden = torch.cat([lin.weight.detach().flatten() for s in sirens for lin in s.linears[1:]])
    assert 0.9 / math.sqrt(32) < hidden.abs().max() <= 1 / math.sqrt(32) + 1e-6
    default = model_cls(1, 2, input_size=16, hidden_channels=4, **extra)
    assert all(s.weight_init == "siren" for s in default.modules() if isinstance(s, SIREN))
    with pytest.raises(
        ValueError, match=r"kernel_weight_init='torch' .* kernel_net='siren'"
    ) as err:
        CCNN(1, 2, input_size=16, hidden_channels=4, num_blocks=1, kernel_weight_init="torch")
    assert err.value.argument == "kernel_weight_init"


def test_models_refuse_bias_init_for_other_kernel_nets():
    with pytest.raises(ValueError, match=r"kernel_bias_init='zero' .* kernel_net='siren'") as err:
        CCNN(1, 2, input_size=16, hidden_channels=4, num_blocks=1, kernel_bias_init="zero")
    assert err.value.argument == "kernel_bias_init"
    with pytest.raises(ValueError, match=r"kernel_bias_init: bias_init must be one of") as err:
        CKCNN(1, 2, input_size=16, kernel_bias_init="uniform")
    assert err.value.argument == "kernel_bias_init"
