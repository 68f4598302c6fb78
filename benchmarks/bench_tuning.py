"""Measurements behind the FFT engine's tuning constants.

Run from the repository root::

    python benchmarks/bench_tuning.py fft-sizes   # -> fft_engine.good_fft_size cost model
    python benchmarks/bench_tuning.py blocks      # -> fft_engine._BLOCK_BYTES
    python benchmarks/bench_tuning.py backward    # -> fft_engine.DEFAULT_MEMORY_BUDGET
    (options: --threads N, --rounds R)

``fft-sizes``: time per row of one ``rfft`` + ``irfft`` pair at even 5-smooth lengths near a
power of two, relative to that power of two (interleaved, median of per-round ratios).

``blocks``: forward time of the blocked engine for several block sizes (bytes of one block's
real padded buffer).

``backward``: forward+backward time and peak memory of the two backward modes over input
sizes; ``auto`` keeps the spectrum when it fits in the memory budget.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
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
from ckconv.functional import fft_engine
from ckconv.functional.fft_engine import block_fft_conv, saved_bytes

SIZE_GROUPS = [
    [8192, 8000, 8100, 8640],
    [16384, 16000, 16200],
    [24576, 24000, 24300, 25000],
    [32768, 32000, 32400, 33750, 34560],
]


def fft_sizes(rounds: int) -> None:
    print("rfft + irfft per row, relative to the first size of each group (float32)")
    for group in SIZE_GROUPS:
        fns = {}
        rows = {}
        for n in group:
            r = max(1, (1 << 20) // (n * 4))
            reps = max(1, (1 << 23) // (r * n))
            x = torch.randn(r, n)
            spec = torch.empty(r, n // 2 + 1, dtype=torch.complex64)
            out = torch.empty(r, n)

            def run(x=x, spec=spec, out=out, n=n, reps=reps):
                for _ in range(reps):
                    torch.fft.rfft(x, out=spec)
                    torch.fft.irfft(spec, n=n, out=out)

            fns[n] = run
            rows[n] = r * reps
        t = interleaved(fns, rounds)
        base = group[0]
        for n in group:
            per_row = median(t[n]) / rows[n]
            rel = median([a / rows[n] / (b / rows[base]) for a, b in zip(t[n], t[base])])
            print(
                f"  n={n:>6}  {per_row * 1e6:8.1f} us/row  x{rel:5.2f} vs {base}"
                f"   (n log n ratio {n * math.log2(n) / (base * math.log2(base)):.2f},"
                f" good_fft_size({n}) = {fft_engine.good_fft_size(n)})"
            )


def blocks(rounds: int) -> None:
    shapes = [(8, 256, 1024, True), (8, 256, 4096, True), (8, 140, 16000, False)]
    sizes = [1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22]
    print("forward time by block size (bytes of the padded real buffer of one block)")
    old = fft_engine._BLOCK_BYTES
    try:
        for B, C, L, causal in shapes:
            x = torch.randn(B, C, L)
            w = torch.randn(C, 1, L)
            fns = {}
            for s in sizes:

                def run(s=s, x=x, w=w, causal=causal, C=C):
                    fft_engine._BLOCK_BYTES = s
                    with torch.no_grad():
                        block_fft_conv(x, w, groups=C, causal=causal)

                fns[s] = run
            t = interleaved(fns, rounds)
            base = 1 << 20
            cells = "  ".join(
                f"{s >> 10}k {fmt_ms(median(t[s])).strip()}ms ({ratio(t, s, base):.2f})"
                for s in sizes
            )
            print(f"  ({B}, {C}, {L}) {'causal' if causal else 'centred'}: {cells}")
    finally:
        fft_engine._BLOCK_BYTES = old


def backward(rounds: int) -> None:
    shapes = [
        (8, 64, 1024),
        (8, 256, 1024),
        (8, 256, 2048),
        (8, 256, 4096),
        (8, 140, 16000),
        (1, 256, 16000),
    ]
    print("forward+backward, causal global kernel: save_spectrum vs recompute")
    print(
        f"  {'shape':<18}{'saved MiB':>10}{'save ms':>9}{'recomp ms':>11}{'recomp/save':>13}"
        f"{'peak save':>11}{'peak recomp':>13}"
    )
    for B, C, L in shapes:
        x = torch.randn(B, C, L, requires_grad=True)
        w = torch.randn(C, 1, L, requires_grad=True)
        g = torch.randn(B, C, L)
        plan = fft_engine.make_plan(
            (L,), (L,), causal=True, groups=C, in_channels=C, out_channels=C
        )
        mib = saved_bytes(plan, B, torch.float32) / 2**20

        def make(mode, x=x, w=w, g=g, C=C, reset=True):
            def run():
                if reset:
                    x.grad = None
                    w.grad = None
                block_fft_conv(x, w, groups=C, causal=True, backward_mode=mode).backward(g)

            return run

        fns = {m: make(m) for m in ("save_spectrum", "recompute")}
        t = interleaved(fns, rounds)
        nbytes = x.numel() * 4
        pk = {}
        for m in fns:
            x.grad = None
            w.grad = None
            pk[m] = peak_bytes(make(m, reset=False)) / nbytes
        print(
            f"  {(B, C, L)!s:<18}{mib:>10.0f}{fmt_ms(median(t['save_spectrum'])):>9}"
            f"{fmt_ms(median(t['recompute'])):>11}{ratio(t, 'recompute', 'save_spectrum'):>13.2f}"
            f"{pk['save_spectrum']:>10.1f}x{pk['recompute']:>12.1f}x"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["fft-sizes", "blocks", "backward"])
    add_timing_args(p, rounds=7)
    args = p.parse_args()
    threads = apply_timing_args(args)
    print(f"torch {torch.__version__}, {threads} thread(s), {args.rounds} rounds")
    t0 = time.perf_counter()
    {"fft-sizes": fft_sizes, "blocks": blocks, "backward": backward}[args.what](args.rounds)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
