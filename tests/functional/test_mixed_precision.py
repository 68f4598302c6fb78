"""Half precision and autocast inside the engine: transforms in float32, results in the
autocast/input dtype, within low-precision tolerance of float32 (oracle: the float64 direct
convolution ``F.convNd`` of the same values)."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from ckconv.functional import conv, plan_conv

conv_module = importlib.import_module("ckconv.functional.conv")

torch.set_num_threads(1)

# bfloat16 keeps 8 significant bits (relative step 2^-8 = 3.9e-3), float16 11 bits; a sum of
# many rounded terms stays within a few steps of the float32 result (max error over outputs,
# relative to the largest output).
TOL = {torch.bfloat16: 3e-2, torch.float16: 4e-3}


def _reference(x, w, b, groups, causal):
    """float64 direct convolution (causal: left padding K - 1; centred: "same")."""
    k = w.shape[-1]
    left = k - 1 if causal else (k - 1) // 2
    xp = F.pad(x.double(), (left, k - 1 - left))
    return F.conv1d(xp, w.double(), None if b is None else b.double(), groups=groups)


def _rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture(params=["blocked", "batched"])
def path(request, monkeypatch):
    """Run conv's FFT path as on the CPU (blocked) or as on any other device (batched)."""
    monkeypatch.setattr(conv_module, "engine_path", lambda device: request.param)
    return request.param


def _data(c_in=4, c_out=4, groups=4, L=300, K=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, L, generator=g)
    w = torch.randn(c_out, c_in // groups, K, generator=g) / K**0.5
    b = torch.randn(c_out, generator=g)
    return x, w, b


@pytest.mark.parametrize(("c_in", "c_out", "groups"), [(4, 4, 4), (3, 5, 1)])
@pytest.mark.parametrize("causal", [True, False])
def test_cpu_bf16_autocast_with_a_kernel_net_style_weight(path, c_in, c_out, groups, causal):
    """Under autocast a kernel net returns a bfloat16 kernel while the activations and the
    bias stay float32 (the mix that raised "weight dtype torch.bfloat16 does not match")."""
    x, w, b = _data(c_in, c_out, groups)
    ref = _reference(x, w.bfloat16().float(), b, groups, causal)
    x.requires_grad_(True)
    w16 = w.bfloat16().requires_grad_(True)
    b.requires_grad_(True)
    with torch.autocast("cpu", torch.bfloat16):
        assert plan_conv(x, w16, b, groups=groups, causal=causal, method="fft").path == path
        y = conv(x, w16, b, groups=groups, causal=causal, method="fft")
        assert plan_conv(x, w16, b, groups=groups, causal=causal).output_dtype == torch.bfloat16
    assert y.dtype == torch.bfloat16
    assert _rel(y, ref) < TOL[torch.bfloat16]
    # gradients reach every leaf in its own dtype, close to float32's
    gy = torch.randn(y.shape)
    gx, gw, gb = torch.autograd.grad(y, (x, w16, b), gy.bfloat16())
    assert (gx.dtype, gw.dtype, gb.dtype) == (torch.float32, torch.bfloat16, torch.float32)
    leaves = [t.detach().double().requires_grad_(True) for t in (x, w16, b)]
    want = torch.autograd.grad(_reference(*leaves, groups, causal), leaves, gy.bfloat16().double())
    for got, ref_g in zip((gx, gw, gb), want):
        assert _rel(got, ref_g) < TOL[torch.bfloat16]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_run_the_transforms_in_float32(path, dtype):
    # The CPU has no half-precision FFT at all: these calls only work because the engine
    # transforms in float32; the result comes back in the input's dtype.
    x, w, b = _data()
    xh, wh, bh = x.to(dtype), w.to(dtype), b.to(dtype)
    p = plan_conv(xh, wh, bh, groups=4, method="fft")
    assert (p.compute_dtype, p.output_dtype) == (torch.float32, dtype)
    y = conv(xh, wh, bh, groups=4, causal=True, method="fft")
    assert y.dtype == dtype
    assert _rel(y, _reference(xh, wh, bh, 4, True)) < TOL[dtype]


def test_direct_path_follows_autocast_too():
    x, w, b = _data(K=3)
    with torch.autocast("cpu", torch.bfloat16):
        y = conv(x, w.bfloat16(), b, groups=4)
    assert y.dtype == torch.bfloat16
    assert _rel(y, _reference(x, w.bfloat16(), b, 4, False)) < TOL[torch.bfloat16]


def test_float64_is_left_alone_by_autocast():
    x, w, b = (t.double() for t in _data())
    with torch.autocast("cpu", torch.bfloat16):
        y = conv(x, w, b, groups=4, method="fft")
        assert plan_conv(x, w, b, groups=4, method="fft").compute_dtype == torch.float64
    assert y.dtype == torch.float64
    assert _rel(y, _reference(x, w, b, 4, False)) < 1e-12


def test_mixed_dtypes_outside_autocast_are_still_an_error():
    x, w, b = _data()
    with pytest.raises(TypeError, match=r"weight dtype torch\.bfloat16 does not match"):
        conv(x, w.bfloat16(), b, groups=4)
    with torch.autocast("cpu", torch.bfloat16), pytest.raises(TypeError, match="weight dtype"):
        conv(x, w.double(), b, groups=4)  # float64 is never mixed in
