"""Blocked FFT convolution engine: rfft -> multiply -> irfft over row blocks with reused buffers.

Why blocked: on CPU the textbook ``irfft(rfft(u, n=2L) * rfft(k, n=2L), n=2L)[..., :L]`` spends
most of its time allocating and first-touching tensors several times the input's size (the
padded input, two spectra, the product, the full-length inverse).  Here the ``B * C`` rows are
transformed a block at a time (about 2 MiB of padded rows; the block's buffers stay near the
cache and are reused for every block), and only the cropped output (and, if asked, the input
spectrum for the backward pass) is allocated at full size.

Conventions are those of :mod:`ckconv.functional.conv` (cross-correlation, same-size output,
centred = ``padding="same"``, causal = left padding ``K - 1``).  The kernel is placed
circularly around offset 0 (tap ``k`` at index ``(k - left) mod n``) and its spectrum is
conjugated, so the output is the first ``L`` samples of the inverse transform and the FFT
size only needs ``n >= L + max(left, right)`` (``1.5 L`` for a centred kernel as long as the
input, ``2L - 1`` causal) instead of ``L + K - 1``.  Taps that cannot reach any output
(further than ``L - 1`` from the anchor) are dropped before transforming.  Among the even
5-smooth sizes that are large enough, :func:`good_fft_size` picks the one measured fastest
(powers of two beat sizes with many factors of 3 or 5), which also makes odd lengths cost
the same as even ones.

Depthwise convolutions (one input channel per group, any channel multiplier) run
channel-major: the spectrum of a block of kernel channels is computed once and used for
every batch element.  Dense convolutions (``C_in / groups > 1``) transform all input rows,
contract over the input channels one block of frequencies at a time with a batched complex
matmul, and inverse transform the output rows in blocks.

Backward passes (hand-written, :class:`torch.autograd.Function`):

* ``"save_spectrum"``: the forward keeps the input spectrum; the backward needs one forward
  and one inverse transform per row (``~n / L`` input-sizes of extra memory).
* ``"recompute"``: the forward keeps only the input (which autograd keeps anyway); the
  backward transforms the input again (one more transform per row, leanest memory).
* ``"auto"``: save when the spectra fit in ``memory_budget`` bytes (default
  :data:`DEFAULT_MEMORY_BUDGET`), recompute otherwise.  Nothing is saved without grad mode,
  and the input spectrum only when the weight needs a gradient.

Circular (periodic) axes (``padding_mode="circular"`` in :func:`ckconv.functional.conv`) are
transformed at their own length ``L`` (no zero padding): the circular placement of the kernel
is then exactly the periodic boundary.  A kernel longer than ``L`` along such an axis is first
folded onto one period (:func:`wrap_kernel`); the FFT plan records which axes are circular.

For inference with a fixed kernel, :func:`kernel_spectrum` computes a kernel's spectrum once
and :func:`spectrum_conv` reuses it for any batch of inputs of that size.

Threads: each block is a handful of small PyTorch ops, each a parallel region when torch
uses several threads.  With as many threads as free cores that costs microseconds; with more
threads than free cores (other busy processes, data-loader workers) every region waits for a
descheduled thread, and the engine, issuing hundreds of regions per call, slows down far more
than code made of a few large ops (measured 10-70x slower with 2 threads on 2 loaded cores).
Give torch only the cores that are free (``torch.set_num_threads``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch.utils.checkpoint import checkpoint

__all__ = [
    "BATCHED_CHUNK_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "NONFINITE_INPUT",
    "BackwardMode",
    "EnginePath",
    "FFTPlan",
    "KernelSpectrum",
    "all_finite",
    "batched_chunk_bytes",
    "batched_chunking",
    "batched_fft_conv",
    "batched_fft_conv_planned",
    "block_fft_conv",
    "blocked_row_blocks",
    "compute_dtype",
    "effective_taps",
    "engine_path",
    "fft_size",
    "good_fft_size",
    "kernel_spectrum",
    "make_plan",
    "padding_for",
    "placed_spectrum",
    "plan_for",
    "saved_bytes",
    "spectrum_conv",
    "wrap_kernel",
]

BackwardMode = Literal["auto", "save_spectrum", "recompute"]
#: The engine's two ways of running an FFT convolution (see :func:`engine_path`).
EnginePath = Literal["blocked", "batched"]
_BACKWARD_MODES = ("auto", "save_spectrum", "recompute")

#: Largest amount (bytes) of spectra ``backward_mode="auto"`` keeps for the backward pass.
#: Measured with ``benchmarks/bench_tuning.py backward`` (1 thread, CPU time, causal global
#: kernel, fwd+bwd ms save / recompute): (8, 256, 1024) [18 MiB saved] 31.6 / 38.3,
#: (8, 256, 2048) [36 MiB] 87.7 / 81.4, (8, 256, 4096) [72 MiB] 203.5 / 196.0,
#: (8, 140, 16000) [158 MiB] 564 / 575.  Saving pays (~10%) only while the allocator can recycle
#: the memory; blocks above glibc's 32 MiB mmap threshold come back as fresh pages whose page
#: faults cost about as much as the transform they save, while the peak memory roughly doubles
#: (4.5x vs 2.4x the input at (8, 256, 4096)).
DEFAULT_MEMORY_BUDGET = 32 << 20

# Target size (bytes) of one block's real padded buffer: rows per block = this / (n * itemsize).
# benchmarks/bench_tuning.py blocks (1 thread, CPU time, forward ms for 256k/512k/1M/2M/4M):
# (8, 256, 1024) 16.8/14.8/16.3/19.0/30.2; (8, 256, 4096) 105/88/83/88/91;
# (8, 140, 16000) 281/205/181/177/183.  Smaller blocks pay per-call overhead, larger ones
# fall out of cache.  Re-measured 2026-12-05 with huge-page outputs (9 rounds, load ~5):
# (8, 256, 4096) 2M (64 rows of 32 KiB) 0.95x the time of 1M (32 rows), twice in a row;
# forward+backward 1.94 -> 1.90 of the transform limit (bench_conv.py's); (8, 256, 1024) and
# (8, 140, 16000) have the same rows at 1M and 2M (the row limits below decide there).
# Every transform call pays a fixed cost proportional to n (MKL builds its plan per call:
# ~85 us at n = 8192, ~340 us at 32768, against ~4.6 / ~26 us per row of rfft), which is why
# the blocks are as large as the caches allow.
_BLOCK_BYTES = 2 << 20
# ... but never fewer rows than this: every transform call pays a fixed cost (MKL commits a
# descriptor per call), measured per row of rfft + irfft at n = 32768 (1 thread, CPU time):
# 8 rows 182 us, 16 rows 141 us, 32 rows 121 us, 64 rows 131 us; n = 8192: 36 / 26 / 23 / 22 us
# (bench_tuning.py rows).  Above 32 KiB rows 1 MiB blocks were call-bound.
_MIN_BLOCK_ROWS = 32
# Frequencies per contraction block of the dense path.
_FREQ_BLOCK_BYTES = 1 << 21
#: The error a convolution raises for an input holding NaN or inf (``conv`` checks before it
#: runs; the blocked depthwise path instead reads each row's sum off its zero-frequency bin).
NONFINITE_INPUT = "input contains NaN or inf values"


def all_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` holds no NaN or inf.  A finite sum proves every element finite (NaN and
    inf propagate); only when the sum is not finite (a NaN/inf, or an overflow of huge finite
    values) is the exact check needed, so no boolean tensor the size of ``t`` is allocated."""
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


