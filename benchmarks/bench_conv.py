"""Speed and memory of ``ckconv.functional.conv`` against the usual ways to convolve.

Run from the repository root::

    python benchmarks/bench_conv.py --quick      # about a minute
    python benchmarks/bench_conv.py              # the full set, a few minutes
    python benchmarks/bench_conv.py --threads 1  # pin the thread count (less noise on a busy box)

Everything runs in one process; the candidates of a table run interleaved (one call of each
per round) and we print median times and the median of the per-round ratios, so load from
other processes hits all candidates alike.  Candidates (see ``baselines.py``):

* ``ckconv`` -- ``ckconv.functional.conv`` (the blocked FFT engine, ``method="auto"``);
  causal to compare with the causal textbook formula, centred to compare with the CCNN style;
  ``save``/``recomp`` are its two backward modes forced, plain ``ckconv`` is ``"auto"``;
* ``textbook`` -- ``irfft(rfft(u, n=2L) * rfft(k, n=2L), n=2L)[..., :L]`` (S4 / Hyena), and
  its N-D form with sizes ``2L`` (the "unblocked FFT" of the 2D table);
* ``ccnn-ref`` -- the reference CCNN padding scheme (odd kernel, padded sizes that are often
  not 5-smooth, no ``n=``);
* ``direct`` -- ``F.conv{1,2}d`` depthwise (skipped when it would take more than a few
  seconds: global kernels make it quadratic);
* ``floor`` -- ``irfft(rfft(u))``: one forward and one inverse transform of the bare input.
* ``limit`` (1D tables) -- the physical limit of the depthwise convolution on this CPU: the
  in-cache cost of one ``rfft`` + ``irfft`` per row at the engine's FFT size, timed warm on a
  16-row block (the faster of ``out=`` buffers and fresh results, picked in warm-up) and
  repeated ``ceil(B C / 16)`` times, so it runs interleaved with the candidates; forward +
  backward needs two transforms more per row with a saved spectrum, so its limit is twice
  that (``limit x2``).  ``ratio to limit`` columns are the median per-round
  ``candidate time / limit time`` (< 1.3 forward and < 1.6 forward+backward are the targets).

Allocator: ``--malloc tuned`` sets glibc's ``M_MMAP_THRESHOLD`` to 1 GiB and
``M_TRIM_THRESHOLD`` to 2 GiB (the same as starting Python with ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` in the environment), so large tensors come from recycled heap
memory instead of fresh pages (page faults); ``--malloc thp`` keeps glibc's thresholds but
restarts the script with ``THP_MEM_ALLOC_ENABLE=1``, which makes torch ask for transparent
huge pages for allocations of 2 MiB and more (on Linux with THP in ``madvise`` or ``always``
mode): fresh pages still come zeroed from the kernel, but with ~16x fewer page faults (a
32 MiB tensor: ~8200 faults with 4 KiB pages, ~530 measured with THP), but on a VM that
returns freed memory to its host (virtio-balloon free page reporting, as on the project's
machine) a huge page allocated seconds after large frees can cost 7-15x a 4 KiB one (see
docs/performance.md, "Huge pages"); the default leaves glibc's settings.  The header says which one ran: the textbook formula's large temporaries
depend on it most.

Threads: on a machine shared with other busy processes, use ``--threads 1 --clock cpu``.
PyTorch's multi-threaded ops meet at a barrier that waits a whole scheduler slice whenever
one of their threads has lost its core; the blocked engine issues a few hundred small
parallel ops per call (the textbook formula about five large ones), so with more threads
than free cores it can become many times slower (measured here with 2 threads at load ~5
on 2 cores: 0.05-0.3x the textbook's speed instead of ~3x).  Give torch only the cores that
are actually free.

Every kernel is as long as the input (a global kernel, the CCNN/CKConv case).  Before timing,
each candidate's output is checked against ``ckconv``'s (the max relative error is printed).

Memory: "peak" is the largest amount of memory allocated during one forward+backward call
and not yet freed (output, saved tensors, gradients, temporaries; the input, kernel and
incoming gradient existed before and are not counted), read from the PyTorch profiler's CPU
allocator trace; printed as a multiple of the input tensor's size.  See ``_harness.py``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    add_timing_args,
    apply_timing_args,
    fmt_ms,
    interleaved,
    median,
    peak_bytes,
    ratio,
)
from baselines import (
    ccnn_reference_style,
    direct,
    fft_floor,
    textbook_causal,
    textbook_nd,
)
from ckconv.functional import conv
from ckconv.functional.fft_engine import make_plan


@dataclass
class Candidate:
    name: str
    forward: Callable[[], torch.Tensor]
    leaves: list[torch.Tensor] = field(default_factory=list)
    check_against: str | None = None  # name of the candidate whose output it must equal
    backward: bool = True


@dataclass
class Result:
    fwd: dict[str, list[float]]
    fwdbwd: dict[str, list[float]]
    peak: dict[str, float]
    errors: dict[str, float]


def _fwd_bwd(c: Candidate, grad: torch.Tensor, reset: bool = True) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        if reset:
            for t in c.leaves:
                t.grad = None
        y = c.forward()
        y.backward(grad)
        return y

    return run


def run_table(
    title: str,
    candidates: list[Candidate],
    ref: str,
    input_bytes: int,
    rounds: int,
    memory: bool,
    limit: tuple[Callable[[], None], str] | None = None,
) -> Result:
    """Check, time (forward, forward+backward) and measure one set of candidates; with a
    ``limit`` (see :func:`transform_limit`) it runs interleaved with them too."""
    outputs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for c in candidates:
            outputs[c.name] = c.forward()
    errors = {}
    for c in candidates:
        if c.check_against is not None:
            a, b = outputs[c.name], outputs[c.check_against]
            errors[c.name] = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
    grad = torch.randn_like(outputs[ref])
    del outputs

    def no_grad(f: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.no_grad():
                return f()

        return run

    fwd_fns: dict[str, Callable[[], object]] = {c.name: no_grad(c.forward) for c in candidates}
    with_bwd = [c for c in candidates if c.backward]
    fb_fns: dict[str, Callable[[], object]] = {c.name: _fwd_bwd(c, grad) for c in with_bwd}
    if limit is not None:
        limit_fn = limit[0]

        def limit_x2() -> None:
            limit_fn()
            limit_fn()

        fwd_fns["limit"] = limit_fn
        fb_fns["limit"] = limit_x2
    fwd = interleaved(fwd_fns, rounds)
    fwdbwd = interleaved(fb_fns, rounds)
    peak: dict[str, float] = {}
    if memory:
        for c in with_bwd:
            for t in c.leaves:  # reset outside the measurement: old gradients are not freed in it
                t.grad = None
            peak[c.name] = peak_bytes(_fwd_bwd(c, grad, reset=False)) / input_bytes
            for t in c.leaves:
                t.grad = None

    print(f"\n{title}")
    if limit is not None:
        print(
            f"  limit: {fmt_ms(median(fwd['limit'])).strip()} ms forward "
            f"({limit[1]}), {fmt_ms(median(fwdbwd['limit'])).strip()} ms forward+backward "
            "(twice that)"
        )
    lim = "  /limit fwd, fwd+bwd" if limit is not None else ""
    print(
        f"  {'candidate':<16}{'fwd ms':>9}{'x ' + ref:>14}{'fwd+bwd ms':>12}{'x ' + ref:>14}"
        f"{'peak (x in)':>13}{'max rel err':>13}{lim}"
    )
    for c in candidates:
        f_ms = fmt_ms(median(fwd[c.name]))
        f_r = f"{ratio(fwd, ref, c.name):.2f}"
        if c.name in fwdbwd:
            b_ms = fmt_ms(median(fwdbwd[c.name]))
            b_r = f"{ratio(fwdbwd, ref, c.name):.2f}" if ref in fwdbwd else "-"
        else:
            b_ms, b_r = "-", "-"
        pk = f"{peak[c.name]:.1f}" if c.name in peak else "-"
        err = f"{errors[c.name]:.1e}" if c.name in errors else "-"
        to_lim = ""
        if limit is not None:
            lf = f"{ratio(fwd, c.name, 'limit'):.2f}"
            lb = f"{ratio(fwdbwd, c.name, 'limit'):.2f}" if c.name in fwdbwd else "-"
            to_lim = f"{lf:>11}{lb:>8}"
        print(f"  {c.name:<16}{f_ms:>9}{f_r:>14}{b_ms:>12}{b_r:>14}{pk:>13}{err:>13}{to_lim}")
    return Result(fwd, fwdbwd, peak, errors)


def transform_limit(rows: int, n: int) -> tuple[Callable[[], None], str]:
    """The physical limit of ``rows`` row convolutions at FFT size ``n`` (see the module
    docstring): a function that runs ``ceil(rows / 16)`` warm ``rfft`` + ``irfft`` pairs on
    one 16-row block, and how its transforms were called."""
    block = torch.randn(16, n)
    spec = torch.empty(16, n // 2 + 1, dtype=torch.complex64)
    out = torch.empty(16, n)
    reps = -(-rows // 16)

    def with_out() -> None:
        torch.fft.rfft(block, out=spec)
        torch.fft.irfft(spec, n=n, out=out)

    def fresh() -> None:
        torch.fft.irfft(torch.fft.rfft(block), n=n)

    best = {}
    for name, f in (("out= buffers", with_out), ("fresh results", fresh)):
        times = interleaved({name: f}, 5)[name]
        best[name] = (median(times), f)
    name = min(best, key=lambda k: best[k][0])
    f = best[name][1]

    def run() -> None:
        for _ in range(reps):
            f()

    return run, f"16-row block at n={n}, {name}, x{reps}"


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_(True)


def _direct_ok(macs: float, budget: float) -> bool:
    return macs <= budget


def table_1d(B: int, C: int, L: int, rounds: int, memory: bool, direct_budget: float) -> Result:
    torch.manual_seed(0)
    u = torch.randn(B, C, L)
    w0 = torch.randn(C, 1, L) / math.sqrt(L)
    x = _leaf(u)
    w_causal, w_centred = _leaf(w0), _leaf(w0)
    k_tb = _leaf(w0[:, 0].flip(-1))  # textbook convolves: flip the cross-correlation kernel
    w_ref = _leaf(w0)
    w_save, w_rec = _leaf(w0), _leaf(w0)
    cands = [
        Candidate("ckconv causal", lambda: conv(x, w_causal, groups=C, causal=True), [x, w_causal]),
        Candidate(
            "  save",
            lambda: conv(x, w_save, groups=C, causal=True, backward_mode="save_spectrum"),
            [x, w_save],
        ),
        Candidate(
            "  recomp",
            lambda: conv(x, w_rec, groups=C, causal=True, backward_mode="recompute"),
            [x, w_rec],
        ),
        Candidate("textbook", lambda: textbook_causal(x, k_tb), [x, k_tb], "ckconv causal"),
        Candidate("ckconv centred", lambda: conv(x, w_centred, groups=C), [x, w_centred]),
        Candidate("ccnn-ref", lambda: ccnn_reference_style(x, w_ref), [x, w_ref], "ckconv centred"),
    ]
    if _direct_ok(B * C * L * L, direct_budget):
        w_d = _leaf(w0)
        cands.append(Candidate("direct", lambda: direct(x, w_d), [x, w_d], "ckconv centred"))
    cands.append(Candidate("floor", lambda: fft_floor(x), [x], None, backward=False))
    title = f"1D depthwise, global kernel: (B, C, L) = ({B}, {C}, {L})"
    if not _direct_ok(B * C * L * L, direct_budget):
        title += f"   [direct skipped: {B * C * L * L / 1e9:.0f} GMAC]"
    n = make_plan((L,), (L,), causal=True).n[0]  # the causal engine's FFT size
    return run_table(
        title,
        cands,
        "textbook",
        u.numel() * u.element_size(),
        rounds,
        memory,
        limit=transform_limit(B * C, n),
    )


def table_odd(B: int, C: int, L: int, rounds: int) -> dict[str, float]:
    """Same candidates at L and L+1 (odd), interleaved: the odd-length penalty."""
    torch.manual_seed(0)
    fns = {}
    for n in (L, L + 1):
        u = torch.randn(B, C, n)
        w = torch.randn(C, 1, n) / math.sqrt(n)
        k = w[:, 0].flip(-1).contiguous()
        fns[f"ckconv causal {n}"] = lambda u=u, w=w: conv(u, w, groups=C, causal=True)
        fns[f"ckconv centred {n}"] = lambda u=u, w=w: conv(u, w, groups=C)
        fns[f"textbook {n}"] = lambda u=u, k=k: textbook_causal(u, k)
        fns[f"ccnn-ref {n}"] = lambda u=u, w=w: ccnn_reference_style(u, w)
    with torch.no_grad():
        times = interleaved(fns, rounds)
    print(f"\nOdd length: (B, C) = ({B}, {C}), L = {L} vs {L + 1}, forward")
    print(f"  {'candidate':<16}{f'ms @{L}':>11}{f'ms @{L + 1}':>11}{'odd/even':>10}")
    pen = {}
    for name in ("ckconv causal", "ckconv centred", "textbook", "ccnn-ref"):
        a, b = f"{name} {L}", f"{name} {L + 1}"
        pen[name] = ratio(times, b, a)
        print(
            f"  {name:<16}{fmt_ms(median(times[a])):>11}{fmt_ms(median(times[b])):>11}"
            f"{pen[name]:>10.2f}"
        )
    return pen


def table_2d(B: int, C: int, S: int, rounds: int, memory: bool, direct_budget: float) -> Result:
    torch.manual_seed(0)
    u = torch.randn(B, C, S, S)
    w0 = torch.randn(C, 1, S, S) / S
    x = _leaf(u)
    w_ck, w_tb, w_ref = _leaf(w0), _leaf(w0), _leaf(w0)
    cands = [
        Candidate("ckconv", lambda: conv(x, w_ck, groups=C), [x, w_ck]),
        Candidate("unblocked", lambda: textbook_nd(x, w_tb), [x, w_tb], "ckconv"),
        Candidate("ccnn-ref", lambda: ccnn_reference_style(x, w_ref), [x, w_ref], "ckconv"),
    ]
    macs = B * C * S**4
    if _direct_ok(macs, direct_budget):
        w_d = _leaf(w0)
        cands.append(Candidate("direct", lambda: direct(x, w_d), [x, w_d], "ckconv"))
    cands.append(Candidate("floor", lambda: fft_floor(x), [x], None, backward=False))
    title = f"2D depthwise, global kernel: (B, C, H, W) = ({B}, {C}, {S}, {S})"
    if not _direct_ok(macs, direct_budget):
        title += f"   [direct skipped: {macs / 1e9:.0f} GMAC]"
    return run_table(title, cands, "unblocked", u.numel() * u.element_size(), rounds, memory)


def set_malloc(mode: str) -> str:
    """Apply ``--malloc`` and describe the allocator in use."""
    env = [k for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ]
    if mode == "tuned":
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers (malloc.h)
        if not (
            libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 2**31 - 1)
        ):
            return "glibc malloc, mallopt failed (default thresholds)"
        return "glibc malloc, mmap threshold 1 GiB, trim threshold 2 GiB (--malloc tuned)"
    if mode == "thp":
        if os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":
            # torch reads the variable once, at its first large allocation: start again with it
            env_thp = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1"}
            os.execve(sys.executable, [sys.executable, *sys.argv], env_thp)
        return (
            "glibc malloc, default thresholds, torch allocations >= 2 MiB on transparent huge "
            "pages (THP_MEM_ALLOC_ENABLE=1, --malloc thp)"
        )
    if env:
        return f"glibc malloc with {', '.join(env)} from the environment"
    return "glibc malloc, default thresholds (blocks >= 32 MiB are fresh pages every call)"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer shapes and rounds (~1 min)")
    add_timing_args(p)
    p.add_argument("--no-memory", action="store_true", help="skip the profiler memory runs")
    p.add_argument(
        "--malloc",
        choices=["default", "tuned", "thp"],
        default="default",
        help="tuned: glibc mmap/trim thresholds raised; thp: torch's large allocations on "
        "transparent huge pages (see the module docstring)",
    )
    p.add_argument(
        "--only", default="1d,odd,2d,layer", help="comma list of sections: 1d,odd,2d,layer"
    )
    args = p.parse_args(argv)
    threads = apply_timing_args(args)
    allocator = set_malloc(args.malloc)
    sections = set(args.only.split(","))
    rounds = args.rounds or (3 if args.quick else 7)
    memory = not args.no_memory
    direct_budget = 3e8 if args.quick else 3e9
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count() or 1
    if threads > 1 and load > cores - threads + 0.5:
        print(
            f"note: load average {load:.1f} on {cores} cores with {threads} torch threads; "
            "timings will suffer from oversubscription (see --threads 1 --clock cpu)"
        )
    print(
        f"torch {torch.__version__}, {threads} thread(s), {args.clock} clock, float32, "
        f"{rounds} rounds, allocator: {allocator}; "
        "ratios = median over rounds of (reference time / candidate time), > 1 is faster"
    )

    summary: list[tuple[str, str, bool]] = []

    if "1d" in sections:
        shapes = (
            [(8, 256, 1024), (8, 256, 4096)]
            if args.quick
            else [(8, 256, 1024), (8, 256, 4096), (8, 140, 16000), (1, 256, 16000)]
        )
        for B, C, L in shapes:
            r = table_1d(B, C, L, rounds, memory, direct_budget)
            if B > 1 and L >= 4096:
                f = ratio(r.fwd, "ckconv causal", "limit")
                fb = ratio(r.fwdbwd, "ckconv causal", "limit")
                summary.append((f"fwd / limit ({B},{C},{L})", f"{f:.2f}x (<= 1.3)", f <= 1.3))
                summary.append(
                    (f"fwd+bwd / limit x2 ({B},{C},{L})", f"{fb:.2f}x (<= 1.6)", fb <= 1.6)
                )
            if B == 1:
                f = ratio(r.fwd, "textbook", "ckconv causal")
                fb = ratio(r.fwdbwd, "textbook", "ckconv causal")
                summary.append((f"fwd vs textbook ({B},{C},{L})", f"{f:.2f}x (>= 1)", f >= 1.0))
                summary.append(
                    (f"fwd+bwd vs textbook ({B},{C},{L})", f"{fb:.2f}x (>= 1)", fb >= 1.0)
                )
            elif L >= 4096:
                f = ratio(r.fwd, "textbook", "ckconv causal")
                fb = ratio(r.fwdbwd, "textbook", "ckconv causal")
                summary.append((f"fwd vs textbook ({B},{C},{L})", f"{f:.2f}x (>= 2.5)", f >= 2.5))
                summary.append(
                    (f"fwd+bwd vs textbook ({B},{C},{L})", f"{fb:.2f}x (>= 2)", fb >= 2.0)
                )
            if memory:
                pk = r.peak["ckconv causal"]
                summary.append((f"peak fwd+bwd ({B},{C},{L})", f"{pk:.1f}x input (<= 5)", pk <= 5))

    if "odd" in sections:
        B, C = (4, 64) if args.quick else (8, 140)
        pen = table_odd(B, C, 16000, max(rounds, 7))
        for name in ("ckconv causal", "ckconv centred"):
            summary.append(
                (f"odd-length penalty {name}", f"{pen[name]:.2f}x (<= 1.1)", pen[name] <= 1.1)
            )

    if "2d" in sections:
        sizes = [64] if args.quick else [32, 64, 96]
        for S in sizes:
            r = table_2d(8, 140, S, rounds, memory, direct_budget)
            if S >= 64:
                f = ratio(r.fwd, "unblocked", "ckconv")
                summary.append((f"2D {S}x{S} fwd vs unblocked", f"{f:.2f}x (>= 4)", f >= 4.0))
                fb = ratio(r.fwdbwd, "unblocked", "ckconv")
                summary.append((f"2D {S}x{S} fwd+bwd vs unblocked", f"{fb:.2f}x", True))

    if "layer" in sections:
        from bench_layer import layer_table

        res = layer_table(args.quick, rounds)
        if res is not None:
            for shape, r in res.items():
                summary.append(
                    (
                        f"FlexConv layer / bare sep conv {shape}",
                        f"{r:.2f}x (<= 1.25)",
                        r <= 1.25,
                    )
                )

    print("\nTargets")
    for name, value, ok in summary:
        print(f"  [{'ok' if ok else 'MISS'}] {name:<44} {value}")


if __name__ == "__main__":
    main()
