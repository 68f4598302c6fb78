"""ckconv on a GPU: the textbook FFT formula, ckconv and FlashFFTConv at the papers' shapes.

Run from the repository root::

    python benchmarks/bench_gpu.py [--device cuda] [--quick] [--rounds N]
    python benchmarks/bench_gpu.py --device cpu --quick     # smoke test (runs in the tests)

Rows (one table; every time a median over interleaved rounds, synchronised on the device):

* depthwise long convolutions, kernel as long as the input: 1D causal at
  ``(B, C, L)`` in ``(8|32, 140|380, 1024|4096|16000)`` and 2D centred at ``(8, 140, S, S)``,
  ``S`` in 32, 64, 128; float32 and bfloat16 inputs; forward (``fwd``) and forward+backward
  (``fwd+bwd``, gradients for input and kernel).  ``base`` is ``baselines.textbook_causal`` /
  ``baselines.textbook_nd`` (in bfloat16: cast to float32, transform, cast back -- cuFFT's half
  transforms need power-of-two sizes, 2L is not one at L = 16000); ``ckconv`` is
  ``ckconv.functional.conv(..., method="fft")``; ``flash`` is ``flashfftconv.FlashFFTConv``
  when it is importable (1D, bfloat16 only: its inputs are fp16/bf16, its FFT sizes powers of
  two; "-" otherwise).
* one training step of the causal CCNN-4,140 at sCIFAR10 (3 x 1024, batch 50) and SC_raw
  (1 x 16000, batch 20) shapes (``bench_model.py``'s step: ``base`` is its reference-structured
  CCNN), float32 and bf16 autocast.

Columns: milliseconds, ``base/ckconv`` and ``flash/ckconv`` time ratios (> 1: ckconv is
faster), and peak memory of one call (``torch.cuda.max_memory_allocated`` above what existed
before; on the CPU ``_harness.peak_bytes``) with the ``base/ckconv`` memory ratio.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import device_peak_bytes, fmt_ms, interleaved, median, ratio, synchronize
from baselines import textbook_causal, textbook_nd
from bench_model import TASKS, build_pair, check_agree, training_step
from ckconv.functional import conv

SHAPES_1D = [(b, c, n) for b in (8, 32) for c in (140, 380) for n in (1024, 4096, 16000)]
SHAPES_2D = [(8, 140, s, s) for s in (32, 64, 128)]
QUICK_1D = [(2, 4, 64)]
QUICK_2D = [(2, 4, 8, 8)]
MODEL_BATCH = {"sCIFAR10": 50, "SC_raw": 20}


def flash_conv(length: int, dtype: torch.dtype, device: torch.device):
    """A FlashFFTConv for causal convolutions of ``length`` samples, or None."""
    if device.type != "cuda" or dtype not in (torch.float16, torch.bfloat16):
        return None
    try:
        from flashfftconv import FlashFFTConv
    except ImportError:
        return None
    size = 2 ** math.ceil(math.log2(2 * length))  # a linear convolution: FFT size >= 2L
    return FlashFFTConv(size, dtype=dtype).to(device)


def candidates(
    shape, dtype, device
) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """``name -> f(u, w)`` computing the same same-size depthwise convolution of ``u``
    ``(B, C, *L)`` with the ckconv kernel ``w`` ``(C, 1, *L)``."""
    causal = len(shape) == 3
    half = dtype != torch.float32

    def base(u, w):
        uf, wf = (u.float(), w.float()) if half else (u, w)
        y = textbook_causal(uf, wf[:, 0].flip(-1)) if causal else textbook_nd(uf, wf)
        return y.to(dtype)

    def ours(u, w):
        return conv(u, w, groups=u.shape[1], causal=causal, method="fft")

    fns = {"base": base, "ckconv": ours}
    flash = flash_conv(shape[-1], dtype, device) if causal else None
    if flash is not None:
        # FlashFFTConv convolves (its kernel is ckconv's flipped) and takes a float32 kernel
        fns["flash"] = lambda u, w: flash(u.contiguous(), w[:, 0].flip(-1).float().contiguous())
    return fns


def op_rows(shapes, dtypes, passes, rounds, device):
    rows = []
    for shape in shapes:
        for dtype in dtypes:
            torch.manual_seed(0)
            u0 = torch.randn(*shape, device=device).to(dtype)
            w0 = (
                torch.randn(shape[1], 1, *shape[2:], device=device) / math.prod(shape[2:]) ** 0.5
            ).to(dtype)
            grad = torch.randn(*shape, device=device).to(dtype)
            fns = candidates(shape, dtype, device)
            want = fns["base"](u0.float(), w0.float()).float()
            tol = 1e-4 if dtype == torch.float32 else 3e-2
            for name, f in fns.items():
                got = f(u0, w0).float()
                err = float((got - want).norm() / want.norm())
                if err > tol:
                    raise AssertionError(f"{name} disagrees with the textbook formula: {err:.2e}")
            for pass_ in passes:
                calls = {}
                for name, f in fns.items():
                    if pass_ == "fwd":

                        def call(f=f, u0=u0, w0=w0):
                            with torch.no_grad():
                                y = f(u0, w0)
                            synchronize(device)
                            return y
                    else:
                        u = u0.clone().requires_grad_(True)
                        w = w0.clone().requires_grad_(True)

                        def call(f=f, u=u, w=w, grad=grad):
                            u.grad = w.grad = None
                            f(u, w).backward(grad)
                            synchronize(device)

                    calls[name] = call
                times = interleaved(calls, rounds)
                peaks = {k: device_peak_bytes(c, device) for k, c in calls.items()}
                label = "x".join(map(str, shape))
                rows.append((label, _dtype_name(dtype), pass_, times, peaks))
    return rows


def model_rows(tasks, dtypes, rounds, device, quick):
    rows = []
    for dtype in dtypes:
        cast = None if dtype == torch.float32 else dtype
        for task in tasks:
            name = task[0]
            if quick:
                batch, task, kw = (
                    2,
                    (name, task[1], 64, task[3], task[4]),
                    {"hidden": 8, "blocks": 2},
                )
            else:
                batch, kw = MODEL_BATCH[name], {}
            got = _model_times(task, batch, rounds, device, cast, kw)
            rows.append((f"CCNN step {name} B={batch}", _dtype_name(dtype), "train", *got))
    return rows


def _model_times(task, batch, rounds, device, cast, kw):

    _, channels, length, omega_0, dropout = task
    model, reference = build_pair(channels, length, omega_0, dropout, 0.075, device=device, **kw)
    x = torch.randn(batch, channels, length, device=device)
    target = torch.randint(0, 10, (batch,), device=device)
    check_agree(model, reference, x)
    steps = {
        "base": training_step(reference, x, target, autocast_dtype=cast),
        "ckconv": training_step(model, x, target, autocast_dtype=cast),
    }
    times = interleaved(steps, rounds)
    peaks = {k: device_peak_bytes(f, device) for k, f in steps.items()}
    return times, peaks


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def print_table(rows, device) -> None:
    mb = 2.0**20
    print(f"\n{device}: times in ms (median), ratios > 1: ckconv faster / smaller")
    head = (f"{'case':28s} {'dtype':5s} {'pass':7s} {'base':>9s} {'ckconv':>9s} {'flash':>9s} "
            f"{'base/ck':>8s} {'flash/ck':>8s} {'base MB':>9s} {'ck MB':>9s} {'mem b/ck':>8s}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for case, dtype, pass_, times, peaks in rows:
        t = {k: median(v) for k, v in times.items()}
        flash = fmt_ms(t["flash"]) if "flash" in t else f"{'-':>8s}"
        flash_ratio = f"{ratio(times, 'flash', 'ckconv'):8.2f}" if "flash" in t else f"{'-':>8s}"
        mem_ratio = peaks["base"] / peaks["ckconv"] if peaks["ckconv"] > 0 else float("nan")
        print(f"{case:28s} {dtype:5s} {pass_:7s} {fmt_ms(t['base']):>9s} {fmt_ms(t['ckconv']):>9s} "
              f"{flash:>9s} {ratio(times, 'base', 'ckconv'):8.2f} {flash_ratio} "
              f"{peaks['base'] / mb:9.1f} {peaks['ckconv'] / mb:9.1f} {mem_ratio:8.2f}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else None)
    p.add_argument("--quick", action="store_true", help="tiny shapes, 1 round: a smoke test")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (default 10, quick 1)")
    p.add_argument("--no-model", action="store_true", help="skip the CCNN training steps")
    args = p.parse_args()
    if args.device is None:
        p.error("no CUDA device here: pass --device cpu (with --quick for a smoke test)")
    device = torch.device(args.device)
    rounds = args.rounds or (1 if args.quick else 10)
    dtypes = (torch.float32, torch.bfloat16)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))  # fmt: skip
    shapes = (QUICK_1D + QUICK_2D) if args.quick else (SHAPES_1D + SHAPES_2D)
    rows = op_rows(shapes, dtypes, ("fwd", "fwd+bwd"), rounds, device)
    if not args.no_model:
        rows += model_rows(TASKS, dtypes, rounds, device, args.quick)
    print_table(rows, device)


if __name__ == "__main__":
    main()
