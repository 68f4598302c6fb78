"""FFT sizes, plans and the precomputed-spectrum entry point of the blocked engine."""

from __future__ import annotations

import math

import pytest
import torch

from ckconv.functional import (
    KernelSpectrum,
    conv,
    fft_size,
    good_fft_size,
    kernel_spectrum,
    spectrum_conv,
)
from ckconv.functional.fft_engine import make_plan, saved_bytes

torch.set_num_threads(1)


def _is_even_5_smooth(n: int) -> bool:
    if n % 2:
        return False
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def test_fft_size_is_the_smallest_even_5_smooth_size():
    for n in range(1, 2000):
        m = fft_size(n)
        assert m >= n and _is_even_5_smooth(m)
        assert not any(_is_even_5_smooth(k) for k in range(n, m)), n  # brute force: smallest


def test_good_fft_size_is_even_5_smooth_and_prefers_fast_sizes():
    for n in [*list(range(1, 600)), 16001, 24001, 32001, 99991]:
        m = good_fft_size(n)
        assert n <= m <= 2 * max(n, 2) and _is_even_5_smooth(m)
    # n / 2 odd (slow real FFTs) is avoided when a size divisible by 4 is close.
    assert good_fft_size(31250) % 4 == 0
    assert good_fft_size(32001) == 32768  # not 32400 = 2^4 3^4 5^2
    assert good_fft_size(96) == 96


def test_bad_fft_size_arguments():
    for f in (fft_size, good_fft_size):
        with pytest.raises(ValueError, match="positive"):
            f(0)
        with pytest.raises(TypeError, match="int"):
            f(3.0)


def test_plan_sizes_are_linear_and_crop_unreachable_taps():
    # centred global kernel: n >= L + L // 2 (not 2L - 1) is enough with circular placement
    p = make_plan((1000,), (1000,))
    assert p.n[0] >= 1000 + 500 and p.n[0] < 2 * 1000 - 1
    # causal global kernel needs the full linear size 2L - 1
    p = make_plan((1000,), (1000,), causal=True)
    assert p.n[0] >= 1999
    # a kernel much longer than the input keeps only the 2L - 1 taps around the anchor
    p = make_plan((10,), (501,))
    assert p.taps == ((250 - 9, 250 + 9),) and p.kept == (19,)
    p = make_plan((10,), (501,), causal=True)
    assert p.taps == ((491, 500),)


@pytest.mark.parametrize(
    ("shape_x", "shape_w", "groups", "causal"),
    [
        ((3, 4, 37), (4, 1, 37), 4, True),
        ((3, 4, 36), (8, 1, 51), 4, False),
        ((2, 4, 21), (6, 2, 9), 2, False),
        ((2, 3, 9, 8), (3, 1, 9, 5), 3, False),
        ((2, 2, 4, 5, 6), (3, 2, 4, 5, 6), 1, False),
    ],
)
def test_spectrum_conv_equals_conv(shape_x, shape_w, groups, causal):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape_x, generator=g, dtype=torch.float64)
    w = torch.randn(*shape_w, generator=g, dtype=torch.float64)
    b = torch.randn(shape_w[0], generator=g, dtype=torch.float64)
    ks = kernel_spectrum(w, shape_x[2:], groups=groups, causal=causal)
    assert isinstance(ks, KernelSpectrum) and ks.spatial_size == tuple(shape_x[2:])
    assert ks.nbytes == ks.spectrum.numel() * 16
    ref = conv(x, w, b, groups=groups, causal=causal, method="direct")
    y = spectrum_conv(x, ks, b)
    assert float((y - ref).abs().max() / ref.abs().max()) < 1e-12
    # any batch size, and gradients flow to the input and bias (not to the kernel)
    x2 = torch.randn(5, *shape_x[1:], generator=g, dtype=torch.float64, requires_grad=True)
    b2 = b.clone().requires_grad_(True)
    gy = torch.randn(5, shape_w[0], *shape_x[2:], generator=g, dtype=torch.float64)
    gx, gb = torch.autograd.grad(spectrum_conv(x2, ks, b2), (x2, b2), gy)
    x3 = x2.detach().clone().requires_grad_(True)
    b3 = b.clone().requires_grad_(True)
    rx, rb = torch.autograd.grad(
        conv(x3, w, b3, groups=groups, causal=causal, method="direct"), (x3, b3), gy
    )
    assert float((gx - rx).abs().max() / rx.abs().max()) < 1e-12
    assert float((gb - rb).abs().max() / rb.abs().max()) < 1e-12


def test_spectrum_is_a_constant_snapshot():
    w = torch.randn(2, 1, 20, requires_grad=True)
    ks = kernel_spectrum(w, (20,), groups=2)
    assert not ks.spectrum.requires_grad
    x = torch.randn(1, 2, 20)
    before = spectrum_conv(x, ks)
    with torch.no_grad():
        w.add_(1.0)  # a parameter update: the layer must rebuild the spectrum
    assert torch.equal(spectrum_conv(x, ks), before)
    rebuilt = spectrum_conv(x, kernel_spectrum(w, (20,), groups=2))
    assert not torch.allclose(rebuilt, before)
    assert torch.allclose(rebuilt, conv(x, w.detach(), groups=2), atol=1e-5)


def test_spectrum_conv_errors():
    w = torch.randn(3, 1, 9)
    ks = kernel_spectrum(w, (30,), groups=3)
    with pytest.raises(ValueError, match="input must have shape"):
        spectrum_conv(torch.randn(2, 3, 31), ks)
    with pytest.raises(ValueError, match="input must have shape"):
        spectrum_conv(torch.randn(2, 4, 30), ks)
    with pytest.raises(TypeError, match="dtype"):
        spectrum_conv(torch.randn(2, 3, 30, dtype=torch.float64), ks)
    with pytest.raises(ValueError, match="bias must have shape"):
        spectrum_conv(torch.randn(2, 3, 30), ks, torch.randn(4))
    with pytest.raises(TypeError, match="spectrum must be a KernelSpectrum"):
        spectrum_conv(torch.randn(2, 3, 30), w)
    with pytest.raises(ValueError, match="spatial_size"):
        kernel_spectrum(w, (30, 30), groups=3)
    with pytest.raises(ValueError, match="causal"):
        kernel_spectrum(torch.randn(3, 1, 3, 3), (8, 8), groups=3, causal=True)
    with pytest.raises(ValueError, match="groups"):
        kernel_spectrum(w, (30,), groups=2)


def test_saved_bytes_counts_the_spectra():
    p = make_plan((100,), (100,), causal=True, groups=4, in_channels=4, out_channels=4)
    freq = p.n[0] // 2 + 1
    assert math.prod(p.freq) == freq
    assert saved_bytes(p, 3, torch.float32) == 3 * 4 * freq * 8  # depthwise: input spectrum
    assert saved_bytes(p, 3, torch.float64, need_weight=False) == 0
    p = make_plan((100,), (100,), groups=2, in_channels=4, out_channels=6)  # dense groups
    freq = p.n[0] // 2 + 1
    assert saved_bytes(p, 3, torch.float32) == (3 * 4 + 6 * 2) * freq * 8
    assert saved_bytes(p, 3, torch.float32, need_weight=False) == 6 * 2 * freq * 8