def fft_size(n: int) -> int:
    """Smallest even 5-smooth integer ``>= n`` (an efficient real-FFT length)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"fft_size needs an int length, got {n!r}")
    if n < 1:
        raise ValueError(f"fft_size needs a positive length, got {n}")
    best = None
    p2 = 2
    while True:
        p23 = p2
        while True:
            p235 = p23
            while p235 < n:
                p235 *= 5
            if best is None or p235 < best:
                best = p235
            if p23 >= n:
                break
            p23 *= 3
        if p2 >= n:
            break
        p2 *= 2
    assert best is not None
    return best


@functools.lru_cache(maxsize=1024, typed=True)
def good_fft_size(n: int) -> int:
    """An even 5-smooth FFT length ``>= n`` chosen for speed, not just size.

    MKL/pocketfft real transforms are fastest for powers of two and get slower with many
    factors of 3 and 5, and much slower when ``n / 2`` is odd.  Measured per-row times
    (``benchmarks/bench_tuning.py fft-sizes``, float32, 1 thread, rfft + irfft) relative to the
    power of two just above: 8000 1.14x, 8100 1.49x, 16000 1.10x, 16200 1.29x, 24000 1.06x
    (vs 24576), 24300 1.34x, 32000 1.10x, 32400 1.16x, 33750 1.88x.  We pick the size that
    minimises ``n log2 n (1 + 0.1 e3 + 0.06 e5)`` (doubled when ``e2 == 1``) over the even
    5-smooth sizes ``2^e2 3^e3 5^e5`` in ``[n, 2n]``, so e.g. 32001 -> 32768 rather than
    32400, 24001 -> 24576 rather than 24300.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"good_fft_size needs an int length, got {n!r}")
    if n < 1:
        raise ValueError(f"good_fft_size needs a positive length, got {n}")
    hi = 2 * max(n, 2)
    best, best_cost = hi, math.inf
    p5, e5 = 1, 0
    while p5 <= hi:
        p35, e3 = p5, 0
        while p35 <= hi:
            m, e2 = p35, 0
            while m < n or e2 == 0:  # smallest even multiple 2^e2 * p35 >= n
                m *= 2
                e2 += 1
            if m <= hi:
                cost = m * math.log2(m) * (1 + 0.1 * e3 + 0.06 * e5) * (2 if e2 == 1 else 1)
                if cost < best_cost:
                    best, best_cost = m, cost
            p35 *= 3
            e3 += 1
        p5 *= 5
        e5 += 1
    return best


def _uncached_while_compiling(fn):
    """``fn`` without its ``functools.lru_cache`` while ``torch.compile`` traces: dynamo
    ignores the cache and warns about it; the plan's ints are constants in the graph."""
    return fn.__wrapped__ if torch.compiler.is_compiling() else fn


