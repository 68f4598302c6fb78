"""The papers' networks and the baselines: shapes, init scale, reload, rates, tokens."""

from __future__ import annotations

import io

import pytest
import torch

from ckconv.models import CCNN, CKCNN, RNN, TCN, ResNet, build_model
from ckconv.nn import FlexConv


def small_ccnn(data_dim, size, **kw):
    # tiny grids need a wider mask than the papers' 0.075, or the crop keeps only the centre
    # tap, where a MAGNet is exactly zero
    kw.setdefault("mask_init_sigma", 0.3)
    return CCNN(
        3, 5, data_dim, input_size=size, hidden_channels=12, num_blocks=2, kernel_hidden=8, **kw
    )


@pytest.mark.parametrize(
    "data_dim,train,others",
    [
        (1, (64,), [(64,), (40,), (100,)]),
        (2, (8, 8), [(8, 8), (5, 7), (12, 12)]),
        (3, (5, 5, 5), [(5, 5, 5), (3, 4, 6)]),
    ],
)
def test_ccnn_runs_on_any_size_without_changes(data_dim, train, others):
    torch.manual_seed(0)
    model = small_ccnn(data_dim, train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for size in others:
        x = torch.randn(2, 3, *size)
        out = model(x)
        assert out.shape == (2, 5)
        out.square().mean().backward()
    after = model.state_dict()
    assert all(
        torch.equal(before[k], after[k])
        for k in before
        if "running" not in k and "num_batches" not in k
    )


def test_ccnn_presets_have_the_papers_sizes():
    small = CCNN.preset("ccnn_4_140", 1, 10, data_dim=1, input_size=784, causal=True)
    n_small = sum(p.numel() for p in small.parameters())
    assert 150_000 < n_small < 260_000, n_small
    big = CCNN.preset("ccnn_6_380", 3, 10, data_dim=2, input_size=(32, 32))
    n_big = sum(p.numel() for p in big.parameters())
    assert 1_500_000 < n_big < 2_600_000, n_big
    assert len(big.blocks) == 6 and isinstance(big.blocks[0].conv, FlexConv)
    with pytest.raises(ValueError, match="preset"):
        CCNN.preset("ccnn_9_9", 1, 1, input_size=10)


@pytest.mark.parametrize("data_dim,size,omega_0", [(1, (1024,), 2976.49), (2, (32, 32), 1435.77)])
def test_ccnn_outputs_have_unit_scale_at_init(data_dim, size, omega_0):
    """CCNN Fig. 6: at init the network's outputs are O(1), not 1e19.

    Measured per position (head="none"): a mean-pooled head on i.i.d. noise input averages
    ~L independent regions, so pooled logits shrink like 1/sqrt(L) whatever the init; the
    per-position outputs are what the kernel re-weighting controls.
    """
    x = torch.randn(8, 4, *size)

    def outputs(init_gain, head="none"):
        torch.manual_seed(1)
        model = CCNN.preset(
            "ccnn_4_140",
            4,
            10,
            data_dim=data_dim,
            input_size=size,
            kernel_omega_0=omega_0,
            init_gain=init_gain,
            head=head,
        )
        with torch.no_grad():  # train mode: BatchNorm uses batch statistics, as in training
            return model(x)

    std = outputs(1.0).std().item()
    assert 0.2 < std < 5.0, std
    pooled = outputs(1.0, head="mean").std().item()
    assert pooled < 5.0, pooled


def test_ckcnn_and_baselines_shapes_and_backward():
    torch.manual_seed(2)
    x = torch.randn(3, 2, 50)
    for model in [
        CKCNN(2, 4, input_size=50, hidden_channels=8, kernel_hidden=8),
        TCN(2, 4, hidden_channels=8, num_levels=3, kernel_size=3),
        RNN(2, 4, kind="gru", hidden_size=8),
        RNN(2, 4, kind="lstm", hidden_size=8),
    ]:
        out = model(x)
        assert out.shape == (3, 4)
        out.sum().backward()
    img = torch.randn(3, 2, 9, 9)
    res = ResNet(2, 4, hidden_channels=8, num_blocks=2)
    assert res(img).shape == (3, 4)
    with pytest.raises(ValueError, match="sampling rate"):
        res(img, rate=0.5)
    # one rate parser for every model: the training rate in any spelling is accepted
    tcn = TCN(2, 4, hidden_channels=8, num_levels=3, kernel_size=3)
    for same in (1, 1.0, "1", "1/1", "2/2", (1, "1/1")):
        torch.testing.assert_close(tcn(x, rate=same), tcn(x))
    with pytest.raises(ValueError, match="sampling rate"):
        tcn(x, rate="1/2")


def test_per_step_heads_and_strict_causality_with_layer_norm():
    torch.manual_seed(3)
    model = CKCNN(
        1, 3, input_size=40, hidden_channels=6, kernel_hidden=8, head="none", norm="layer"
    ).double()
    x = torch.randn(2, 1, 40, dtype=torch.float64)
    y = model(x)
    assert y.shape == (2, 3, 40)
    x2 = x.clone()
    x2[..., 25:] += 5.0
    torch.testing.assert_close(model(x2)[..., :25], y[..., :25], rtol=1e-9, atol=1e-9)
    ccnn = small_ccnn(1, (40,), causal=True, head="none", norm="layer").double()
    x = torch.randn(2, 3, 40, dtype=torch.float64)
    x2 = x.clone()
    x2[..., 30:] -= 3.0
    torch.testing.assert_close(ccnn(x2)[..., :30], ccnn(x)[..., :30], rtol=1e-9, atol=1e-9)


def test_token_inputs_use_an_embedding():
    torch.manual_seed(4)
    model = CCNN(
        1, 2, 1, input_size=30, hidden_channels=8, num_blocks=1, kernel_hidden=8, vocab_size=17
    )
    tokens = torch.randint(0, 17, (4, 30))
    assert model(tokens).shape == (4, 2)
    with pytest.raises(TypeError, match="token ids"):
        model(tokens.float().unsqueeze(1))
    with pytest.raises(ValueError, match=r"\[0, 17\)"):
        model(torch.full((1, 30), 17))
    assert build_model(
        "tcn", in_channels=1, out_channels=2, vocab_size=5, hidden_channels=4, num_levels=2
    )(torch.randint(0, 5, (2, 12))).shape == (2, 2)


def test_reload_gives_identical_outputs():
    torch.manual_seed(5)
    model = small_ccnn(2, (8, 8)).eval()
    x = torch.randn(2, 3, 8, 8)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(123)
    fresh = small_ccnn(2, (8, 8)).eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(
        fresh(x[..., ::2, ::2], rate=0.5), model(x[..., ::2, ::2], rate=0.5), rtol=0, atol=0
    )


def test_build_model_registry_and_errors():
    m = build_model(
        "ccnn", preset="ccnn_4_140", in_channels=1, out_channels=3, input_size=16, hidden_channels=8
    )
    assert isinstance(m, CCNN) and m.blocks[0].conv.out_channels == 8
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer")
    with pytest.raises(ValueError, match="hidden_channels"):
        CCNN(1, 2, input_size=10, hidden_channels=0)


def test_models_accept_timestamps_and_masks():
    torch.manual_seed(6)
    ckcnn = CKCNN(2, 3, input_size=30, hidden_channels=6, kernel_hidden=8, norm="layer").double()
    x = torch.randn(2, 2, 30, dtype=torch.float64)
    times = torch.arange(30, dtype=torch.float64).expand(2, 30)
    torch.testing.assert_close(ckcnn(x, times=times), ckcnn(x), rtol=1e-9, atol=1e-9)
    # a 'last' head reads the last *observed* sample: trailing missing samples change nothing
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 20:] = False
    y = ckcnn(x, times=times, mask=mask)
    y_trunc = ckcnn(x[:1, :, :20], times=times[:1, :20])
    torch.testing.assert_close(y[:1], y_trunc, rtol=1e-9, atol=1e-9)
    ccnn = small_ccnn(1, (30,), causal=True, norm="layer").double().eval()
    x3 = torch.randn(2, 3, 30, dtype=torch.float64)
    out = ccnn(x3, times=times, mask=mask)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="times"):
        ccnn(x3, mask=mask)


