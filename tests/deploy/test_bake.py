"""bake(): baked layers and models give the continuous model's outputs with no kernel network."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from ckconv.deploy import BakedConv, bake, continuous_layers
from ckconv.models import CCNN, CKCNN
from ckconv.nn import CKConv, FlexConv

F64 = torch.float64

LAYER_CASES = [
    (dims, cls, separable, causal)
    for dims, cls, separable, causal in itertools.product(
        (1, 2, 3), (CKConv, FlexConv), (False, True), (False, True)
    )
    if not (causal and dims > 1)
]
SIZES = {1: (23,), 2: (9, 6), 3: (5, 4, 6)}  # odd/even, non-square


def _layer(cls, dims, separable, causal, dtype=F64):
    kwargs = {}
    if cls is FlexConv:
        kwargs["mask_init_sigma"] = 0.4  # a crop that keeps some but not all taps
    return cls(
        3,
        4,
        dims,
        kernel_size="same",
        input_size=SIZES[dims],
        separable=separable,
        causal=causal,
        dtype=dtype,
        **kwargs,
    ).eval()


def _oracle(x: torch.Tensor, weight: torch.Tensor, layer) -> torch.Tensor:
    """Float64 same-size convolution by explicit padding and F.convNd (independent of both the
    FFT engine and the baked code), plus mixer and bias."""
    pads = []
    for k in reversed(weight.shape[2:]):
        left = k - 1 if layer.causal else (k - 1) // 2
        pads.extend((left, k - 1 - left))
    groups = x.shape[1] if layer.separable else 1
    convnd = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
    y = convnd(F.pad(x, pads), weight, groups=groups)
    if layer.mixer is not None:
        y = torch.einsum("oi,ni...->no...", layer.mixer, y)
    if layer.bias is not None:
        y = y + layer.bias.view(1, -1, *([1] * (x.dim() - 2)))
    return y


@pytest.mark.parametrize(("dims", "cls", "separable", "causal"), LAYER_CASES)
def test_baked_layer_matches_layer_and_oracle(dims, cls, separable, causal):
    torch.manual_seed(dims)
    layer = _layer(cls, dims, separable, causal)
    with torch.no_grad():
        layer.bias.normal_()
    size = SIZES[dims]
    x = torch.randn(2, 3, *size, dtype=F64)
    with torch.no_grad():
        want = layer(x)
        oracle = _oracle(x, layer.kernel(None, size), layer)
    scale = want.abs().max()
    torch.testing.assert_close(oracle, want, rtol=0, atol=1e-11 * scale)
    for method in ("direct", "fft"):
        baked = BakedConv.from_conv(layer, size, method=method)
        assert baked.method == method
        with torch.no_grad():
            got = baked(x)
        torch.testing.assert_close(got, oracle, rtol=0, atol=1e-11 * scale)
    if cls is FlexConv and causal:  # the mask crop is baked in: fewer taps than the grid
        assert baked.kernel_size[0] < layer.kernel_size[0]


def test_baked_layer_float32_and_auto_method():
    torch.manual_seed(0)
    layer = CKConv(4, 4, 1, kernel_size="same", input_size=300, causal=True).eval()
    baked = BakedConv.from_conv(layer, 300)
    assert baked.method == "fft"  # 300 taps: beyond the direct crossover
    small = FlexConv(4, 4, 1, kernel_size="same", input_size=60, separable=True, causal=True)
    small_baked = BakedConv.from_conv(small.eval(), 60)
    assert small_baked.kernel_size[0] < 16  # the 0.075 crop leaves a few taps
    assert small_baked.method == "direct"
    x = torch.randn(3, 4, 300)
    with torch.no_grad():
        torch.testing.assert_close(baked(x), layer(x), rtol=1e-4, atol=1e-5)


MODEL_CASES = {
    "ccnn1d": lambda: (CCNN(2, 5, 1, input_size=40, hidden_channels=8, num_blocks=2), 40),
    "ccnn1d_causal_tokens": lambda: (
        CCNN(
            1,
            5,
            input_size=40,
            hidden_channels=8,
            num_blocks=2,
            causal=True,
            vocab_size=9,
            head="none",
        ),
        40,
    ),
    "ccnn2d": lambda: (
        CCNN(3, 5, 2, input_size=(12, 10), hidden_channels=8, num_blocks=2),
        (12, 10),
    ),
    "ccnn3d": lambda: (CCNN(2, 5, 3, input_size=6, hidden_channels=8, num_blocks=1), (6, 6, 6)),
    "ckcnn": lambda: (CKCNN(2, 5, input_size=50, hidden_channels=8), 50),
}


def _input(model, size, batch=3):
    if model.stem.vocab_size is not None:
        return torch.randint(0, model.stem.vocab_size, (batch, size))
    c = model.stem.in_channels
    return torch.randn(batch, c, *((size,) if isinstance(size, int) else size))


def _randomise_bn(model):
    # trained-looking running statistics, so eval-mode BatchNorm is not the identity
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_baked_model_matches_and_has_no_kernel_nets(case):
    torch.manual_seed(1)
    model, size = MODEL_CASES[case]()
    _randomise_bn(model)
    model.train()  # bake must give eval-mode semantics whatever the mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    baked = bake(model, size)
    x = _input(model, size)
    model.eval()
    with torch.no_grad():
        want = model(x)
        got = baked(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # no kernel network or mask parameters left, everything else kept
    assert not continuous_layers(baked)
    names = [n for n, _ in baked.named_parameters()]
    assert not any("kernel_net" in n or ".kernel_mask." in n for n in names)
    kernel_params = sum(
        p.numel() for n, p in model.named_parameters() if "kernel_net" in n or ".kernel_mask." in n
    )
    assert kernel_params > 0
    assert sum(p.numel() for p in baked.parameters()) == (
        sum(p.numel() for p in model.parameters()) - kernel_params
    )
    assert not baked.training
    # the original is untouched
    assert len(continuous_layers(model)) > 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_bake_other_rate_and_blur():
    torch.manual_seed(2)
    model = CCNN(
        1, 3, 1, input_size=32, hidden_channels=6, num_blocks=2, mask_init_sigma=0.5
    ).eval()
    x_half = torch.randn(2, 1, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            bake(model, 16, rate=0.5)(x_half), model(x_half, rate=0.5), rtol=1e-4, atol=1e-5
        )
        x_double = torch.randn(2, 1, 64)
        baked = bake(model, 64, rate=2, blur=True)
        torch.testing.assert_close(
            baked(x_double), model(x_double, rate=2, blur=True), rtol=1e-4, atol=1e-5
        )
        # restating the baked keywords is allowed, changing them is not
        baked(x_double, rate="2/1", blur=True)
        with pytest.raises(ValueError, match="baked at rate"):
            baked(x_double, rate=1)


def test_baked_errors_name_the_problem():
    model = CCNN(1, 3, 1, input_size=32, hidden_channels=6, num_blocks=1).eval()
    baked = bake(model, 32)
    with pytest.raises(ValueError, match=r"input_size=\(32,\).*\(2, 6, 30\)"):
        baked(torch.randn(2, 1, 30))
    with pytest.raises(ValueError, match="blur=True"):
        baked(torch.randn(2, 1, 32), blur=True)
    with pytest.raises(ValueError, match="times="):
        baked(torch.randn(2, 1, 32), times=torch.arange(32.0).expand(2, 32))
    with pytest.raises(TypeError, match="dtype"):
        baked.blocks[0].conv(torch.randn(2, 6, 32, dtype=F64))
    with pytest.raises(ValueError, match="no continuous convolution"):
        bake(torch.nn.Linear(2, 2), 4)
    with pytest.raises(ValueError, match="method"):
        bake(model, 32, method="fast")
    with pytest.raises(ValueError, match="reach no output"):
        BakedConv(2, 2, (9,), input_size=4, causal=True)


def test_single_layer_bake_and_state_dict_round_trip():
    torch.manual_seed(3)
    layer = CKConv(3, 3, 2, kernel_size=(7, 5), separable=True).eval()
    baked = bake(layer, (10, 8), method="fft")
    assert isinstance(baked, BakedConv)
    fresh = BakedConv(3, 3, (7, 5), input_size=(10, 8), separable=True, method="fft")
    fresh.load_state_dict(baked.state_dict())
    x = torch.randn(2, 3, 10, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), layer(x), rtol=1e-4, atol=1e-5)
        # .double() converts the stored spectrum as well: the float64 FFT path then agrees with
        # the float64 direct path on the same kernel to float64 precision
        direct = BakedConv(3, 3, (7, 5), input_size=(10, 8), separable=True, method="direct")
        direct.load_state_dict(baked.state_dict(), strict=False)
        got, want = fresh.double()(x.double()), direct.double()(x.double())
        assert got.dtype == F64
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12 * want.abs().max())
    assert "kernel_size=(7, 5)" in repr(baked) and "method='fft'" in repr(baked)


def test_torch_compile_baked_fullgraph_and_unbaked():
    torch.manual_seed(4)
    model = CKCNN(2, 3, input_size=40, hidden_channels=6).eval()  # dense FFT path
    baked = bake(model, 40)
    x = torch.randn(2, 2, 40)
    with torch.no_grad():
        want = model(x)
        compiled = torch.compile(baked, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), want, rtol=1e-4, atol=1e-5)
        unbaked = torch.compile(model, backend="eager")
        torch.testing.assert_close(unbaked(x), want, rtol=1e-5, atol=1e-6)


def test_baked_and_streaming_fft_sizes_are_the_engine_sizes():
    """Baked and streaming layers take their FFT lengths from the engine's good_fft_size
    (bake used to pick 32400 at L = 32001, a length the engine measures slower than 32768)."""
    from ckconv.deploy import StreamingConv
    from ckconv.functional.fft_engine import good_fft_size, make_plan

    baked = BakedConv(1, 1, (1,), input_size=(32001,), method="fft")
    assert baked.fft_shape == make_plan((32001,), (1,)).n == (good_fft_size(32001),) == (32768,)
    causal = BakedConv(2, 2, (40,), input_size=(32001 - 39,), causal=True, method="fft")
    assert causal.fft_shape == (32768,)
    sc = StreamingConv(2, 2, 300, method="fft", block_size=500)
    assert sc.fft_length == good_fft_size(299 + 500)


@pytest.mark.parametrize("separable", [False, True])
def test_baked_fft_at_engine_size_matches_float64_oracle(separable):
    """A length whose old size (fft_size) and engine size (good_fft_size) differ: 24001 ->
    24576 (old: 24300); the baked FFT output still matches the float64 oracle."""
    from ckconv.functional.fft_engine import fft_size, good_fft_size

    length = 24001 - 20  # + 20 taps of left padding (41-tap centred kernel)
    assert good_fft_size(24001) != fft_size(24001)
    torch.manual_seed(0)
    layer = CKConv(2, 3, kernel_size=41, separable=separable, dtype=F64).eval()
    baked = BakedConv.from_conv(layer, (length,), method="fft")
    assert baked.fft_shape == (good_fft_size(24001),)
    x = torch.randn(1, 2, length, dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(baked(x), _oracle(x, baked.weight, layer), rtol=1e-9, atol=1e-9)
