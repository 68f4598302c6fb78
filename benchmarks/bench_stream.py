"""Streaming throughput vs recomputing the offline forward on the growing prefix.

A deployed causal model that must answer after every new sample has two options: keep a
:func:`ckconv.deploy.stream` state and feed each chunk, or re-run the offline forward on the
whole prefix seen so far.  This script measures both in samples per second at several stream
positions (the prefix recompute gets slower as the prefix grows; streaming does not, once the
prefix is longer than the kernels), for a CKCNN (dense global causal kernels, 1000 taps) and a
causal CCNN (separable FlexConvs; their learned crop keeps kernels short).

It also compares the baked model's forward with the continuous one (no kernel networks at
inference), and with ``--calibrate`` times :class:`ckconv.deploy.StreamingConv`'s direct and
block-FFT paths against each other to check the per-chunk choice (``_FFT_COST`` in
``ckconv/deploy/streaming.py``).

Usage::

    python benchmarks/bench_stream.py [--threads 1] [--quick] [--calibrate]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from ckconv.deploy import StreamingConv, bake, stream
from ckconv.deploy import streaming as stream_mod
from ckconv.models import CCNN, CKCNN
from ckconv.nn import CKConv


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _models(quick: bool) -> dict[str, tuple[torch.nn.Module, int]]:
    torch.manual_seed(0)
    length = 400 if quick else 1000
    ckcnn = CKCNN(1, 10, input_size=length, hidden_channels=30, norm="layer", head="last")
    ccnn = CCNN(1, 10, input_size=length, hidden_channels=64, num_blocks=4, causal=True,
                head="last", mask_init_sigma=0.1)  # fmt: skip
    return {f"ckcnn (K={length}, dense)": (ckcnn.eval(), length),
            "ccnn causal (FlexConv)": (ccnn.eval(), length)}  # fmt: skip


def bench_streaming(quick: bool) -> None:
    positions = [250, 1000, 4000] if not quick else [100, 400, 1600]
    print("\n== streaming vs recompute-on-prefix (batch 1, samples/s) ==")
    print("   recompute at L: 1 / time(offline forward on a prefix of L samples)")
    print("   stream chunk T: T / time(step of T samples) once the prefix is longer than K")
    header = f"{'model':<24}{'kernels':>12}" + "".join(
        f"{'recomp@' + str(p):>13}" for p in positions
    )
    header += "".join(f"{'stream T=' + str(t):>14}" for t in (1, 16, 256))
    print(header)
    for name, (model, _) in _models(quick).items():
        taps = [c.kernel().shape[-1] for c in model.modules() if isinstance(c, CKConv)]
        row = f"{name:<24}{f'{min(taps)}-{max(taps)}':>12}"
        with torch.no_grad():
            for p in positions:
                x = torch.randn(1, 1, p)
                t = _median_time(lambda m=model, x=x: m(x), repeats=3 if quick else 5)
                row += f"{1.0 / t:>13.1f}"
        s = stream(model)
        warm = torch.randn(1, 1, max(taps) + 8)
        for chunk in (1, 16, 256):
            s.reset()
            s.step(warm)  # past the kernels: the steady state
            x = torch.randn(1, 1, chunk)
            steps = max(3, (64 if not quick else 16) // chunk)
            t = _median_time(lambda s=s, x=x: s.step(x), repeats=steps)
            row += f"{chunk / t:>14.1f}"
        print(row)


def bench_baked(quick: bool) -> None:
    print("\n== baked vs continuous forward (batch 8, ms per forward) ==")
    for name, (model, length) in _models(quick).items():
        baked = bake(model, length)
        x = torch.randn(8, 1, length)
        with torch.no_grad():
            t_model = _median_time(lambda m=model, x=x: m(x), repeats=5)
            t_baked = _median_time(lambda m=baked, x=x: m(x), repeats=5)
        print(f"{name:<24} continuous {t_model * 1e3:8.1f}  baked {t_baked * 1e3:8.1f}  "
              f"speed-up {t_model / t_baked:5.2f}x")  # fmt: skip


def calibrate(quick: bool) -> None:
    print("\n== StreamingConv: direct vs block FFT per chunk (depthwise, 64 channels, batch 1) ==")
    print("   implied: the _FFT_COST that would make the cost model match (chunks >= 256 only:")
    print("   below that both paths are dominated by the same fixed per-call overhead)")
    print(
        f"{'K':>6}{'T':>7}{'direct ms':>11}{'fft ms':>9}{'auto':>8}{'auto/best':>11}{'implied':>9}"
    )
    implied, lost = [], []
    kernels = (64, 256, 1024) if quick else (64, 256, 1024, 4096)
    chunks = (1, 16, 64, 256, 1024) if quick else (1, 4, 16, 64, 256, 1024, 4096)
    for k in kernels:
        conv = CKConv(64, 64, kernel_size=k, causal=True, separable=True).eval()
        direct = StreamingConv.from_conv(conv, method="direct")
        fft = StreamingConv.from_conv(conv, method="fft")
        auto = StreamingConv.from_conv(conv)
        for t in chunks:
            x = torch.randn(1, 64, t)
            state = direct.initial_state(1)
            with torch.no_grad():
                td = _median_time(lambda c=direct, x=x, s=state: c(x, s), repeats=7)
                tf = _median_time(lambda c=fft, x=x, s=state: c(x, s), repeats=7)
            pick = "fft" if auto.chooses_fft(t) else "direct"
            lost.append((tf if pick == "fft" else td) / min(td, tf))
            col = ""
            if t >= 256:
                model_ratio = fft._fft_cost(t) / stream_mod._FFT_COST / fft._direct_cost(t)
                implied.append((tf / td) / model_ratio)
                col = f"{implied[-1]:.2f}"
            print(
                f"{k:>6}{t:>7}{td * 1e3:>11.3f}{tf * 1e3:>9.3f}{pick:>8}{lost[-1]:>11.2f}{col:>9}"
            )
    print(f"auto's pick vs the faster path: median {statistics.median(lost):.2f}x, worst "
          f"{max(lost):.2f}x; median implied _FFT_COST {statistics.median(implied):.2f} "
          f"(in use: {stream_mod._FFT_COST})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--calibrate", action="store_true", help="time direct vs FFT chunks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32")
    bench_streaming(args.quick)
    bench_baked(args.quick)
    if args.calibrate:
        calibrate(args.quick)


if __name__ == "__main__":
    main()
