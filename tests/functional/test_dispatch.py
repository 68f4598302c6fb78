"""Dispatch by device: ``plan_conv`` and what ``conv`` really runs.

A non-CPU device is stood for by ``meta`` tensors (shapes and dtypes, no data): the plan must
be the batched path, and running ``conv`` on them must never enter the blocked engine's loop
over row blocks (its schedule and autograd function are replaced by tripwires).
"""

from __future__ import annotations

import importlib

import pytest
import torch

from ckconv.functional import (
    CROSSOVER,
    DIRECT_MAX_TAPS,
    ConvPlan,
    conv,
    crossover_for,
    fft_engine,
    plan_conv,
    select_method,
)
from ckconv.functional.conv import DIRECT_MAX_TAPS_CUDA, DIRECT_MAX_TAPS_INFERENCE_CUDA
from ckconv.functional.fft_engine import make_plan

conv_module = importlib.import_module("ckconv.functional.conv")

torch.set_num_threads(1)


@pytest.fixture
def no_block_loop(monkeypatch):
    """Make every entry into the blocked engine fail loudly."""

    def tripwire(*args, **kwargs):
        raise AssertionError("the blocked engine's row-block loop was entered")

    monkeypatch.setattr(fft_engine, "_schedule", tripwire)
    monkeypatch.setattr(fft_engine._FFTConvFunction, "apply", tripwire)
    monkeypatch.setattr(conv_module, "block_fft_conv", tripwire)


# (x shape, w shape, groups, causal): depthwise 1D causal/centred, dense, grouped, 2D, 3D.
SHAPES = [
    ((8, 140, 16000), (140, 1, 16000), 140, True),
    ((8, 256, 4096), (256, 1, 4096), 256, False),
    ((4, 16, 1000), (32, 16, 1000), 1, False),
    ((2, 8, 300), (12, 2, 301), 4, True),
    ((8, 32, 64, 64), (32, 1, 64, 64), 32, False),
    ((2, 4, 16, 16, 16), (6, 4, 16, 16, 16), 1, False),
]


@pytest.mark.parametrize(("xs", "ws", "groups", "causal"), SHAPES)
def test_meta_device_plans_the_batched_path_and_never_enters_the_block_loop(
    no_block_loop, xs, ws, groups, causal
):
    x = torch.empty(xs, device="meta", requires_grad=True)
    w = torch.empty(ws, device="meta", requires_grad=True)
    p = plan_conv(x, w, groups=groups, causal=causal, method="fft")
    assert isinstance(p, ConvPlan)
    assert (p.method, p.path, p.device_type) == ("fft", "batched", "meta")
    assert p.row_chunks == 1 and p.chunk == (xs[0], groups)  # all rows in one transform
    expected = make_plan(
        xs[2:], ws[2:], causal=causal, groups=groups, in_channels=xs[1], out_channels=ws[0]
    )
    assert p.fft_sizes == expected.n
    y = conv(x, w, groups=groups, causal=causal, method="fft")
    assert y.device.type == "meta" and y.shape == (xs[0], ws[0], *xs[2:])
    y.sum().backward()  # the backward pass stays off the blocked engine too
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


def test_auto_on_a_non_cpu_device_never_enters_the_block_loop(no_block_loop):
    # method="auto": a long kernel goes to the FFT, and on meta that is the batched path.
    x = torch.empty(8, 140, 16000, device="meta")
    w = torch.empty(140, 1, 16000, device="meta")
    p = plan_conv(x, w, groups=140, causal=True)
    assert (p.method, p.path) == ("fft", "batched")
    assert conv(x, w, groups=140, causal=True).shape == x.shape


