"""Second derivatives through every convolution path (gradient penalties, physics losses).

Oracles: ``torch.autograd.gradgradcheck`` (finite differences of the gradient, float64), and
the direct path (``F.convNd``, whose double backward is PyTorch's own) for the same call.
"""

from __future__ import annotations

import pytest
import torch

from ckconv.functional import conv, fft_conv, kernel_spectrum, spectrum_conv

torch.set_num_threads(1)

# (x shape, w shape, groups, causal): 1D causal and centred depthwise, depthwise with a channel
# multiplier, dense channel mixing, grouped dense, 2D depthwise and dense, 3D.
CASES = [
    ((2, 3, 9), (3, 1, 9), 3, True),
    ((2, 3, 8), (3, 1, 11), 3, False),
    ((1, 2, 7), (4, 1, 5), 2, False),
    ((2, 2, 8), (3, 2, 6), 1, True),
    ((2, 4, 7), (4, 2, 7), 2, False),
    ((1, 2, 5, 4), (2, 1, 5, 3), 2, False),
    ((2, 2, 4, 3), (3, 2, 3, 3), 1, False),
    ((1, 2, 3, 2, 3), (1, 2, 2, 2, 2), 1, False),
]


def _ids(case):
    xs, ws, _, causal = case
    kind = "dw" if ws[1] == 1 else "dense"
    return f"{len(xs) - 2}d-{kind}-{'causal' if causal else 'centred'}-{'x'.join(map(str, xs))}"


def _tensors(case, seed):
    xs, ws, groups, causal = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(ws, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(ws[0], generator=g, dtype=torch.float64, requires_grad=True)
    return x, w, b, groups, causal


# every case on each path with one backward mode, the other modes on two cases (suite time)
GRADGRAD = [(c, "recompute", "blocked") for c in CASES]
GRADGRAD += [(c, "auto", "batched") for c in CASES]
GRADGRAD += [
    (c, m, p)
    for c in CASES[2:4]
    for m, p in (("save_spectrum", "blocked"), ("recompute", "batched"))
]


@pytest.mark.parametrize(
    ("case", "mode", "path"), GRADGRAD, ids=lambda v: v if isinstance(v, str) else _ids(v)
)
def test_gradgradcheck_fft_paths(case, mode, path):
    x, w, b, groups, causal = _tensors(case, 0)

    def fn(xx, ww, bb):
        return fft_conv(xx, ww, bb, groups=groups, causal=causal, backward_mode=mode, path=path)

    assert torch.autograd.gradgradcheck(fn, (x, w, b), eps=1e-6, atol=1e-7)


def _second_derivatives(y_fn, x, w, b, seed):
    """Gradient of ``<grad_x, v_x> + <grad_w, v_w>`` (a gradient penalty's shape) with respect
    to the input, the weight, the bias and the incoming gradient."""
    g = torch.Generator().manual_seed(seed)
    y = y_fn(x, w, b)
    gy = torch.randn(y.shape, generator=g, dtype=y.dtype, requires_grad=True)
    gx, gw = torch.autograd.grad(y, (x, w), gy, create_graph=True)
    vx = torch.randn(gx.shape, generator=g, dtype=gx.dtype)
    vw = torch.randn(gw.shape, generator=g, dtype=gw.dtype)
    penalty = (gx * vx).sum() + (gw * vw).sum() + (y**2).sum()
    return torch.autograd.grad(penalty, (x, w, b, gy), allow_unused=True)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_second_derivatives_equal_the_direct_path(case):
    x, w, b, groups, causal = _tensors(case, 1)
    ref = _second_derivatives(
        lambda *t: conv(*t, groups=groups, causal=causal, method="direct"), x, w, b, 2
    )
    for method, path in (("fft", "blocked"), ("fft", "batched"), ("auto", None)):

        def run(*t, method=method, path=path):
            if path is None:
                return conv(*t, groups=groups, causal=causal, method=method)
            return fft_conv(*t, groups=groups, causal=causal, path=path)

        got = _second_derivatives(run, x, w, b, 2)
        for name, a, r in zip(("input", "weight", "bias", "grad_out"), got, ref):
            assert (a is None) == (r is None), name
            if r is not None:
                err = float((a - r).abs().max() / r.abs().max().clamp_min(1e-300))
                assert err < 1e-10, (method, path, name, err)


def test_gradient_penalty_through_a_long_kernel_with_auto():
    # The case: method="auto" picks the FFT for long kernels; the input-gradient norm
    # (a WGAN-GP style penalty) must be differentiable with respect to the kernel.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 200, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 200, generator=g, dtype=torch.float64, requires_grad=True)

    def penalty(method):
        y = conv(x, w, groups=4, causal=True, method=method)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.norm(), w)[0]

    ref = penalty("direct")
    got = penalty("auto")
    assert float((got - ref).abs().max() / ref.abs().max()) < 1e-10


def test_spectrum_conv_is_twice_differentiable_in_the_input():
    w = torch.randn(3, 1, 12, dtype=torch.float64)
    ks = kernel_spectrum(w, (10,), groups=3, causal=True)
    x = torch.randn(2, 3, 10, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda xx, bb: spectrum_conv(xx, ks, bb) ** 2, (x, b))