def padding_for(kernel_size: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding that gives a same-size output for one dimension."""
    if causal:
        return kernel_size - 1, 0
    left = (kernel_size - 1) // 2
    return left, kernel_size - 1 - left


@dataclass(frozen=True)
class FFTPlan:
    """Sizes of one FFT convolution (all derived from the shapes; see :func:`make_plan`).

    ``taps[d] = (first, last)`` are the kernel taps along dimension ``d`` that can reach an
    output; ``left[d]`` is the anchor offset within those taps; ``n`` the FFT sizes;
    ``circular[d]`` whether axis ``d`` is periodic (transformed at ``n[d] == spatial[d]``; empty
    means no circular axis).
    """

    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    causal: bool
    groups: int
    in_channels: int
    out_channels: int
    taps: tuple[tuple[int, int], ...]
    left: tuple[int, ...]
    n: tuple[int, ...]
    circular: tuple[bool, ...] = ()

    @property
    def data_dim(self) -> int:
        return len(self.spatial)

    @property
    def freq(self) -> tuple[int, ...]:
        return (*self.n[:-1], self.n[-1] // 2 + 1)

    @property
    def cig(self) -> int:
        return self.in_channels // self.groups

    @property
    def cog(self) -> int:
        return self.out_channels // self.groups

    @property
    def kept(self) -> tuple[int, ...]:
        return tuple(b - a + 1 for a, b in self.taps)


def _circular_flags(circular: Sequence[bool] | None, data_dim: int) -> tuple[bool, ...]:
    if circular is None or len(circular) == 0:
        return (False,) * data_dim
    flags = tuple(bool(c) for c in circular)
    if len(flags) != data_dim:
        raise ValueError(f"circular must have {data_dim} entries (one per axis), got {circular!r}")
    return flags


def effective_taps(
    spatial: Sequence[int],
    kernel: Sequence[int],
    causal: bool = False,
    circular: Sequence[bool] | None = None,
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[int, ...]]:
    """Per dimension: the ``(first, last)`` taps that can reach an output, and the (left,
    right) padding those kept taps need for a same-size output.

    On a ``circular`` axis every tap reaches an output (the padding is periodic); the kernel
    must not be longer than the axis there (fold it first with :func:`wrap_kernel`).
    """
    flags = _circular_flags(circular, len(spatial))
    taps, lefts, rights = [], [], []
    for L, K, circ in zip(spatial, kernel, flags):
        left, _ = padding_for(int(K), causal)
        if circ:
            if K > L:
                raise ValueError(
                    f"a kernel of {K} taps on a circular axis of length {L} must be folded onto "
                    "one period first (wrap_kernel)"
                )
            first, last = 0, int(K) - 1
        else:
            first = max(0, left - (int(L) - 1))
            last = min(int(K) - 1, left + int(L) - 1)
        taps.append((first, last))
        lefts.append(left - first)
        rights.append(last - left)
    return tuple(taps), tuple(lefts), tuple(rights)


def wrap_kernel(
    weight: torch.Tensor, spatial: Sequence[int], circular: Sequence[bool] | None
) -> torch.Tensor:
    """Fold a kernel onto one period along its circular axes (differentiable).

    Along a circular axis of length ``L`` a kernel of ``K > L`` taps is replaced by the
    ``L``-tap kernel with the same circular cross-correlation: tap ``j`` (offset ``j - c``,
    ``c = (K - 1) // 2``) is added to tap ``(j - c + c') mod L``, ``c' = (L - 1) // 2``.  Axes
    that are not circular, or where ``K <= L``, are left as they are (no copy when nothing
    changes).

    Shape:
        - weight: ``(C_out, C_in / groups, *K)``
        - Output: ``(C_out, C_in / groups, *K')`` with ``K'_d = min(K_d, L_d)`` on circular axes
    """
    flags = _circular_flags(circular, weight.dim() - 2)
    for d, (L, circ) in enumerate(zip(spatial, flags)):
        K = weight.shape[2 + d]
        L = int(L)
        if not circ or K <= L:
            continue
        idx = (torch.arange(K, device=weight.device) - (K - 1) // 2 + (L - 1) // 2) % L
        shape = list(weight.shape)
        shape[2 + d] = L
        weight = weight.new_zeros(shape).index_add(2 + d, idx, weight)
    return weight


def make_plan(
    spatial: Sequence[int],
    kernel: Sequence[int],
    *,
    causal: bool = False,
    groups: int = 1,
    in_channels: int = 1,
    out_channels: int = 1,
    circular: Sequence[bool] | None = None,
) -> FFTPlan:
    """Crop range, anchor and FFT sizes for a same-size convolution of these shapes.

    A ``circular`` axis is transformed at its own length (the kernel must already be folded
    onto one period there, :func:`wrap_kernel`); the others are zero-padded to a linear size.
    """
    spatial = tuple(int(s) for s in spatial)
    kernel = tuple(int(k) for k in kernel)
    flags = _circular_flags(circular, len(spatial))
    taps, lefts, rights = effective_taps(spatial, kernel, causal, flags)
    size = _uncached_while_compiling(good_fft_size)
    ns = tuple(
        L if circ else size(L + max(a, b)) for L, a, b, circ in zip(spatial, lefts, rights, flags)
    )
    return FFTPlan(
        spatial=spatial,
        kernel=kernel,
        causal=bool(causal),
        groups=int(groups),
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        taps=taps,
        left=lefts,
        n=ns,
        circular=flags if any(flags) else (),
    )


def _dims(plan: FFTPlan) -> tuple[int, ...]:
    return tuple(range(-plan.data_dim, 0))


def _crop(sizes: Sequence[int]) -> tuple[object, ...]:
    return (Ellipsis, *(slice(0, s) for s in sizes))


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


@functools.lru_cache(maxsize=256)
def _tap_pieces(plan: FFTPlan) -> list[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """``(taps, buffer)`` slice pairs of the circular placement, one per corner.

    Kept tap ``k`` goes to buffer index ``(k - left) mod n``: the taps at and after the anchor
    start the buffer, the ones before it end it (per dimension; ``2^D`` corners in N-D).
    Tap slices count from the first kept tap.
    """
    pieces = []
    for corner in itertools.product((False, True), repeat=plan.data_dim):
        taps: list[slice] = []
        buf: list[slice] = []
        for before, left, k, n in zip(corner, plan.left, plan.kept, plan.n):
            if before:
                taps.append(slice(0, left))
                buf.append(slice(n - left, n))
            else:
                taps.append(slice(left, k))
                buf.append(slice(0, k - left))
        if all(t.start != t.stop for t in taps):
            pieces.append((tuple(taps), tuple(buf)))
    return pieces


def _cropped_kernel(weight: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """The kept taps of ``weight`` ``(C_out, cig, *K)`` (a view)."""
    w = weight
    for d, (first, last) in enumerate(plan.taps):
        if first != 0 or last != plan.kernel[d] - 1:
            w = w.narrow(2 + d, first, last - first + 1)
    return w


def _place_taps(pad: torch.Tensor, w: torch.Tensor, plan: FFTPlan) -> None:
    """Write kept taps ``w`` ``(m, *kept)`` circularly into the zero buffer ``pad`` ``(m, *n)``.

    Every call writes the same index set, so the rest of a reused buffer stays zero.
    """
    for taps, buf in _uncached_while_compiling(_tap_pieces)(plan):
        pad[(slice(None), *buf)] = w[(slice(None), *taps)]


def placed_spectrum(weight: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """Conjugated spectrum of the circularly placed kernel, ``(G, cog, cig, *freq)``.

    Kept tap ``k`` goes to FFT index ``(k - left) mod n`` per dimension (``plan.left``,
    ``plan.n``), so ``irfftn(rfftn(x, s=n) * spectrum, s=n)`` is the cross-correlation anchored
    at ``left``.  The one spectrum every fixed-kernel path uses (the engine, baked and
    streaming layers); computed in ``weight``'s precision.
    """
    w = _cropped_kernel(weight, plan)
    rows = w.shape[0] * w.shape[1]
    pad = torch.zeros(rows, *plan.n, dtype=w.dtype, device=w.device)
    _place_taps(pad, w.reshape(rows, *plan.kept), plan)
    spec = torch.fft.rfftn(pad, dim=_dims(plan))
    del pad
    spec.conj_physical_()
    return spec.view(plan.groups, plan.cog, plan.cig, *plan.freq)


def _kernel_grad_into(corr: torch.Tensor, dst: torch.Tensor, plan: FFTPlan) -> None:
    """Weight gradient from a batch-summed cross-spectrum.

    ``corr`` ``(m, *freq)`` holds ``sum_b X conj(Y)``; its inverse transform is the gradient
    of the circularly placed kernel, read back at the placement indices into ``dst``
    ``(m, *K)`` (taps that reach no output get zero).
    """
    r = torch.fft.irfftn(corr, s=plan.n, dim=_dims(plan))
    sub = dst
    if plan.kept != plan.kernel:
        dst.zero_()
        sub = dst[(slice(None), *(slice(a, b + 1) for a, b in plan.taps))]
    for taps, buf in _tap_pieces(plan):
        sub[(slice(None), *taps)] = r[(slice(None), *buf)]


def _rows_per_block(plan: FFTPlan, itemsize: int, rows: int) -> int:
    """Rows per block: a block's padded buffer is ``_BLOCK_BYTES`` but at least
    ``_MIN_BLOCK_ROWS`` rows, and for small problems at most ~1/32 of the rows (but >= 16), so
    the scratch buffers stay a small fraction of the data."""
    per_row = math.prod(plan.n) * itemsize
    cap = max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // per_row)
    return max(1, min(rows, cap, max(16, rows // 32)))


def _schedule(batch: int, groups: int, rows: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Channel-major blocks: ``(g0, g1, [(b0, b1), ...])`` of about ``rows`` rows each.

    Each block ``x[b0:b1, g0:g1]`` is contiguous in ``(B, G)`` row order; the channel range
    is the outer loop so its kernel spectrum is computed once and used for the whole batch.
    """
    if groups >= rows:
        return [
            (g0, min(g0 + rows, groups), [(b, b + 1) for b in range(batch)])
            for g0 in range(0, groups, rows)
        ]
    nb = max(1, rows // groups)
    return [(0, groups, [(b0, min(b0 + nb, batch)) for b0 in range(0, batch, nb)])]


def blocked_row_blocks(plan: FFTPlan, batch: int, itemsize: int) -> int:
    """How many row blocks the blocked path's forward pass loops over (the input's and, for
    dense convolutions, the output's rows)."""
    if plan.cig == 1:
        rows = _rows_per_block(plan, itemsize, batch * plan.groups)
        return sum(len(chunks) for _, _, chunks in _schedule(batch, plan.groups, rows))
    total = 0
    for channels in (plan.in_channels, plan.out_channels):
        rows = _rows_per_block(plan, itemsize, batch * channels)
        total += sum(len(chunks) for _, _, chunks in _schedule(batch, channels, rows))
    return total


class _Buffers:
    """Per-call scratch buffers, reused by every block."""

    def __init__(self, plan: FFTPlan, rows: int, dtype: torch.dtype, device: torch.device):
        self.plan = plan
        self.rows = rows
        self.dtype = dtype
        self.device = device
        self.cdtype = _complex_dtype(dtype)
        self._real: dict[str, torch.Tensor] = {}
        self._spec: dict[str, torch.Tensor] = {}
        self._views: dict[tuple[str, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def padded(self, name: str, m: int) -> torch.Tensor:
        """Zero-initialised real buffer ``(m, *n)``; callers only ever write the same corner."""
        buf = self._real.get(name)
        if buf is None or buf.shape[0] < m:
            buf = torch.zeros(max(m, self.rows), *self.plan.n, dtype=self.dtype, device=self.device)
            self._real[name] = buf
        return buf[:m]

    def row_views(self, name: str, nb: int, ng: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(block, inner)``: the padded buffer ``name`` as ``(nb, ng, *n)`` rows and its
        ``(nb, ng, *L)`` corner the input is copied into; made once per block shape (the
        block loops are the engine's hot path)."""
        key = (name, nb, ng)
        view = self._views.get(key)
        if view is None:
            block = self.padded(name, nb * ng).view(nb, ng, *self.plan.n)
            view = self._views[key] = (block, block[_crop(self.plan.spatial)])
        return view

    def spec(self, name: str, m: int) -> torch.Tensor:
        buf = self._spec.get(name)
        if buf is None or buf.shape[0] < m:
            buf = torch.empty(m, *self.plan.freq, dtype=self.cdtype, device=self.device)
            self._spec[name] = buf
        return buf[:m]


def _forward_transform(
    buf: _Buffers, src: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """rfftn of rows ``src`` ``(nb, ng, *L)`` zero-padded to the FFT size -> ``(m, *freq)``."""
    plan = buf.plan
    nb, ng = src.shape[:2]
    m = nb * ng
    pad = buf.padded("in", m)
    pad.view(nb, ng, *plan.n)[_crop(plan.spatial)].copy_(src)
    # No ``out=``: torch's MKL transforms compute into a new tensor and copy it into ``out``
    # (one more pass over the spectrum); a fresh block-sized result is recycled by malloc.
    spec = torch.fft.rfftn(pad, dim=_dims(plan))
    if out is None:
        return spec
    return out.copy_(spec)


def _inverse_transform(
    buf: _Buffers,
    spec: torch.Tensor,
    dst: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> None:
    """irfftn of ``spec`` ``(m, *freq)``, cropped to ``L`` and written (plus bias) into ``dst``."""
    plan = buf.plan
    full = torch.fft.irfftn(spec, s=plan.n, dim=_dims(plan))  # no out=: see _forward_transform
    cropped = full.view(dst.shape[: -plan.data_dim] + plan.n)[_crop(plan.spatial)]
    if bias is None:
        dst.copy_(cropped)
    else:
        torch.add(cropped, bias, out=dst)


# --------------------------------------------------------------------------------------------
# Depthwise-like path (C_in / groups == 1, any channel multiplier C_out / groups).
# --------------------------------------------------------------------------------------------


class _DepthwiseKernel:
    """Kernel spectrum blocks ``(ng, cog, *freq)`` for the depthwise path.

    From a precomputed spectrum: slices of it.  From the weight: each channel block is placed
    and transformed into a reused buffer when asked for (once per pass; the backward pass
    transforms the kernel again rather than keeping a full-size kernel spectrum: that costs
    ``C`` row transforms against the ``2 B C`` of the data and saves ``1 / B`` of the input
    spectrum's memory).
    """

    def __init__(
        self,
        plan: FFTPlan,
        rows: int,
        dtype: torch.dtype,
        device: torch.device,
        weight: torch.Tensor | None = None,
        spectrum: torch.Tensor | None = None,
    ):
        self.plan = plan
        self.full: torch.Tensor | None = None
        self.from_weight = spectrum is None
        if spectrum is not None:
            self.full = spectrum[:, :, 0]
            return
        assert weight is not None
        self.w = _cropped_kernel(weight, plan)[:, 0].reshape(plan.groups, plan.cog, *plan.kept)
        self.buf = _Buffers(plan, rows * plan.cog, dtype, device)

    def get(self, g0: int, g1: int, adjoint: bool = False) -> torch.Tensor:
        """The (conjugated) spectrum the forward pass multiplies by, or with ``adjoint`` its
        conjugate (the backward pass's), without a separate conjugation pass when it comes
        from the weight (a multiply by a lazily conjugated view costs ~3x a plain one)."""
        plan = self.plan
        if not self.from_weight:
            assert self.full is not None
            return self.full[g0:g1].conj() if adjoint else self.full[g0:g1]
        m = (g1 - g0) * plan.cog
        pad = self.buf.padded("kernel", m)
        _place_taps(pad, self.w[g0:g1].reshape(m, *plan.kept), plan)
        dst = torch.fft.rfftn(pad, dim=_dims(plan))
        if not adjoint:
            dst.conj_physical_()
        return dst.view(g1 - g0, plan.cog, *plan.freq)


def _bias_view(bias: torch.Tensor | None, plan: FFTPlan, g0: int, g1: int) -> torch.Tensor | None:
    if bias is None:
        return None
    return bias.view(plan.groups, plan.cog)[g0:g1].reshape(
        g1 - g0, plan.cog, *([1] * plan.data_dim)
    )


def _dw_forward(
    x: torch.Tensor,
    kern: _DepthwiseKernel,
    bias: torch.Tensor | None,
    plan: FFTPlan,
    save_x: bool,
    check_input: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Depthwise forward; with ``save_x`` also the *conjugated* input spectrum ``(B, G, *freq)``
    for the weight gradient (conjugated while it is copied out, so the backward multiplies two
    plain tensors: a product with a lazily conjugated operand costs ~2x a plain one).

    ``check_input``: raise ``ValueError(NONFINITE_INPUT)`` if ``x`` holds NaN or inf, read off
    the zero-frequency bins the transforms compute anyway (a bin is the sum of its row: NaN
    and inf propagate into it) instead of a separate pass over the input; only a non-finite
    bin (NaN/inf, or an overflowing sum of finite values) costs an exact check."""
    batch, G, cog = x.shape[0], plan.groups, plan.cog
    out = torch.empty(batch, plan.out_channels, *plan.spatial, dtype=x.dtype, device=x.device)
    out_g = out.view(batch, G, cog, *plan.spatial)
    saved = None
    if save_x:
        saved = torch.empty(batch, G, *plan.freq, dtype=_complex_dtype(x.dtype), device=x.device)
    rows = _rows_per_block(plan, x.element_size(), batch * G)
    buf = _Buffers(plan, rows, x.dtype, x.device)
    # The block loop is the engine's hot path (one iteration per ~2 MiB of rows): its views of
    # the padded buffer are made once per block shape, and the transforms keep the (nb, ng)
    # row shape, so an iteration is nine tensor calls.
    dims, crop, n, freq = _dims(plan), _crop(plan.spatial), plan.n, plan.freq
    buf.padded("in", rows)
    ones = (1,) * plan.data_dim
    dc_bin = (Ellipsis, *((0,) * plan.data_dim))
    dc = torch.empty(batch, G, dtype=buf.cdtype, device=x.device) if check_input else None
    for g0, g1, chunks in _schedule(batch, G, rows):
        ng = g1 - g0
        kb = kern.get(g0, g1)  # (ng, cog, *freq)
        bv = _bias_view(bias, plan, g0, g1)
        if cog == 1:
            kb = kb.view(ng, *freq)
            bv = None if bv is None else bv.view(ng, *ones)
        for b0, b1 in chunks:
            nb = b1 - b0
            block, inner = buf.row_views("in", nb, ng)
            inner.copy_(x[b0:b1, g0:g1])
            spec = torch.fft.rfftn(block, dim=dims)  # (nb, ng, *freq); no out=: _forward_transform
            if dc is not None:
                dc[b0:b1, g0:g1] = spec[dc_bin]
            if saved is not None:
                torch.conj_physical(spec, out=saved[b0:b1, g0:g1])
            if cog == 1:
                spec.mul_(kb)  # the transform's own fresh result: multiply in place
                dst = out[b0:b1, g0:g1]
            else:
                prod = buf.spec("prod", nb * ng * cog).view(nb, ng, cog, *freq)
                torch.mul(spec.unsqueeze(2), kb, out=prod)
                spec, dst = prod, out_g[b0:b1, g0:g1]
            cropped = torch.fft.irfftn(spec, s=n, dim=dims)[crop]
            if bv is None:
                dst.copy_(cropped)
            else:
                torch.add(cropped, bv, out=dst)
    if dc is not None and not bool(torch.isfinite(dc).all()) and not bool(torch.isfinite(x).all()):
        raise ValueError(NONFINITE_INPUT)
    return out, saved


def _dw_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor | None,
    saved: torch.Tensor | None,
    kern: _DepthwiseKernel,
    plan: FFTPlan,
    need_input: bool,
    need_weight: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    batch, G, cog = grad_out.shape[0], plan.groups, plan.cog
    dtype, device = grad_out.dtype, grad_out.device
    grad_x = (
        torch.empty(batch, G, *plan.spatial, dtype=dtype, device=device) if need_input else None
    )
    grad_w = None
    if need_weight:
        grad_w = torch.empty(plan.out_channels, 1, *plan.kernel, dtype=dtype, device=device)
    # Rows counted in output rows: a block of input rows brings cog output rows with it.
    rows_in = max(1, _rows_per_block(plan, grad_out.element_size(), batch * G * cog) // cog)
    buf = _Buffers(plan, rows_in * cog, dtype, device)
    dims, crop, n, freq = _dims(plan), _crop(plan.spatial), plan.n, plan.freq
    buf.padded("in", rows_in * cog)
    for g0, g1, chunks in _schedule(batch, G, rows_in):
        ng = g1 - g0
        kb = kern.get(g0, g1, adjoint=True) if need_input else None
        acc = None
        if need_weight:
            acc = buf.spec("acc", ng * cog).view(ng, cog, *freq)
            acc.zero_()
        for b0, b1 in chunks:
            nb = b1 - b0
            block, inner = buf.row_views("in", nb, ng * cog)
            inner.copy_(grad_out[b0:b1, g0 * cog : g1 * cog])
            ys = torch.fft.rfftn(block, dim=dims).view(nb, ng, cog, *freq)
            if acc is not None:
                # acc accumulates conj(sum_b X conj(Y)) = sum_b conj(X) Y: the saved spectrum
                # is already conjugated, a recomputed one is conjugated in place (one pass in
                # cache), and no product takes a lazily conjugated operand.
                if saved is not None:
                    xs = saved[b0:b1, g0:g1]
                else:
                    assert x is not None
                    block, inner = buf.row_views("in", nb, ng)
                    inner.copy_(x[b0:b1, g0:g1])
                    xs = torch.fft.rfftn(block, dim=dims).conj_physical_()
                xs = xs.view(nb, ng, 1, *freq)
                if nb == 1:
                    acc.addcmul_(xs[0], ys[0])
                else:
                    prod = buf.spec("wprod", nb * ng * cog).view(nb, ng, cog, *freq)
                    torch.mul(xs, ys, out=prod)
                    acc.add_(prod.sum(0))
            if grad_x is not None:
                assert kb is not None
                gx = ys.mul_(kb)
                if cog > 1:
                    gx = buf.spec("gx", nb * ng).view(nb, ng, *freq)
                    torch.sum(ys, dim=2, out=gx)
                grad_x[b0:b1, g0:g1].copy_(
                    torch.fft.irfftn(gx.view(nb, ng, *freq), s=n, dim=dims)[crop]
                )
        if acc is not None:
            assert grad_w is not None
            _kernel_grad_into(
                acc.conj_physical_().view(ng * cog, *freq),
                grad_w[g0 * cog : g1 * cog, 0],
                plan,
            )
    if grad_x is not None:
        grad_x = grad_x.view(batch, plan.in_channels, *plan.spatial)
    return grad_x, grad_w


# --------------------------------------------------------------------------------------------
# Dense path (C_in / groups > 1): contraction per frequency block as a batched matmul.
# --------------------------------------------------------------------------------------------


def _all_spectra(x: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """rfftn of every row of ``x`` ``(B, C, *L)`` -> ``(B, C, *freq)``."""
    batch, channels = x.shape[:2]
    spec = torch.empty(batch, channels, *plan.freq, dtype=_complex_dtype(x.dtype), device=x.device)
    rows = _rows_per_block(plan, x.element_size(), batch * channels)
    buf = _Buffers(plan, rows, x.dtype, x.device)
    for c0, c1, chunks in _schedule(batch, channels, rows):
        for b0, b1 in chunks:
            dst = spec[b0:b1, c0:c1].view((b1 - b0) * (c1 - c0), *plan.freq)
            _forward_transform(buf, x[b0:b1, c0:c1], dst)
    return spec


def _all_inverse(
    spec: torch.Tensor, plan: FFTPlan, dtype: torch.dtype, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """irfftn of every row of ``spec`` ``(B, C, *freq)``, cropped -> ``(B, C, *L)`` (+ bias)."""
    batch, channels = spec.shape[:2]
    out = torch.empty(batch, channels, *plan.spatial, dtype=dtype, device=spec.device)
    rows = _rows_per_block(plan, out.element_size(), batch * channels)
    buf = _Buffers(plan, rows, dtype, spec.device)
    bias_v = None if bias is None else bias.view(channels, *([1] * plan.data_dim))
    for c0, c1, chunks in _schedule(batch, channels, rows):
        bv = None if bias_v is None else bias_v[c0:c1]
        for b0, b1 in chunks:
            blk = spec[b0:b1, c0:c1].reshape((b1 - b0) * (c1 - c0), *plan.freq)
            _inverse_transform(buf, blk, out[b0:b1, c0:c1], bv)
    return out


def _freq_chunks(total: int, per_freq_bytes: int) -> Iterator[tuple[int, int]]:
    step = max(1, _FREQ_BLOCK_BYTES // max(1, per_freq_bytes))
    for f0 in range(0, total, step):
        yield f0, min(f0 + step, total)


def _contract(a: torch.Tensor, kernel_t: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """``out[b, g, o, f] = sum_i a[b, g, i, f] * kernel_t[f, g, i, o]``, in frequency blocks.

    ``a``: ``(B, G, I, Ftot)``; ``kernel_t``: ``(Ftot, G, I, O)``; returns ``(B, G*O, *freq)``.
    """
    batch, G, ci, ftot = a.shape
    co = kernel_t.shape[-1]
    out = torch.empty(batch, G, co, ftot, dtype=a.dtype, device=a.device)
    per_freq = G * (batch * (ci + co) + ci * co) * a.element_size()
    for f0, f1 in _freq_chunks(ftot, per_freq):
        fb = f1 - f0
        ab = a[..., f0:f1].permute(3, 1, 0, 2).reshape(fb * G, batch, ci)
        kb = kernel_t[f0:f1].reshape(fb * G, ci, co)
        ob = torch.bmm(ab, kb).view(fb, G, batch, co)
        out[..., f0:f1].copy_(ob.permute(2, 1, 3, 0))
    return out.view(batch, G * co, *plan.freq)


def _cross_spectrum(x_spec: torch.Tensor, y_spec: torch.Tensor, plan: FFTPlan) -> torch.Tensor:
    """``sum_b X[b, g, i, f] * conj(Y[b, g, o, f])`` -> ``(G * cog * cig, *freq)`` via bmm."""
    batch = x_spec.shape[0]
    G, cig, cog = plan.groups, plan.cig, plan.cog
    ftot = math.prod(plan.freq)
    xs = x_spec.view(batch, G, cig, ftot)
    ys = y_spec.view(batch, G, cog, ftot)
    out = torch.empty(G, cog, cig, ftot, dtype=x_spec.dtype, device=x_spec.device)
    per_freq = G * (batch * (cig + cog) + cig * cog) * x_spec.element_size()
    for f0, f1 in _freq_chunks(ftot, per_freq):
        fb = f1 - f0
        yb = ys[..., f0:f1].permute(3, 1, 2, 0).conj().reshape(fb * G, cog, batch)
        xb = xs[..., f0:f1].permute(3, 1, 0, 2).reshape(fb * G, batch, cig)
        ob = torch.bmm(yb, xb).view(fb, G, cog, cig)
        out[..., f0:f1].copy_(ob.permute(1, 2, 3, 0))
    return out.view(G * cog * cig, *plan.freq)


def _dense_forward(
    x: torch.Tensor,
    spec_k: torch.Tensor,
    bias: torch.Tensor | None,
    plan: FFTPlan,
    save_x: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    batch = x.shape[0]
    G, cig, cog = plan.groups, plan.cig, plan.cog
    ftot = math.prod(plan.freq)
    x_spec = _all_spectra(x, plan)
    # kernel laid out frequency-major for the batched matmul: (Ftot, G, cig, cog)
    kernel_t = spec_k.reshape(G, cog, cig, ftot).permute(3, 0, 2, 1).contiguous()
    y_spec = _contract(x_spec.view(batch, G, cig, ftot), kernel_t, plan)
    del kernel_t
    if not save_x:
        del x_spec
        x_spec = None
    out = _all_inverse(y_spec, plan, x.dtype, bias)
    return out, x_spec


def _dense_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor | None,
    saved: torch.Tensor | None,
    spec_k: torch.Tensor,
    plan: FFTPlan,
    need_input: bool,
    need_weight: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    batch = grad_out.shape[0]
    G, cig, cog = plan.groups, plan.cig, plan.cog
    ftot = math.prod(plan.freq)
    y_spec = _all_spectra(grad_out, plan)
    grad_w = None
    if need_weight:
        if saved is None:
            assert x is not None
            saved = _all_spectra(x, plan)
        corr = _cross_spectrum(saved, y_spec, plan)
        del saved
        grad_w = torch.empty(
            plan.out_channels, cig, *plan.kernel, dtype=grad_out.dtype, device=grad_out.device
        )
        _kernel_grad_into(corr, grad_w.view(plan.out_channels * cig, *plan.kernel), plan)
        del corr
    grad_x = None
    if need_input:
        # adjoint: conjugate kernel, transposed over channels -> (Ftot, G, cog, cig)
        kernel_h = spec_k.reshape(G, cog, cig, ftot).permute(3, 0, 1, 2).conj_physical()
        kernel_h = kernel_h.contiguous()
        gx_spec = _contract(y_spec.view(batch, G, cog, ftot), kernel_h, plan)
        del y_spec, kernel_h
        grad_x = _all_inverse(gx_spec, plan, grad_out.dtype)
    return grad_x, grad_w


# --------------------------------------------------------------------------------------------
# Batched path (devices other than the CPU, torch.compile, higher derivatives): one transform
# over all rows, built from differentiable ops only.
# --------------------------------------------------------------------------------------------

#: Largest amount (bytes) of transform temporaries one chunk of the batched path may use: the
#: input spectrum, the product spectrum and the uncropped inverse transform of the rows in the
#: chunk.  A call whose temporaries fit runs as one transform over all ``B * C`` rows; a larger
#: one is split over the batch (and, when one batch element alone is larger, over channel
#: groups), every chunk reusing the kernel spectrum computed once.  1 GiB keeps each chunk
#: large enough to fill a GPU while bounding the temporaries well below a GPU's memory.
#: Not measured: chosen from the sizes (e.g. (32, 380, 16000) causal needs ~150 MB per batch
#: element, so it runs in chunks of 7).
BATCHED_CHUNK_BYTES = 1 << 30


def batched_chunk_bytes(plan: FFTPlan, batch: int, groups: int, itemsize: int) -> int:
    """Transform temporaries of the batched path for ``batch`` elements and ``groups`` channel
    groups: input spectrum, product spectrum and the uncropped inverse transform."""
    freq, n = math.prod(plan.freq), math.prod(plan.n)
    per_group = (plan.cig + plan.cog) * freq * 2 * itemsize + plan.cog * n * itemsize
    return batch * groups * per_group


def batched_chunking(
    plan: FFTPlan, batch: int, itemsize: int, budget: int | None = None
) -> tuple[int, int]:
    """``(batch elements, channel groups)`` per chunk of the batched path: everything at once
    when the temporaries fit in ``budget`` bytes (default :data:`BATCHED_CHUNK_BYTES`)."""
    budget = BATCHED_CHUNK_BYTES if budget is None else budget
    G = plan.groups
    per_elem = batched_chunk_bytes(plan, 1, G, itemsize)
    if batch * per_elem <= budget:
        return batch, G
    if per_elem <= budget:
        return max(1, budget // per_elem), G
    per_group = batched_chunk_bytes(plan, 1, 1, itemsize)
    return 1, max(1, min(G, budget // per_group))


def _batched_rows(
    x: torch.Tensor, spec_k: torch.Tensor, bias: torch.Tensor | None, plan: FFTPlan
) -> torch.Tensor:
    """One transform over all rows of ``x`` ``(B, g * cig, *L)`` with the kernel spectrum
    ``spec_k`` ``(g, cog, cig, *freq)`` of the ``g`` groups they belong to -> ``(B, g * cog, *L)``."""
    dims = _dims(plan)
    batch = x.shape[0]
    G, cog, cig = spec_k.shape[:3]
    xs = torch.fft.rfftn(x, s=plan.n, dim=dims)
    if cig == 1:
        ys = xs.view(batch, G, 1, *plan.freq) * spec_k[:, :, 0]
    else:
        f = math.prod(plan.freq)
        ys = torch.einsum(
            "bgif,goif->bgof", xs.reshape(batch, G, cig, f), spec_k.reshape(G, cog, cig, f)
        )
    y = torch.fft.irfftn(ys.reshape(batch, G * cog, *plan.freq), s=plan.n, dim=dims)
    y = y[_crop(plan.spatial)]
    if bias is None:
        return y.contiguous()  # a copy: the uncropped transform is freed
    return y + bias.view(1, -1, *([1] * plan.data_dim))


def batched_fft_conv_planned(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    plan: FFTPlan,
    *,
    spectrum: torch.Tensor | None = None,
    chunk: tuple[int, int] | None = None,
    recompute: bool = False,
) -> torch.Tensor:
    """The batched path for a ready plan (tensors already in the compute dtype).

    Differentiable to any order (autograd over ``rfftn``, products and ``irfftn``).  ``chunk``
    is ``(batch elements, groups)`` per chunk (default: everything at once); ``recompute``
    keeps nothing for the backward pass but the inputs (activation checkpointing of each
    chunk) instead of the input spectrum autograd would save.
    """
    spec_k = placed_spectrum(weight, plan) if spectrum is None else spectrum
    batch, G = x.shape[0], plan.groups
    nb, ng = (batch, G) if chunk is None else chunk

    def run(xc, kc, bc):
        if recompute and torch.is_grad_enabled():
            return checkpoint(_batched_rows, xc, kc, bc, plan, use_reentrant=False)
        return _batched_rows(xc, kc, bc, plan)

    if nb >= batch and ng >= G:
        return run(x, spec_k, bias)
    cig, cog = plan.cig, plan.cog
    out = x.new_empty(batch, plan.out_channels, *plan.spatial)
    for g0 in range(0, G, ng):
        g1 = min(g0 + ng, G)
        kc = spec_k[g0:g1]
        bc = None if bias is None else bias[g0 * cog : g1 * cog]
        for b0 in range(0, batch, nb):
            b1 = min(b0 + nb, batch)
            out[b0:b1, g0 * cog : g1 * cog] = run(x[b0:b1, g0 * cig : g1 * cig], kc, bc)
    return out


# --------------------------------------------------------------------------------------------
# Autograd function and public entry points.
# --------------------------------------------------------------------------------------------


def saved_bytes(plan: FFTPlan, batch: int, dtype: torch.dtype, need_weight: bool = True) -> int:
    """Bytes ``backward_mode="save_spectrum"`` keeps for the backward pass: the input
    spectrum (only when the weight needs a gradient) and, for dense convolutions, the kernel
    spectrum (the depthwise path transforms its kernel again, block by block)."""
    itemsize = torch.empty((), dtype=_complex_dtype(dtype)).element_size()
    freq = math.prod(plan.freq)
    total = 0 if plan.cig == 1 else plan.out_channels * plan.cig * freq * itemsize
    if need_weight:
        total += batch * plan.in_channels * freq * itemsize
    return total


class _FFTConvFunction(torch.autograd.Function):
    """Blocked FFT convolution with a hand-written backward (see module docstring).

    ``mode``: ``"save_spectrum"``, ``"recompute"`` or ``"inference"`` (nothing kept).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        input: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        spectrum: torch.Tensor | None,
        plan: FFTPlan,
        mode: str,
        check_input: bool = False,
    ) -> torch.Tensor:
        need_x = ctx.needs_input_grad[0] and mode != "inference"
        need_w = weight is not None and ctx.needs_input_grad[1] and mode != "inference"
        keep = mode == "save_spectrum" and (need_x or need_w)
        x = input.detach()
        b = None if bias is None else bias.detach()
        w = None if weight is None else weight.detach()
        kept_spec = spectrum
        if plan.cig == 1:
            rows = _rows_per_block(plan, x.element_size(), x.shape[0] * plan.groups)
            kern = _DepthwiseKernel(plan, rows, x.dtype, x.device, w, spectrum)
            out, saved_x = _dw_forward(x, kern, b, plan, keep and need_w, check_input)
        else:
            spec_k = placed_spectrum(w, plan) if spectrum is None else spectrum
            if check_input and not all_finite(x):
                raise ValueError(NONFINITE_INPUT)
            out, saved_x = _dense_forward(x, spec_k, b, plan, save_x=keep and need_w)
            if keep:
                kept_spec = spec_k
        ctx.plan = plan
        ctx.set_materialize_grads(False)
        if need_x or need_w:
            # The input and weight themselves are kept (references, no copy) so that a backward
            # with ``create_graph=True`` can differentiate through them (see ``backward``).
            ctx.save_for_backward(input, weight, saved_x, kept_spec, spectrum)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor | None):  # type: ignore[override]
        plan: FFTPlan = ctx.plan
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if grad_out is None:
            return None, None, None, None, None, None, None
        if (need_x or need_w) and torch.is_grad_enabled():
            # create_graph=True (double backward): the gradients must themselves be
            # differentiable, so they come from the batched path's autograd graph, rebuilt here
            # from the saved input and weight, instead of the blocked hand-written backward.
            x, weight, _, _, spectrum = ctx.saved_tensors
            grad_x, grad_w = _differentiable_grads(
                x, weight, spectrum, grad_out, plan, need_x, need_w
            )
        elif need_x or need_w:
            x, weight, saved_x, kept_spec, _ = ctx.saved_tensors
            spec_k = kept_spec
            x = None if saved_x is not None else x.detach()
            weight = None if spec_k is not None else weight.detach()
            if plan.cig == 1:
                rows = _rows_per_block(
                    plan, grad_out.element_size(), grad_out.shape[0] * plan.groups
                )
                kern = _DepthwiseKernel(plan, rows, grad_out.dtype, grad_out.device, weight, spec_k)
                grad_x, grad_w = _dw_backward(grad_out, x, saved_x, kern, plan, need_x, need_w)
            else:
                if spec_k is None:
                    spec_k = placed_spectrum(weight, plan)
                grad_x, grad_w = _dense_backward(grad_out, x, saved_x, spec_k, plan, need_x, need_w)
        if need_b:
            grad_b = grad_out.sum(dim=(0, *range(2, grad_out.dim())))
        return grad_x, grad_w, grad_b, None, None, None, None


def _differentiable_grads(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    spectrum: torch.Tensor | None,
    grad_out: torch.Tensor,
    plan: FFTPlan,
    need_x: bool,
    need_w: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Input and weight gradients as differentiable functions of ``x``, ``weight`` and
    ``grad_out`` (the vector-Jacobian product of the batched path, ``create_graph=True``)."""
    with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        xs = x if x.requires_grad else x.detach().requires_grad_(need_x)
        ws = None
        if weight is not None:
            ws = weight if weight.requires_grad else weight.detach().requires_grad_(need_w)
        y = batched_fft_conv_planned(xs, ws, None, plan, spectrum=spectrum)
        wanted = [t for t, need in ((xs, need_x), (ws, need_w)) if need]
        grads = list(torch.autograd.grad(y, wanted, grad_out, create_graph=True))
    grad_x = grads.pop(0) if need_x else None
    grad_w = grads.pop(0) if need_w else None
    return grad_x, grad_w


def _check_mode(backward_mode: str) -> None:
    if backward_mode not in _BACKWARD_MODES:
        raise ValueError(
            f"backward_mode must be one of {', '.join(map(repr, _BACKWARD_MODES))}, "
            f"got {backward_mode!r}"
        )


def _resolve_mode(
    mode: str,
    plan: FFTPlan,
    input: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    budget: int | None,
) -> str:
    tensors = [t for t in (input, weight, bias) if t is not None]
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        return "inference"
    if mode != "auto":
        return mode
    limit = DEFAULT_MEMORY_BUDGET if budget is None else budget
    need_w = weight is not None and weight.requires_grad
    nbytes = saved_bytes(plan, input.shape[0], input.dtype, need_w)
    return "save_spectrum" if nbytes <= limit else "recompute"


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the transforms run in: float64 stays, every other floating dtype (float32,
    and float16/bfloat16, whose transforms are missing on CPU and on CUDA need power-of-two
    sizes and lose accuracy) runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _as_fft_dtype(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == compute_dtype(t.dtype) else t.to(compute_dtype(t.dtype))


def engine_path(device: torch.device | str) -> EnginePath:
    """The FFT engine's path for tensors on ``device``: ``"blocked"`` on the CPU (row blocks
    sized for the cache, reused buffers), ``"batched"`` on every other device (one transform
    over all rows: a Python loop over blocks would be launch-bound there) and while
    ``torch.compile`` traces (the batched path is plain differentiable ops, so it stays in
    the graph; the blocked engine is opaque to the compiler)."""
    if torch.compiler.is_compiling():
        return "batched"
    return "blocked" if torch.device(device).type == "cpu" else "batched"


def plan_for(
    input: torch.Tensor,
    weight_shape: Sequence[int],
    groups: int,
    causal: bool,
    circular: Sequence[bool] | None = None,
) -> FFTPlan:
    """:func:`make_plan` for ``input`` ``(N, C_in, *L)`` and a weight of ``weight_shape``
    (on ``circular`` axes the kernel as folded onto one period, :func:`wrap_kernel`)."""
    flags = _circular_flags(circular, input.dim() - 2)
    kernel = tuple(
        min(int(k), int(L)) if c else int(k)
        for k, L, c in zip(weight_shape[2:], input.shape[2:], flags)
    )
    return make_plan(
        input.shape[2:],
        kernel,
        causal=causal,
        groups=groups,
        in_channels=input.shape[1],
        out_channels=weight_shape[0],
        circular=flags,
    )


@torch.compiler.disable
def block_fft_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    backward_mode: BackwardMode = "auto",
    memory_budget: int | None = None,
    circular: Sequence[bool] | None = None,
    check_input: bool = False,
) -> torch.Tensor:
    """Blocked FFT convolution (no argument validation; :func:`ckconv.functional.conv` does it).

    ``memory_budget``: bytes of spectra ``backward_mode="auto"`` may keep for the backward
    pass (default :data:`DEFAULT_MEMORY_BUDGET`).  ``circular``: one flag per spatial axis,
    periodic boundary where true (default: none).  ``check_input``: raise
    ``ValueError(NONFINITE_INPUT)`` if the input holds NaN or inf (for a depthwise
    convolution read off the transforms' zero-frequency bins, without a pass of its own).
    """
    _check_mode(backward_mode)
    weight = wrap_kernel(weight, input.shape[2:], circular)
    plan = plan_for(input, weight.shape, groups, causal, circular)
    dtype = input.dtype
    x, w = _as_fft_dtype(input), _as_fft_dtype(weight)
    b = None if bias is None else _as_fft_dtype(bias)
    mode = _resolve_mode(backward_mode, plan, x, w, b, memory_budget)
    out = _FFTConvFunction.apply(x, w, b, None, plan, mode, check_input)
    return out if out.dtype == dtype else out.to(dtype)


def batched_fft_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    backward_mode: BackwardMode = "auto",
    memory_budget: int | None = None,
    circular: Sequence[bool] | None = None,
) -> torch.Tensor:
    """Batched FFT convolution (no argument validation; :func:`ckconv.functional.conv` does it).

    One ``rfftn`` over all rows with explicit sizes, the kernel spectrum computed once, one
    ``irfftn``; split into chunks only when the temporaries exceed ``memory_budget`` bytes
    (default :data:`BATCHED_CHUNK_BYTES`, see :func:`batched_chunking`).  Autograd keeps the
    input spectrum for the backward pass (``"auto"``, ``"save_spectrum"``) or only the input
    (``"recompute"``: each chunk is recomputed in the backward pass).  Differentiable to any
    order.  ``circular``: one flag per spatial axis, periodic boundary where true.
    """
    _check_mode(backward_mode)
    weight = wrap_kernel(weight, input.shape[2:], circular)
    plan = plan_for(input, weight.shape, groups, causal, circular)
    dtype = input.dtype
    x, w = _as_fft_dtype(input), _as_fft_dtype(weight)
    b = None if bias is None else _as_fft_dtype(bias)
    chunk = batched_chunking(plan, x.shape[0], x.element_size(), memory_budget)
    out = batched_fft_conv_planned(
        x, w, b, plan, chunk=chunk, recompute=backward_mode == "recompute"
    )
    return out if out.dtype == dtype else out.to(dtype)


@dataclass(frozen=True)
class KernelSpectrum:
    """A kernel's spectrum for one input size, reusable while the kernel and size are unchanged.

    Built by :func:`kernel_spectrum`; consumed by :func:`spectrum_conv`.  It is a constant:
    no gradient flows from it back to the kernel (meant for inference / ``torch.no_grad``).
    """

    spectrum: torch.Tensor
    plan: FFTPlan
    kernel_dtype: torch.dtype

    @property
    def spatial_size(self) -> tuple[int, ...]:
        return self.plan.spatial

    @property
    def nbytes(self) -> int:
        return self.spectrum.numel() * self.spectrum.element_size()


def kernel_spectrum(
    weight: torch.Tensor,
    spatial_size: Sequence[int],
    *,
    groups: int = 1,
    causal: bool = False,
    circular: Sequence[bool] | None = None,
) -> KernelSpectrum:
    """Precompute the spectrum of ``weight`` ``(C_out, C_in/groups, *K)`` for inputs of
    spatial size ``spatial_size``, for repeated :func:`spectrum_conv` calls.

    ``circular``: one flag per spatial axis, periodic boundary where true (default: none).

    Examples:
        >>> w = torch.randn(8, 1, 301)
        >>> ks = kernel_spectrum(w, (1000,), groups=8, causal=True)
        >>> x = torch.randn(2, 8, 1000)
        >>> from ckconv.functional.conv import conv
        >>> torch.allclose(spectrum_conv(x, ks), conv(x, w, groups=8, causal=True), atol=1e-4)
        True
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() not in (3, 4, 5):
        raise ValueError(
            "weight must be a tensor of shape (C_out, C_in/groups, *kernel) with 1, 2 or 3 "
            f"kernel dimensions, got {getattr(weight, 'shape', type(weight).__name__)}"
        )
    spatial = tuple(int(s) for s in spatial_size)
    data_dim = weight.dim() - 2
    if len(spatial) != data_dim or any(s < 1 for s in spatial):
        raise ValueError(
            f"spatial_size must be {data_dim} positive ints to match weight of shape "
            f"{tuple(weight.shape)}, got {tuple(spatial_size)}"
        )
    if causal and data_dim != 1:
        raise ValueError(f"causal convolution is 1-D only, got {data_dim} spatial dimensions")
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups != 0:
        raise ValueError(
            f"groups must be a positive int dividing C_out={weight.shape[0]}, got {groups!r}"
        )
    if causal and any(_circular_flags(circular, data_dim)):
        raise ValueError("a causal convolution is zero-padded: it has no circular axis")
    with torch.no_grad():
        weight = wrap_kernel(weight.detach(), spatial, circular)
    plan = make_plan(
        spatial,
        weight.shape[2:],
        causal=causal,
        groups=groups,
        in_channels=weight.shape[1] * groups,
        out_channels=weight.shape[0],
        circular=circular,
    )
    with torch.no_grad():
        spec = placed_spectrum(_as_fft_dtype(weight), plan)
    return KernelSpectrum(spectrum=spec, plan=plan, kernel_dtype=weight.dtype)


def spectrum_conv(
    input: torch.Tensor,
    spectrum: KernelSpectrum,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Convolve ``input`` with a precomputed :class:`KernelSpectrum` (same numbers as
    :func:`ckconv.functional.conv` with the kernel it was built from).

    Gradients flow to ``input`` and ``bias`` but not to the kernel.
    """
    if not isinstance(spectrum, KernelSpectrum):
        raise TypeError(f"spectrum must be a KernelSpectrum, got {type(spectrum).__name__}")
    plan = spectrum.plan
    expected = (plan.in_channels, *plan.spatial)
    if not isinstance(input, torch.Tensor) or tuple(input.shape[1:]) != expected:
        raise ValueError(
            f"input must have shape (N, {', '.join(map(str, expected))}) to match the kernel "
            f"spectrum, got {tuple(getattr(input, 'shape', ()))}"
        )
    if input.shape[0] == 0:
        raise ValueError(f"input must be non-empty, got shape {tuple(input.shape)}")
    if input.dtype != spectrum.kernel_dtype:
        raise TypeError(
            f"input dtype {input.dtype} does not match the kernel spectrum's {spectrum.kernel_dtype}"
        )
    if input.device != spectrum.spectrum.device:
        raise ValueError(
            f"input is on {input.device} but the kernel spectrum is on {spectrum.spectrum.device}"
        )
    if bias is not None and tuple(bias.shape) != (plan.out_channels,):
        raise ValueError(f"bias must have shape ({plan.out_channels},), got {tuple(bias.shape)}")
    dtype = input.dtype
    x = _as_fft_dtype(input)
    b = None if bias is None else _as_fft_dtype(bias)
    if engine_path(x.device) == "batched":
        chunk = batched_chunking(plan, x.shape[0], x.element_size())
        out = batched_fft_conv_planned(x, None, b, plan, spectrum=spectrum.spectrum, chunk=chunk)
    else:
        out = _spectrum_conv_blocked(x, b, spectrum.spectrum, plan)
    return out if out.dtype == dtype else out.to(dtype)


@torch.compiler.disable
def _spectrum_conv_blocked(
    x: torch.Tensor, bias: torch.Tensor | None, spectrum: torch.Tensor, plan: FFTPlan
) -> torch.Tensor:
    mode = _resolve_mode("recompute", plan, x, None, bias, None)
    return _FFTConvFunction.apply(x, None, bias, spectrum, plan, mode)