def test_batched_path_chunks_only_when_the_budget_demands_it():
    x = torch.empty(32, 380, 16000, device="meta")
    w = torch.empty(380, 1, 16000, device="meta")
    roomy = plan_conv(x, w, groups=380, causal=True, memory_budget=1 << 40)
    assert roomy.row_chunks == 1 and roomy.chunk == (32, 380)
    # the default budget: ~150 MB of temporaries per batch element, 1 GiB per chunk
    p = plan_conv(x, w, groups=380, causal=True)
    per_elem = fft_engine.batched_chunk_bytes(make_plan((16000,), (16000,), causal=True), 1, 380, 4)
    assert p.chunk == (fft_engine.BATCHED_CHUNK_BYTES // per_elem, 380)
    assert p.row_chunks == -(-32 // p.chunk[0]) > 1
    # one batch element over budget: chunks of channel groups
    small = plan_conv(x, w, groups=380, causal=True, memory_budget=per_elem // 4)
    assert small.chunk[0] == 1 and 1 <= small.chunk[1] < 380
    assert small.row_chunks == 32 * -(-380 // small.chunk[1])


def test_cpu_plans_the_blocked_path_and_runs_it(monkeypatch):
    x = torch.randn(4, 64, 2000)
    w = torch.randn(64, 1, 2000)
    p = plan_conv(x, w, groups=64, causal=True)
    assert (p.method, p.path, p.device_type, p.chunk) == ("fft", "blocked", "cpu", None)
    calls = []
    original = fft_engine._schedule

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(fft_engine, "_schedule", counting)
    conv(x, w, groups=64, causal=True)
    assert calls  # the block loop ran
    blocks = sum(len(c) for _, _, c in original(*calls[0]))
    assert p.row_chunks == blocks > 1


def test_small_kernels_plan_the_direct_path():
    x = torch.empty(2, 4, 100, device="meta")
    w = torch.empty(4, 1, 3, device="meta")
    p = plan_conv(x, w, groups=4)
    assert (p.method, p.path, p.fft_sizes, p.chunk) == ("direct", "direct", None, None)


def test_crossover_constants_per_device_kind():
    assert crossover_for("cpu") is CROSSOVER["cpu"] and CROSSOVER["cpu"].measured
    assert crossover_for("cuda") is CROSSOVER["cuda"] and not CROSSOVER["cuda"].measured
    assert crossover_for("meta") is CROSSOVER["cuda"]  # other kinds: the CUDA defaults
    for key in DIRECT_MAX_TAPS:
        assert CROSSOVER["cuda"].limit(*key, needs_grad=True) == DIRECT_MAX_TAPS_CUDA[key]
        assert (
            CROSSOVER["cuda"].limit(*key, needs_grad=False) == DIRECT_MAX_TAPS_INFERENCE_CUDA[key]
        )
    # A 1D depthwise kernel between the two devices' limits is direct on CUDA, FFT on the CPU.
    k = DIRECT_MAX_TAPS[(1, "depthwise")] + 2
    assert k <= DIRECT_MAX_TAPS_CUDA[(1, "depthwise")]
    shapes = ((8, 16, 4096), (16, 1, k))
    assert select_method(*shapes, groups=16, device="cpu") == "fft"
    assert select_method(*shapes, groups=16, device="cuda") == "direct"
    x = torch.empty(*shapes[0], device="meta", requires_grad=True)
    w = torch.empty(*shapes[1], device="meta", requires_grad=True)
    assert plan_conv(x, w, groups=16).method == "direct"
    xc = torch.zeros(shapes[0], requires_grad=True)
    wc = torch.zeros(shapes[1], requires_grad=True)
    assert plan_conv(xc, wc, groups=16).method == "fft"


def test_compiled_conv_takes_the_batched_path_in_one_graph():
    """Under torch.compile the batched path is traced (plain ops, no graph break), on the CPU
    too, and gives eager's numbers and gradients."""
    x = torch.randn(2, 3, 50, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 50, dtype=torch.float64, requires_grad=True)
    f = torch.compile(
        lambda a, b: conv(a, b, groups=3, causal=True), backend="eager", fullgraph=True
    )
    y = f(x, w)
    gx, gw = torch.autograd.grad(y.sum(), (x, w))
    ref = conv(x, w, groups=3, causal=True)
    rx, rw = torch.autograd.grad(ref.sum(), (x, w))
    for a, b in ((y, ref), (gx, rx), (gw, rw)):
        a, b = a.detach(), b.detach()
        assert float((a - b).abs().max() / b.abs().max()) < 1e-12
