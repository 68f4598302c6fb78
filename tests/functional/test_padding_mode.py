"""``padding_mode`` of ``ckconv.functional.conv``: circular and mixed per-axis boundaries.

Oracles (float64, no library code):

* torch's own circular padding: ``F.pad(x, pads, mode="circular")`` on the circular axes and
  zero padding on the others (each axis padded with its own mode), then ``F.conv{1,2,3}d``
  -- what ``torch.nn.Conv*d(padding="same", padding_mode="circular")`` computes;
* for kernels longer than a circular axis (beyond what ``F.pad`` accepts): the input tiled
  periodically along its circular axes, a zero-padded ``padding="same"`` convolution, and the
  middle period cut out.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from ckconv.functional import conv, direct_conv, fft_conv, kernel_spectrum, spectrum_conv
from ckconv.functional.conv import select_method
from ckconv.functional.fft_engine import make_plan

torch.set_num_threads(1)

CONVS = (F.conv1d, F.conv2d, F.conv3d)


def _same_pads(kernel, modes, mode):
    """``F.pad`` list (last axis first) of the ``padding="same"`` pads on axes of ``mode``."""
    pads: list[int] = []
    for k, m in zip(reversed(kernel), reversed(modes)):
        left = (k - 1) // 2
        pads += [left, k - 1 - left] if m == mode else [0, 0]
    return pads


def pad_oracle(x, w, modes, groups=1):
    """Each axis padded with its own mode (torch's circular padding), then F.convNd."""
    x, w = x.double(), w.double()
    ks = w.shape[2:]
    y = F.pad(x, _same_pads(ks, modes, "zeros"))
    if "circular" in modes:
        y = F.pad(y, _same_pads(ks, modes, "circular"), mode="circular")
    return CONVS[len(ks) - 1](y, w, groups=groups)


def tile_oracle(x, w, modes, groups=1):
    """Periodic extension of the circular axes, zero-padded same convolution, middle period."""
    x, w = x.double(), w.double()
    ks = w.shape[2:]
    reps = [1, 1]
    for k, L, m in zip(ks, x.shape[2:], modes):
        reps.append(2 * (k // L + 1) + 1 if m == "circular" else 1)
    xt = x.repeat(*reps)
    y = CONVS[len(ks) - 1](F.pad(xt, _all_same(ks)), w, groups=groups)
    for d, (L, r) in enumerate(zip(x.shape[2:], reps[2:])):
        y = y.narrow(2 + d, (r // 2) * L, L)
    return y


def _all_same(ks):
    pads: list[int] = []
    for k in reversed(ks):
        left = (k - 1) // 2
        pads += [left, k - 1 - left]
    return pads


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


# (spatial, kernel): odd/even lengths, kernels shorter than, as long as, and longer than
# the axis (the last two only where F.pad's circular mode still accepts the pads: <= L)
SHORT = [
    ((11,), (5,)),
    ((10,), (4,)),
    ((12,), (12,)),
    ((9,), (9,)),
    ((7, 8), (3, 4)),
    ((7, 8), (7, 8)),
    ((6, 9), (5, 2)),
    ((4, 5, 6), (3, 2, 3)),
    ((4, 5, 6), (4, 5, 6)),
]
# (spatial, kernel) with kernels longer than a period: folded (tiling oracle)
LONG = [
    ((7,), (20,)),
    ((8,), (31,)),
    ((5, 6), (13, 4)),
    ((3, 4, 5), (7, 9, 3)),
]
# (groups, C_in, C_out): dense and depthwise with a channel multiplier
CHANNELS = [(1, 3, 2), (3, 3, 6)]


def _modes(data_dim):
    return [m for m in itertools.product(("zeros", "circular"), repeat=data_dim) if "circular" in m]


def _cases(shapes):
    for spatial, kernel in shapes:
        for modes in _modes(len(spatial)):
            yield spatial, kernel, modes


def _id(case):
    spatial, kernel, modes = case
    return f"L{'x'.join(map(str, spatial))}-K{'x'.join(map(str, kernel))}-" + "".join(
        m[0] for m in modes
    )


@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize("channels", CHANNELS, ids=["dense", "depthwise"])
@pytest.mark.parametrize("case", list(_cases(SHORT)), ids=_id)
def test_circular_and_mixed_modes_match_torch_circular_padding(case, channels, method):
    spatial, kernel, modes = case
    groups, c_in, c_out = channels
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, c_in, *spatial, generator=g)
    w = torch.randn(c_out, c_in // groups, *kernel, generator=g)
    b = torch.randn(c_out, generator=g)
    mode = modes[0] if len(set(modes)) == 1 else list(modes)
    y = conv(x, w, b, groups=groups, method=method, padding_mode=mode)
    ref = pad_oracle(x, w, modes, groups) + b.double().view(1, -1, *([1] * len(spatial)))
    assert y.shape == (x.shape[0], c_out, *x.shape[2:])
    assert rel_err(y, ref) < 1e-5


@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize("case", list(_cases(LONG)), ids=_id)
def test_kernels_longer_than_a_period_fold(case, method):
    spatial, kernel, modes = case
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, *spatial, generator=g, dtype=torch.float64)
    w = torch.randn(3, 2, *kernel, generator=g, dtype=torch.float64)
    y = conv(x, w, method=method, padding_mode=list(modes))
    assert rel_err(y, tile_oracle(x, w, modes)) < 1e-10


def test_tile_oracle_agrees_with_pad_oracle():
    # the two oracles are independent routes to the same definition
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 6, 7, generator=g)
    w = torch.randn(2, 2, 5, 7, generator=g)
    for modes in _modes(2):
        assert rel_err(tile_oracle(x, w, modes), pad_oracle(x, w, modes)) < 1e-12


def test_matches_torch_conv_module_with_circular_padding():
    g = torch.Generator().manual_seed(3)
    m = torch.nn.Conv2d(3, 4, (5, 6), padding="same", padding_mode="circular").double()
    x = torch.randn(2, 3, 9, 10, generator=g, dtype=torch.float64)
    for method in ("fft", "direct"):
        y = conv(x, m.weight, m.bias, method=method, padding_mode="circular")
        assert rel_err(y, m(x)) < 1e-10


@pytest.mark.parametrize("method", ["fft", "direct"])
def test_circular_shift_equivariance(method):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 9, 12, generator=g, dtype=torch.float64)
    w = torch.randn(2, 2, 9, 5, generator=g, dtype=torch.float64)
    y = conv(x, w, method=method, padding_mode=("zeros", "circular"))
    y_shift = conv(torch.roll(x, 5, dims=-1), w, method=method, padding_mode=("zeros", "circular"))
    assert torch.allclose(y_shift, torch.roll(y, 5, dims=-1), atol=1e-12)
    # the zero-padded axis is not periodic: rolling along it changes the result
    y_rows = conv(torch.roll(x, 3, dims=-2), w, method=method, padding_mode=("zeros", "circular"))
    assert not torch.allclose(y_rows, torch.roll(y, 3, dims=-2), atol=1e-3)


@pytest.mark.parametrize("fn", [fft_conv, direct_conv])
@pytest.mark.parametrize(
    "shapes",
    [((2, 2, 7), (2, 2, 10), 1), ((1, 2, 5, 6), (4, 1, 7, 3), 2)],
    ids=["1d-dense-long", "2d-depthwise"],
)
def test_gradcheck(fn, shapes):
    xs, ws, groups = shapes
    g = torch.Generator().manual_seed(5)
    x = torch.randn(*xs, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(*ws, generator=g, dtype=torch.float64, requires_grad=True)
    modes = ["circular"] + ["zeros"] * (len(xs) - 3)

    def f(a, b):
        return fn(a, b, groups=groups, padding_mode=modes)

    assert torch.autograd.gradcheck(f, (x, w))


def test_fft_axis_is_transformed_at_its_own_length():
    plan = make_plan((13, 10), (13, 10), circular=(True, False))
    assert plan.n[0] == 13  # the period, no linear padding
    assert plan.n[1] >= 10 + 5  # the zero-padded axis keeps its linear size


def test_kernel_spectrum_with_circular_axes_matches_conv():
    g = torch.Generator().manual_seed(6)
    w = torch.randn(4, 1, 11, 3, generator=g)
    x = torch.randn(2, 4, 8, 9, generator=g)
    ks = kernel_spectrum(w, (8, 9), groups=4, circular=(True, False))
    y = conv(x, w, groups=4, method="fft", padding_mode=("circular", "zeros"))
    assert torch.allclose(spectrum_conv(x, ks), y, atol=1e-5)
    assert rel_err(y, tile_oracle(x, w, ("circular", "zeros"), groups=4)) < 1e-5


def test_auto_counts_at_most_one_period_on_a_circular_axis():
    # 9 taps on a length-3 circular axis reach only 3 offsets: direct; zero-padded, the
    # kernel keeps 5 taps (reach L - 1 = 2 on each side) and 5 * 5 > 11
    shape, wshape = (1, 4, 3, 5), (4, 1, 9, 5)
    assert select_method(shape, wshape, groups=4, padding_mode=("circular", "zeros")) == "direct"
    assert select_method(shape, wshape, groups=4) == "fft"


@pytest.mark.parametrize(
    "mode, exc, words",
    [
        ("reflect", ValueError, ["padding_mode", "'reflect'", "'zeros'", "'circular'"]),
        (("zeros",), ValueError, ["padding_mode", "2"]),
        (("circular", "zero"), ValueError, ["padding_mode", "'zero'"]),
        (3, TypeError, ["padding_mode", "int"]),
    ],
)
def test_bad_padding_mode_names_the_argument(mode, exc, words):
    with pytest.raises(exc) as info:
        conv(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), padding_mode=mode)
    for word in words:
        assert word in str(info.value)


def test_causal_and_circular_is_an_error():
    with pytest.raises(ValueError, match="padding_mode='circular' with causal=True"):
        conv(torch.randn(1, 1, 5), torch.randn(1, 1, 3), causal=True, padding_mode="circular")
    with pytest.raises(ValueError, match="causal"):
        kernel_spectrum(torch.randn(1, 1, 3), (5,), causal=True, circular=(True,))


def test_direct_path_compiles_whole():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 9, 10, generator=g)
    w = torch.randn(3, 1, 13, 5, generator=g)  # longer than the circular axis: folded

    def f(a, b):
        return conv(a, b, groups=3, method="direct", padding_mode=("circular", "zeros"))

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    assert torch.allclose(compiled(x, w), f(x, w))


@pytest.mark.parametrize("path", ["blocked", "batched"])
@pytest.mark.parametrize("case", list(_cases(SHORT[::2] + LONG[:2])), ids=_id)
def test_both_engine_paths_match_the_oracle(case, path):
    spatial, kernel, modes = case
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 3, *spatial, generator=g, dtype=torch.float64)
    w = torch.randn(6, 1, *kernel, generator=g, dtype=torch.float64)
    y = fft_conv(x, w, groups=3, path=path, padding_mode=list(modes))
    assert rel_err(y, tile_oracle(x, w, modes, groups=3)) < 1e-10


def test_batched_path_second_derivatives():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 9, generator=g, dtype=torch.float64, requires_grad=True)

    def f(a, b):
        return fft_conv(a, b, path="batched", padding_mode="circular")

    assert torch.autograd.gradgradcheck(f, (x, w))


def test_plan_reports_the_period_as_fft_size():
    from ckconv.functional import plan_conv

    x, w = torch.empty(2, 4, 13, 10, device="meta"), torch.empty(4, 1, 30, 7, device="meta")
    plan = plan_conv(x, w, groups=4, method="fft", padding_mode=("circular", "zeros"))
    assert plan.fft_sizes[0] == 13 and plan.fft_sizes[1] >= 10 + 3


def test_fft_method_compiles_whole():
    g = torch.Generator().manual_seed(10)
    x = torch.randn(2, 3, 9, 10, generator=g)
    w = torch.randn(3, 1, 13, 5, generator=g)

    def f(a, b):
        return conv(a, b, groups=3, method="fft", padding_mode=("circular", "zeros"))

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    assert torch.allclose(compiled(x, w), f(x, w), atol=1e-5)
