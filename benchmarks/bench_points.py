"""Speed and memory of the point-cloud operators.

Run from the repository root::

    python benchmarks/bench_points.py --quick      # about a minute
    python benchmarks/bench_points.py              # the issue's sizes (a few minutes)
    python benchmarks/bench_points.py --threads 1  # pin the thread count on a busy box

Tables:

1. **kNN**: ``ckconv.functional.knn`` with the blocked torch backend against the scipy backend
   (``scipy.spatial.cKDTree`` per cloud, ``workers=-1``), median wall time over interleaved
   rounds, for growing clouds (queries = support points).  Both return the same neighbours
   (checked before timing).  The ratio column is torch / scipy (> 1: scipy faster); it sets
   :data:`ckconv.functional.neighbors.SCIPY_MIN_PAIRS`, above which ``backend="auto"`` uses scipy.
2. **PointConv layer** at ``B x N`` points, ``K`` neighbours, ``C_in = C_out = C``: forward and
   forward+backward time (neighbours precomputed, so the layer alone), dense (the default MLP
   kernel net) and separable (PointFlexConv, MAGNet), in one chunk, in checkpointed chunks of a
   fixed size and with the default ``chunk_size="auto"``.  At the full size the one-chunk
   MAGNet layer is skipped: MAGNet keeps about 14 tensors of
   ``pairs x 4 x hidden`` values for its backward pass (~55x the unit below, ~14 GB here).  Memory: "peak" is the largest amount of memory
   allocated and not yet freed during one forward+backward call (outputs, saved tensors,
   gradients, temporaries -- not the inputs and weights that existed before), read from the
   PyTorch profiler's CPU allocator trace (``_harness.peak_bytes``); "largest" is the largest
   single tensor any operator returned (forward or backward).  Both are printed in MB and as a
   multiple of ``B*N*K*max(C, h)`` float32 values (``h`` = the kernel net's last hidden width).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_ms, interleaved, median, peak_bytes, ratio, set_threads
from ckconv.functional.neighbors import knn, scipy_available
from ckconv.nn import PointConv, PointFlexConv

MB = 2**20


class LargestTensor(TorchDispatchMode):
    """Largest number of elements of any tensor an operator returns."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


def bench_knn(sizes: list[tuple[int, int]], k: int, rounds: int) -> None:
    print(f"\n== kNN, k={k}: torch (blocked) vs scipy cKDTree ==")
    print(f"{'B':>3} {'N':>7} {'torch ms':>10} {'scipy ms':>10} {'torch/scipy':>12}")
    for b, n in sizes:
        pts = torch.rand(b, n, 3)
        a = knn(pts, pts, k, backend="torch")
        s = knn(pts, pts, k, backend="scipy")
        same = (a.index.sort(-1).values == s.index.sort(-1).values).float().mean().item()
        times = interleaved(
            {
                "torch": lambda pts=pts: knn(pts, pts, k, backend="torch"),
                "scipy": lambda pts=pts: knn(pts, pts, k, backend="scipy"),
            },
            rounds,
        )
        print(
            f"{b:>3} {n:>7} {fmt_ms(median(times['torch'])):>10} {fmt_ms(median(times['scipy'])):>10}"
            f" {ratio(times, 'torch', 'scipy'):>12.2f}   (same neighbours: {same:.4f})"
        )


def bench_layer(b: int, n: int, k: int, c: int, rounds: int, chunk: int, big: bool) -> None:
    print(f"\n== PointConv layer: B={b}, N={n}, K={k}, C_in=C_out={c}, chunk_size={chunk} ==")
    pos = torch.rand(b, n, 3)
    x = torch.randn(b, c, n, requires_grad=True)
    configs = [
        ("dense MLP 1 chunk", PointConv(c, c, num_neighbors=k, scale=0.1, chunk_size=None)),
        ("dense MLP chunked", PointConv(c, c, num_neighbors=k, scale=0.1, chunk_size=chunk)),
        ("dense MLP auto", PointConv(c, c, num_neighbors=k, scale=0.1)),
        (
            "sep MAGNet chunked",
            PointFlexConv(c, c, num_neighbors=k, scale=0.1, separable=True, chunk_size=chunk),
        ),
    ]
    if not big:  # in one chunk a MAGNet keeps ~14 (pairs x 4 hidden) tensors for its backward
        configs.insert(
            3,
            (
                "sep MAGNet 1 chunk",
                PointFlexConv(c, c, num_neighbors=k, scale=0.1, separable=True, chunk_size=None),
            ),
        )
    nb = configs[0][1].find_neighbors(pos)
    print(
        f"{'layer':<22} {'fwd ms':>9} {'fwd+bwd ms':>11} {'peak MB':>9} {'peak/u':>7}"
        f" {'largest MB':>11} {'largest/u':>10}"
    )
    for name, layer in configs:
        hidden = layer.kernel_net.output_linear.in_features
        unit = b * n * k * max(c, hidden)

        def forward(layer=layer):
            with torch.no_grad():
                return layer(x, pos, neighbors=nb)

        def train_step(layer=layer):
            layer(x, pos, neighbors=nb).square().mean().backward()

        times = interleaved({"fwd": forward, "fwdbwd": train_step}, rounds)
        peak = peak_bytes(train_step)
        probe = LargestTensor()
        with probe:
            train_step()
        print(
            f"{name:<22} {fmt_ms(median(times['fwd'])):>9} {fmt_ms(median(times['fwdbwd'])):>11}"
            f" {peak / MB:>9.0f} {peak / (4 * unit):>7.2f} {probe.numel * 4 / MB:>11.0f}"
            f" {probe.numel / unit:>10.2f}"
        )
    print(
        f"(u = B*N*K*max(C, h) float32 values = {b * n * k * max(c, 32) * 4 / MB:.0f} MB for h <= C)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", choices=["knn", "layer"], default=None, help="one table only")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    print(f"torch {torch.__version__}, {threads} threads, scipy: {scipy_available()}")
    if args.quick:
        knn_sizes = [(1, 256), (1, 1024), (8, 1024), (1, 4096)]
        layer = (2, 1024, 16, 32)
        rounds = 3
    else:
        knn_sizes = [(1, 256), (8, 256), (1, 1024), (8, 1024), (1, 4096), (8, 4096), (1, 16384)]
        layer = (8, 4096, 32, 64)
        rounds = 3
    if scipy_available() and args.only != "layer":
        bench_knn(knn_sizes, 16, rounds)
        bench_knn(knn_sizes[-2:], 32, rounds)
    if args.only == "knn":
        return
    if args.quick:
        bench_layer(*layer, rounds=rounds, chunk=256, big=False)
    else:
        bench_layer(*layer, rounds=2, chunk=512, big=True)


if __name__ == "__main__":
    main()
