"""``ckconv.functional.conv``: FFT and direct paths against an independent float64 oracle.

The oracle is the definition written out: zero-pad each spatial dimension by the convention
(centred: ``(K - 1) // 2`` left, ``K // 2`` right; causal: ``K - 1`` left), cut every window
with ``Tensor.unfold`` and sum ``weight * window`` with ``einsum`` in float64.  It shares no
code with the library (no FFT, no ``F.convNd``, no padding helpers).
"""

from __future__ import annotations

import importlib
import itertools

import pytest
import torch
import torch.nn.functional as F

from ckconv.functional import conv, direct_conv, fft_conv, mix

torch.set_num_threads(1)  # the suite runs under pytest -n 2 on two cores


def oracle(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    groups: int = 1,
    causal: bool = False,
) -> torch.Tensor:
    """Same-size cross-correlation by explicit windowed sums in float64 (differentiable)."""
    x, w = x.double(), w.double()
    ks = w.shape[2:]
    pads: list[int] = []
    for k in reversed(ks):
        left = k - 1 if causal else (k - 1) // 2
        pads += [left, k - 1 - left]
    patches = F.pad(x, pads)
    for d, k in enumerate(ks):
        patches = patches.unfold(2 + d, k, 1)  # (N, C, *L, *K) after the loop
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    cig, cog = c // groups, w.shape[0] // groups
    patches = patches.reshape(n, groups, cig, *spatial, *ks)
    wg = w.reshape(groups, cog, cig, *ks)
    letters_l = "lmn"[: len(ks)]
    letters_k = "pqr"[: len(ks)]
    eq = f"bgi{letters_l}{letters_k},goi{letters_k}->bgo{letters_l}"
    y = torch.einsum(eq, patches, wg).reshape(n, groups * cog, *spatial)
    if b is not None:
        y = y + b.double().view(1, -1, *([1] * len(ks)))
    return y


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max())


TOL = {torch.float32: 1e-5, torch.float64: 1e-10}

# (input spatial, kernel, groups, C_in, C_out, causal): odd/even, 1D/2D/3D, causal/centred,
# dense/grouped/depthwise/multiplier, non-square, kernels longer than the input.
CASES = [
    ((31,), (31,), 3, 3, 3, False),  # odd, depthwise, global kernel
    ((32,), (32,), 3, 3, 3, False),  # even
    ((32,), (32,), 3, 3, 3, True),  # causal even
    ((31,), (31,), 3, 3, 3, True),  # causal odd
    ((20,), (57,), 2, 2, 2, False),  # kernel much longer than input
    ((20,), (57,), 2, 2, 2, True),
    ((25,), (6,), 1, 3, 4, False),  # dense, short even kernel
    ((25,), (40,), 1, 3, 5, True),  # dense, long causal
    ((18,), (9,), 2, 4, 6, False),  # grouped dense (cig = cog... 2 -> 3)
    ((17,), (12,), 2, 2, 6, False),  # depthwise with channel multiplier 3
    ((9, 12), (9, 12), 2, 2, 2, False),  # 2D non-square global
    ((10, 7), (5, 16), 2, 2, 2, False),  # 2D non-square, longer along one dim
    ((8, 9), (4, 3), 1, 3, 2, False),  # 2D dense, even/odd kernel
    ((6, 7), (13, 2), 2, 4, 4, False),  # 2D grouped dense
    ((5, 6, 7), (5, 6, 7), 2, 2, 2, False),  # 3D global non-cubic
    ((4, 5, 6), (3, 8, 2), 1, 2, 3, False),  # 3D dense, mixed
]


def _make(case, dtype, seed=0, batch=2):
    spatial, ks, groups, c_in, c_out, causal = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c_in, *spatial, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, *ks, generator=g, dtype=torch.float64)
    b = torch.randn(c_out, generator=g, dtype=torch.float64)
    return x.to(dtype), w.to(dtype), b.to(dtype), groups, causal