@pytest.mark.parametrize(
    "in_channels, out_channels, hidden, paper, last_digit",
    [
        (1, 10, 30, 98_290, 10),  # sMNIST / pMNIST / SC_raw small: "98.29k"
        (1, 10, 100, 1_030_000, 10_000),  # sMNIST big: "1.03M"
        (1, 10, 10, 15_520, 20),  # copy memory: "15.52k" (ours 15,526: 6 more, head not given)
        (2, 1, 25, 70_590, 10),  # adding problem: "70.59k"
        (20, 10, 30, 118_240, 10),  # SC (MFCC): "118.24k"
    ],
)
def test_ckcnn_parameter_counts_match_ckconv_table_8(
    in_channels, out_channels, hidden, paper, last_digit
):
    # The paper's CKCNN feeds the input straight into the first block (no stem); its sizes
    # are rounded to the printed digit.
    model = CKCNN(in_channels, out_channels, input_size=100, hidden_channels=hidden)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - paper) <= last_digit / 2, count
    with_stem = CKCNN(in_channels, out_channels, input_size=100, hidden_channels=hidden, stem=True)
    assert sum(p.numel() for p in with_stem.parameters()) > count  # the option is a real change


def test_ckcnn_without_stem_checks_the_input_channels():
    model = CKCNN(3, 5, input_size=20, hidden_channels=4)
    assert model(torch.randn(2, 3, 20)).shape == (2, 5)
    with pytest.raises(
        ValueError, match=r"CKCNN expects input of shape \(N, 3, L\) with 3 channels"
    ):
        model(torch.randn(2, 4, 20))
