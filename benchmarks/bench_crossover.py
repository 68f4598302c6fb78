"""Where direct convolution stops beating the FFT: the crossover behind ``method="auto"``.

Run from the repository root::

    python benchmarks/bench_crossover.py [--quick] [--threads N] [--rounds R] [--device D]

``--device`` (default ``cpu``) runs every family on that device (``cuda``, ``cuda:1``, ``mps``,
...), synchronising it around each timed call; the limits ``method="auto"`` uses there are
``ckconv.functional.crossover_for(device)`` (the CPU's measured table, the CUDA defaults
for other kinds until measured).  At the end the script prints, per family, the largest
kernel measured at which direct was still at least as fast as the FFT (median of rounds):
the numbers to put into ``ckconv.functional.conv``'s table for that device kind.

For each family (1D/2D/3D x depthwise/dense) and kernel size, ``F.convNd`` (direct) and the
blocked FFT engine run interleaved (forward+backward, the training cost; forward alone is
printed too), and ``auto`` is ``ckconv.functional.conv(method="auto")``.  ``auto / best`` is
the median per-round ratio of auto's time to the faster of the two; the library constant
``ckconv.functional.conv.DIRECT_MAX_TAPS`` is read from these tables (the largest effective
kernel, in taps, for which direct was still at least as fast).

Measured on the development machine (2 vCPU AMD EPYC shared with other jobs, torch 2.13 CPU,
float32, ``--threads 1 --clock cpu --rounds 7``; median ms, direct / fft):

* training (forward+backward):
  1D depthwise (8, 140, 4096): K=7 52/67, 9 55/65, 11 62/60, 13 69/61, 15 73/62, 19 85/59;
  1D dense (8, 32, 1024): K=15 18/27, 21 25/28, 23 27/28, 31 35/29;
  2D depthwise (8, 140, 64x64): 3x3 46/104, 5x5 150/129, 7x7 200/101;
  2D dense (8, 16, 32x32): 9x9 12/16, 11x11 17/20, 13x13 22/19, 15x15 71/19;
  3D depthwise (2, 32, 16^3): 3^3 15/18, 5^3 52/24;  3D dense (2, 8, 16^3): 5^3 10/13,
  7^3 25/13.
* inference (forward, no grad):
  1D depthwise: K=127 27/31, 151 29/29, 153 30/30, 191 35/27;
  1D dense: K=47 9/13, 55 11/16, 57 10/10, 63 11/10;
  2D depthwise: 15x15 39/41, 17x17 56/52, 19x19 56/47, 21x21 64/47;
  2D dense: 11x11 5.4/6.5, 13x13 7.2/6.7, 15x15 9.4/6.7;
  3D depthwise: 7^3 4.3/7.0, 9^3 8.8/7.2;  3D dense: 5^3 3.2/5.5, 7^3 7.1/5.4.

The limits sit where the two are about equal, so ``auto`` is within noise (a few %) of the
faster choice at every size above; on this shared machine single rounds still vary by
+-10-20%, so an occasional ``auto / best`` above 1.1 right at a limit is noise (re-run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    add_timing_args,
    apply_timing_args,
    fmt_ms,
    interleaved,
    median,
    synchronize,
)
from ckconv.functional import conv, crossover_for, select_method

FAMILIES = {
    # name: (data_dim, depthwise, (B, C, *spatial), sides for training, sides for inference)
    "1d-depthwise": (
        1,
        True,
        (8, 140, 4096),
        [7, 9, 11, 13, 15, 19, 23],
        [63, 95, 127, 151, 153, 191, 255],
    ),
    "1d-dense": (1, False, (8, 32, 1024), [9, 15, 21, 23, 31], [31, 47, 55, 57, 63, 95]),
    "2d-depthwise": (2, True, (8, 140, 64, 64), [3, 5, 7, 9], [13, 15, 17, 19, 21]),
    "2d-dense": (2, False, (8, 16, 32, 32), [7, 9, 11, 13, 15], [11, 13, 15, 17]),
    "3d-depthwise": (3, True, (2, 32, 16, 16, 16), [3, 5, 7], [5, 7, 9, 11]),
    "3d-dense": (3, False, (2, 8, 16, 16, 16), [3, 5, 7], [5, 7, 9]),
}
QUICK = {
    "1d-depthwise": (1, True, (8, 140, 2048), [9, 13, 15, 19], [95, 151, 153, 191]),
    "2d-depthwise": (2, True, (8, 64, 48, 48), [3, 5, 7], [13, 15, 17]),
}


def run_family(
    name: str, spec, rounds: int, training: bool, device: torch.device
) -> tuple[list[tuple[float, int]], int | None]:
    """Time direct and FFT per kernel size; returns ``(auto / best, taps)`` per size and the
    largest taps at which direct was still at least as fast (``None``: never)."""
    data_dim, depthwise, shape, train_sides, infer_sides = spec
    sides = train_sides if training else infer_sides
    C = shape[1]
    kind = "depthwise" if depthwise else "dense"
    limit = crossover_for(device).limit(data_dim, kind, training)
    what = "forward+backward" if training else "forward (no grad)"
    print(f"\n{name} {what}: (B, C, *spatial) = {shape}, limit {limit} taps on {device}")
    print(f"  {'kernel':>9}{'taps':>7}{'direct ms':>11}{'fft ms':>9}{'auto':>8}{'auto/best':>11}")
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device, requires_grad=training)
    grad = torch.randn(*shape, device=device)
    rows = []
    direct_wins: int | None = None
    for k in sides:
        groups = C if depthwise else 1
        w = torch.randn(
            C, 1 if depthwise else C, *([k] * data_dim), device=device, requires_grad=training
        )
        auto = select_method(x.shape, w.shape, groups=groups, needs_grad=training, device=device)

        def make(method, w=w, groups=groups):
            def run():
                if training:
                    x.grad = None
                    w.grad = None
                    conv(x, w, groups=groups, method=method).backward(grad)
                else:
                    with torch.no_grad():
                        conv(x, w, groups=groups, method=method)
                synchronize(device)

            return run

        t = interleaved({m: make(m) for m in ("direct", "fft")}, rounds)
        rel = median([t[auto][i] / min(t["direct"][i], t["fft"][i]) for i in range(rounds)])
        rows.append((rel, k**data_dim))
        if median(t["direct"]) <= median(t["fft"]):
            direct_wins = k**data_dim
        print(
            f"  {'x'.join([str(k)] * data_dim):>9}{k**data_dim:>7}"
            f"{fmt_ms(median(t['direct'])):>11}{fmt_ms(median(t['fft'])):>9}"
            f"{auto:>8}{rel:>11.2f}"
        )
    return rows, direct_wins


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    add_timing_args(p)
    p.add_argument("--only", default=None, help="comma list of families")
    p.add_argument("--device", default="cpu", help="torch device to measure (cpu, cuda, ...)")
    args = p.parse_args()
    threads = apply_timing_args(args)
    device = torch.device(args.device)
    rounds = args.rounds or (3 if args.quick else 5)
    fams = QUICK if args.quick else FAMILIES
    if args.only:
        fams = {k: FAMILIES[k] for k in args.only.split(",")}
    print(
        f"torch {torch.__version__}, device {device}, {threads} CPU thread(s), float32, "
        f"{rounds} rounds"
    )
    worst = []
    measured: dict[tuple[str, str], int | None] = {}
    for training in (True, False):
        what = "fwd+bwd" if training else "fwd"
        for name, spec in fams.items():
            rows, wins = run_family(name, spec, rounds, training, device)
            measured[(name, what)] = wins
            for rel, taps in rows:
                worst.append((rel, name, taps, what))
    rel, name, taps, what = max(worst)
    print(f"\nworst auto / best: {rel:.2f} ({name} {what}, {taps} taps); target <= 1.10")
    print(f"\nlargest kernel (taps) where direct was at least as fast, on {device}:")
    for (name, what), wins in measured.items():
        note = "direct never won" if wins is None else f"{wins}"
        print(f"  {name:<14}{what:<9}{note}")


if __name__ == "__main__":
    main()