def _case_id(case):
    spatial, ks, groups, c_in, c_out, causal = case
    kind = "dw" if c_in == groups else ("dense" if groups == 1 else "grouped")
    return f"L{'x'.join(map(str, spatial))}-K{'x'.join(map(str, ks))}-{kind}{c_in}to{c_out}" + (
        "-causal" if causal else ""
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_forward_matches_oracle(case, dtype):
    x, w, b, groups, causal = _make(case, dtype)
    ref = oracle(x, w, b, groups, causal)
    for method in ("fft", "direct", "auto"):
        y = conv(x, w, b, groups=groups, causal=causal, method=method)
        assert y.dtype == dtype and y.shape == ref.shape
        assert rel_err(y, ref) <= TOL[dtype], method


@pytest.mark.parametrize("mode", ["save_spectrum", "recompute"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_gradients_match_oracle(case, mode):
    x, w, b, groups, causal = _make(case, torch.float64, seed=1)
    gy = torch.randn(x.shape[0], w.shape[0], *x.shape[2:], dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    ref = torch.autograd.grad(oracle(*leaves, groups, causal), leaves, gy)
    for method in ("fft", "direct"):
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        y = conv(*leaves, groups=groups, causal=causal, method=method, backward_mode=mode)
        got = torch.autograd.grad(y, leaves, gy)
        for name, a, r in zip(("input", "weight", "bias"), got, ref):
            assert rel_err(a, r) <= TOL[torch.float64], (method, name)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_blocked_and_batched_paths_match_oracle(case, batch):
    """The CPU's blocked engine and the batched path (other devices, torch.compile) give the
    oracle's numbers, forward and backward, in both backward modes; B = 1 included."""
    x, w, b, groups, causal = _make(case, torch.float64, seed=7, batch=batch)
    g = torch.Generator().manual_seed(8)
    gy = torch.randn(batch, w.shape[0], *x.shape[2:], generator=g, dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    ref_y = oracle(*leaves, groups, causal)
    ref = torch.autograd.grad(ref_y, leaves, gy)
    for path in ("blocked", "batched"):
        for mode in ("save_spectrum", "recompute"):
            leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
            y = fft_conv(*leaves, groups=groups, causal=causal, backward_mode=mode, path=path)
            assert rel_err(y, ref_y) <= 1e-10, (path, mode)
            for name, a, r in zip(
                ("input", "weight", "bias"), torch.autograd.grad(y, leaves, gy), ref
            ):
                assert rel_err(a, r) <= 1e-10, (path, mode, name)


@pytest.mark.parametrize("path", ["blocked", "batched"])
def test_float32_paths_match_oracle(path):
    for case in (((4000,), (4000,), 6, 6, 6, True), ((24, 20), (24, 20), 1, 3, 4, False)):
        x, w, b, groups, causal = _make(case, torch.float32, seed=9)
        y = fft_conv(x, w, b, groups=groups, causal=causal, path=path)
        assert y.dtype == torch.float32
        assert rel_err(y, oracle(x, w, b, groups, causal)) <= TOL[torch.float32]


def test_separable_conv_matches_oracle_on_both_paths():
    """Separable = depthwise FFT convolution + pointwise mixer; the oracle is the dense
    convolution with kernel ``mixer[o, i] * k[i]``."""
    g = torch.Generator().manual_seed(10)
    x = torch.randn(2, 3, 33, generator=g, dtype=torch.float64)
    k = torch.randn(3, 1, 40, generator=g, dtype=torch.float64)
    mixer = torch.randn(5, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(5, generator=g, dtype=torch.float64)
    dense = mixer[:, :, None] * k[:, 0][None]
    for causal in (False, True):
        ref = oracle(x, dense, bias, 1, causal)
        for path in ("blocked", "batched"):
            y = mix(fft_conv(x, k, groups=3, causal=causal, path=path), mixer, bias)
            assert rel_err(y, ref) < 1e-10, (path, causal)


@pytest.mark.parametrize("budget", [1, 3000, 20000])
def test_batched_chunks_match_oracle(budget):
    """A memory budget smaller than the temporaries splits the batched path over the batch,
    and over channel groups when one batch element is already too large."""
    from ckconv.functional.fft_engine import batched_chunking, make_plan

    for c_in, c_out, groups in ((6, 6, 6), (4, 6, 2)):
        x, w, b, groups, causal = _make(
            ((21,), (30,), groups, c_in, c_out, True), torch.float64, 11, 5
        )
        plan = make_plan(
            (21,), (30,), causal=True, groups=groups, in_channels=c_in, out_channels=c_out
        )
        chunk = batched_chunking(plan, 5, 4 if x.dtype == torch.float32 else 8, budget)
        assert chunk[0] < 5 or chunk[1] < groups  # really chunked
        gy = torch.randn(5, c_out, 21, dtype=torch.float64)
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        ref_y = oracle(*leaves, groups, causal)
        ref = torch.autograd.grad(ref_y, leaves, gy)
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        y = fft_conv(*leaves, groups=groups, causal=causal, path="batched", memory_budget=budget)
        assert rel_err(y, ref_y) < 1e-10
        for a, r in zip(torch.autograd.grad(y, leaves, gy), ref):
            assert rel_err(a, r) < 1e-10


def test_float32_gradients_match_oracle():
    x, w, b, groups, causal = _make(((300,), (300,), 4, 4, 4, True), torch.float32)
    gy = torch.randn(2, 4, 300)
    leaves64 = [t.double().requires_grad_(True) for t in (x, w, b)]
    ref = torch.autograd.grad(oracle(*leaves64, groups, causal), leaves64, gy.double())
    for mode in ("save_spectrum", "recompute"):
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        y = conv(*leaves, groups=groups, causal=causal, method="fft", backward_mode=mode)
        for a, r in zip(torch.autograd.grad(y, leaves, gy), ref):
            assert rel_err(a, r) <= 1e-5


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_centred_is_torch_same_padding_and_causal_is_left_padding():
    # A second, independent statement of the conventions (kernels no longer than the input).
    g = torch.Generator().manual_seed(3)
    for k in (1, 2, 5, 6, 29, 30):
        x = torch.randn(2, 3, 30, generator=g, dtype=torch.float64)
        w = torch.randn(3, 1, k, generator=g, dtype=torch.float64)
        same = F.conv1d(x, w, padding="same", groups=3)
        causal = F.conv1d(F.pad(x, (k - 1, 0)), w, groups=3)
        for method in ("fft", "direct"):
            assert rel_err(conv(x, w, groups=3, method=method), same) < 1e-12
            assert rel_err(conv(x, w, groups=3, causal=True, method=method), causal) < 1e-12


def test_causal_output_ignores_the_future():
    x = torch.randn(1, 2, 50, dtype=torch.float64)
    w = torch.randn(2, 1, 50, dtype=torch.float64)
    y = conv(x, w, groups=2, causal=True, method="fft")
    x2 = x.clone()
    x2[..., 30:] = torch.randn(1, 2, 20, dtype=torch.float64)
    y2 = conv(x2, w, groups=2, causal=True, method="fft")
    assert torch.equal(y[..., :30], y2[..., :30]) or rel_err(y[..., :30], y2[..., :30]) < 1e-13
    assert rel_err(y[..., 30:], y2[..., 30:]) > 1e-3


@pytest.mark.parametrize(
    "case",
    [
        ((7,), (7,), 2, 2, 2, True),
        ((8,), (11,), 2, 2, 2, False),
        ((6,), (4,), 1, 2, 3, False),
        ((5,), (5,), 2, 2, 4, True),
        ((4, 5), (3, 6), 2, 2, 2, False),
        ((3, 4), (2, 3), 1, 2, 2, False),
        ((3, 3, 4), (2, 3, 3), 2, 2, 2, False),
    ],
    ids=_case_id,
)
@pytest.mark.parametrize("mode", ["save_spectrum", "recompute"])
def test_gradcheck_fft(case, mode):
    x, w, b, groups, causal = _make(case, torch.float64, seed=2)
    for req in itertools.product((True, False), repeat=3):
        if not any(req):
            continue
        args = [t.clone().requires_grad_(r) for t, r in zip((x, w, b), req)]

        def fn(xx, ww, bb):
            return fft_conv(xx, ww, bb, groups=groups, causal=causal, backward_mode=mode)

        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-8), req


def test_auto_dispatch_matches_both_paths_and_uses_crossover():
    from ckconv.functional import DIRECT_MAX_TAPS, DIRECT_MAX_TAPS_INFERENCE, select_method

    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 400, generator=g)
    for table, grad in ((DIRECT_MAX_TAPS, True), (DIRECT_MAX_TAPS_INFERENCE, False)):
        limit = table[(1, "depthwise")]
        for k in (3, limit, limit + 1, 2 * limit + 1):
            w = torch.randn(4, 1, k, generator=g).requires_grad_(grad)
            auto = conv(x, w, groups=4)
            fft = conv(x, w, groups=4, method="fft")
            direct = conv(x, w, groups=4, method="direct")
            expected = "direct" if k <= limit else "fft"
            assert select_method(x.shape, w.shape, groups=4, needs_grad=grad) == expected
            assert torch.equal(auto, direct if expected == "direct" else fft)
            assert rel_err(fft, direct) < 1e-5
            with torch.no_grad():  # no grad needed: the inference limits apply
                expected_ng = select_method(x.shape, w.shape, groups=4, needs_grad=False)
                assert torch.equal(conv(x, w, groups=4), conv(x, w, groups=4, method=expected_ng))
    # The effective kernel decides: a huge kernel on a 5-sample input has at most 9 taps.
    assert select_method((1, 4, 5), (4, 1, 1001), groups=4) == "direct"
    # Dense and 2D have their own limits.
    side = int(DIRECT_MAX_TAPS[(2, "depthwise")] ** 0.5)
    assert select_method((1, 4, 64, 64), (4, 1, side, side), groups=4) == "direct"
    assert select_method((1, 4, 64, 64), (4, 1, side + 2, side + 2), groups=4) == "fft"
    dense = DIRECT_MAX_TAPS[(1, "dense")]
    assert select_method((1, 4, 500), (4, 4, dense)) == "direct"
    assert select_method((1, 4, 500), (4, 4, dense + 1)) == "fft"


@pytest.mark.parametrize("batch", [1, 3, 37])
def test_block_boundaries(monkeypatch, batch):
    """Tiny blocks (many blocks, ragged last block) and the batch-chunked schedule."""
    from ckconv.functional import fft_engine

    g = torch.Generator().manual_seed(5)
    for block_bytes in (1, 8 * 64, 1 << 20):
        monkeypatch.setattr(fft_engine, "_BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(fft_engine, "_MIN_BLOCK_ROWS", 1)
        monkeypatch.setattr(fft_engine, "_FREQ_BLOCK_BYTES", max(1, block_bytes // 4))
        for c_in, c_out, groups in ((5, 5, 5), (3, 6, 3), (4, 6, 2)):
            x = torch.randn(batch, c_in, 19, generator=g, dtype=torch.float64)
            w = torch.randn(c_out, c_in // groups, 23, generator=g, dtype=torch.float64)
            b = torch.randn(c_out, generator=g, dtype=torch.float64)
            gy = torch.randn(batch, c_out, 19, generator=g, dtype=torch.float64)
            leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
            ref_y = oracle(*leaves, groups)
            ref = torch.autograd.grad(ref_y, leaves, gy)
            for mode in ("save_spectrum", "recompute"):
                leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
                y = fft_conv(*leaves, groups=groups, backward_mode=mode)
                assert rel_err(y, ref_y) < 1e-10
                for a, r in zip(torch.autograd.grad(y, leaves, gy), ref):
                    assert rel_err(a, r) < 1e-10


def test_non_contiguous_and_partial_requires_grad():
    g = torch.Generator().manual_seed(6)
    base = torch.randn(3, 20, 4, generator=g, dtype=torch.float64)
    x = base.transpose(1, 2)  # (3, 4, 20), not contiguous
    w = torch.randn(4, 1, 50, generator=g, dtype=torch.float64)[..., ::2]  # (4, 1, 25)
    b = torch.randn(4, dtype=torch.float64)
    assert not x.is_contiguous() and not w.is_contiguous()
    ref = oracle(x, w, b, groups=4)
    assert rel_err(conv(x, w, b, groups=4, method="fft"), ref) < 1e-10
    gy = torch.randn(3, 4, 20, generator=g, dtype=torch.float64).transpose(0, 1)
    gy = gy.contiguous().transpose(0, 1)  # a non-contiguous incoming gradient too
    for which in range(3):
        leaves = [t.detach().clone() for t in (x, w, b)]
        leaves[which].requires_grad_(True)
        ref_leaves = [t.detach().clone() for t in (x, w, b)]
        ref_leaves[which].requires_grad_(True)
        (got,) = torch.autograd.grad(conv(*leaves, groups=4, method="fft"), leaves[which], gy)
        (want,) = torch.autograd.grad(oracle(*ref_leaves, groups=4), ref_leaves[which], gy)
        assert rel_err(got, want) < 1e-10


def test_expanded_incoming_gradient():
    # y.sum().backward() hands the backward a stride-0 gradient.
    x = torch.randn(2, 3, 40, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, 40, dtype=torch.float64, requires_grad=True)
    conv(x, w, groups=3, method="fft").sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    w2 = w.detach().clone().requires_grad_(True)
    oracle(x2, w2, groups=3).sum().backward()
    assert rel_err(x.grad, x2.grad) < 1e-10 and rel_err(w.grad, w2.grad) < 1e-10


def test_memory_budget_selects_what_is_saved():
    """auto saves the input spectrum only when it fits in the budget (seen via saved tensors)."""
    x = torch.randn(4, 8, 256, requires_grad=True)
    w = torch.randn(8, 1, 256, requires_grad=True)

    def saved_kinds(**kw):
        kinds = []

        def pack(t):
            kinds.append((t.is_complex(), t.numel()))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = fft_conv(x, w, groups=8, **kw)
        if y.requires_grad:
            y.sum().backward()
        return kinds

    big = saved_kinds(backward_mode="auto", memory_budget=1 << 30)
    small = saved_kinds(backward_mode="auto", memory_budget=0)
    assert any(c and n >= 4 * 8 * 129 for c, n in big)  # the input spectrum
    assert not any(c for c, _ in small)  # recompute: only real tensors (input, weight)
    assert saved_kinds(backward_mode="save_spectrum") == big
    assert saved_kinds(backward_mode="recompute") == small
    with torch.no_grad():
        assert saved_kinds(backward_mode="save_spectrum") == []


def test_half_precision_inputs_run_through_float32():
    x = torch.randn(2, 3, 50)
    w = torch.randn(3, 1, 50) / 7
    ref = oracle(x, w, groups=3)
    y = conv(x.bfloat16(), w.bfloat16(), groups=3, method="fft")
    assert y.dtype == torch.bfloat16
    assert rel_err(y, ref) < 3e-2


def test_torch_compile_eager_backend():
    x = torch.randn(2, 3, 40, requires_grad=True)
    w = torch.randn(3, 1, 40, requires_grad=True)
    compiled = torch.compile(lambda a, b: conv(a, b, groups=3, causal=True), backend="eager")
    y = compiled(x, w)
    y.sum().backward()
    assert rel_err(y, oracle(x.detach(), w.detach(), groups=3, causal=True)) < 1e-5
    assert x.grad is not None and w.grad is not None


def test_direct_conv_drops_unreachable_taps():
    x = torch.randn(1, 2, 4, dtype=torch.float64)
    w = torch.randn(2, 1, 301, dtype=torch.float64)
    for causal in (False, True):
        assert (
            rel_err(
                direct_conv(x, w, groups=2, causal=causal), oracle(x, w, groups=2, causal=causal)
            )
            < 1e-12
        )


# ---------------------------------------------------------------------------------------------
# Errors name the argument.
# ---------------------------------------------------------------------------------------------


def _ok():
    return torch.randn(2, 3, 10), torch.randn(3, 1, 5)


@pytest.mark.parametrize(
    ("make", "exc", "words"),
    [
        (lambda x, w: conv(x[0], w, groups=3), ValueError, "input must have shape"),
        (lambda x, w: conv(x, w[0], groups=3), ValueError, "weight must have shape"),
        (lambda x, w: conv(x, torch.randn(3, 2, 5), groups=3), ValueError, "channels"),
        (lambda x, w: conv(x, torch.randn(4, 1, 5), groups=3), ValueError, "groups=3"),
        (lambda x, w: conv(x, w.double(), groups=3), TypeError, "weight dtype"),
        (lambda x, w: conv(x.long(), w, groups=3), TypeError, "input must be a floating"),
        (lambda x, w: conv(x, w, torch.randn(3).double(), groups=3), TypeError, "bias dtype"),
        (lambda x, w: conv(x, w, torch.randn(4), groups=3), ValueError, "bias must have shape"),
        (lambda x, w: conv(x * float("nan"), w, groups=3), ValueError, "input contains NaN"),
        (lambda x, w: conv(x, w * float("inf"), groups=3), ValueError, "weight"),
        (lambda x, w: conv(x[:0], w, groups=3), ValueError, "input must be non-empty"),
        (lambda x, w: conv(x[..., :0], w, groups=3), ValueError, "input must be non-empty"),
        (
            lambda x, w: conv(
                torch.randn(1, 3, 4, 4), torch.randn(3, 1, 2, 2), groups=3, causal=True
            ),
            ValueError,
            "causal",
        ),
        (lambda x, w: conv(x, w, groups=3, method="fast"), ValueError, "method must be"),
        (lambda x, w: conv(x, w, groups=3, backward_mode="x"), ValueError, "backward_mode"),
        (lambda x, w: conv(x, w, groups=3, memory_budget=-1), ValueError, "memory_budget"),
        (lambda x, w: conv(x, w, groups=0), ValueError, "groups must be"),
        (lambda x, w: conv(x.tolist(), w), TypeError, "input must be a torch.Tensor"),
    ],
)
def test_errors_name_the_argument(make, exc, words):
    x, w = _ok()
    with pytest.raises(exc, match=words):
        make(x, w)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize(
    ("shape", "kernel", "groups", "padding_mode"),
    [
        ((3, 4, 50), (4, 1, 50), 4, "zeros"),  # depthwise: the engine reads its DC bins
        ((3, 4, 50), (4, 1, 7), 4, "circular"),
        ((2, 3, 10, 12), (6, 1, 5, 5), 3, "circular"),  # depthwise with a channel multiplier
        ((2, 3, 40), (5, 3, 40), 1, "zeros"),  # dense: checked before the engine runs
    ],
)
@pytest.mark.parametrize("path", ["blocked", "batched"])
def test_nonfinite_input_is_refused_on_every_fft_path(
    monkeypatch, value, shape, kernel, groups, padding_mode, path
):
    """One NaN or inf anywhere in the input (here: one element of the last row) is refused by
    name, whether ``conv`` checks it up front or the blocked engine reads it off its
    transforms, with and without gradients."""
    conv_module = importlib.import_module("ckconv.functional.conv")  # the module, not conv()
    monkeypatch.setattr(conv_module, "engine_path", lambda device: path)
    x = torch.randn(*shape)
    x[(-1, -1, *[s // 3 for s in shape[2:]])] = value
    w = torch.randn(*kernel, requires_grad=True)
    for grad in (False, True):
        with torch.set_grad_enabled(grad), pytest.raises(ValueError, match="input contains NaN"):
            conv(x, w, groups=groups, method="fft", padding_mode=padding_mode)


def test_huge_finite_input_is_not_refused():
    """Rows of finite values whose sums overflow float32 (so their zero-frequency bins are
    inf) are not refused as non-finite: the engine's exact check clears them, as the
    up-front check does on the other paths."""
    x = torch.randn(2, 3, 40)
    x[1, 2] = 3e38
    w = torch.randn(3, 1, 40)
    for path in ("blocked", "batched"):
        y = fft_conv(x, w, groups=3, causal=True, path=path, check_input=True)
        assert y.shape == x.shape
        torch.testing.assert_close(y[0], conv(x[:1], w, groups=3, causal=True, method="fft")[0])


def test_huge_finite_values_are_not_rejected():
    # The fast finiteness check sums the input; an overflowing sum must not be mistaken for inf.
    x = torch.full((1, 1, 8), 3e38)
    w = torch.zeros(1, 1, 3)
    w[0, 0, 1] = 1.0
    y = conv(x, w, method="direct")
    assert torch.isfinite(y).all()
