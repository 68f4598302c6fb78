"""The whole separable FlexConv layer against its bare convolution.

Run from the repository root (also called by ``bench_conv.py``)::

    python benchmarks/bench_layer.py [--quick] [--threads N]

``layer`` is ``ckconv.nn.FlexConv(C, C, separable=True)``: kernel net (MAGNet) on the cropped
grid, Gaussian mask, depthwise convolution, pointwise mixer and bias.  ``bare sep conv`` is
the same separable convolution with fixed tensors: ``ckconv.functional.conv`` (depthwise,
a kernel of the same cropped size) followed by one ``baddbmm`` for mixer and bias -- what the
layer costs without generating its kernel; ``layer / bare sep conv`` is the layer's overhead
(target <= 1.25).  ``dw conv`` is the depthwise convolution alone (the pointwise mixer is a
``C x C`` GEMM over every position, comparable in cost to the FFT convolution at C = 140).
``ccnn-ref layer`` is the same kernel followed by the reference CCNN convolution and an
``einsum`` mixer.  The mask width is set so
the kernel is global (``sigma = 1``: the FFT path) and, for the 1D shape, also left at the
papers' initial 0.075 (a small cropped kernel: the direct path).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import add_timing_args, apply_timing_args, fmt_ms, interleaved, median, ratio
from baselines import ccnn_reference_style
from ckconv.functional import conv


def _flexconv():
    try:
        from ckconv.nn import FlexConv
    except ImportError as e:  # the layer lives in another part of the package
        print(f"\n(layer benchmark skipped: cannot import ckconv.nn.FlexConv: {e})")
        return None
    return FlexConv


def one_layer(B: int, C: int, spatial: tuple[int, ...], sigma: float | None, rounds: int):
    FlexConv = _flexconv()
    if FlexConv is None:
        return None
    torch.manual_seed(0)
    d = len(spatial)
    layer = FlexConv(C, C, d, kernel_size="same", input_size=spatial, separable=True)
    if sigma is not None:
        with torch.no_grad():
            layer.kernel_mask.sigma.fill_(sigma)
    x = torch.randn(B, C, *spatial, requires_grad=True)
    with torch.no_grad():
        w0 = layer.kernel(input_size=spatial)
    w = w0.detach().clone().requires_grad_(True)
    mixer = layer.mixer.detach().clone().requires_grad_(True)
    bias = None if layer.bias is None else layer.bias.detach().clone().requires_grad_(True)
    grad = torch.randn(B, C, *spatial)

    def ref_layer():
        k = layer.kernel(input_size=spatial)
        y = ccnn_reference_style(x, k, mixer)
        return y if bias is None else y + bias.view(1, -1, *([1] * d))

    def bare_sep():
        y = conv(x, w, groups=C).flatten(2)
        m = mixer.expand(B, -1, -1)
        out = torch.bmm(m, y) if bias is None else torch.baddbmm(bias.view(1, -1, 1), m, y)
        return out.view(B, C, *spatial)

    fns = {
        "layer": lambda: layer(x),
        "bare sep conv": bare_sep,
        "dw conv": lambda: conv(x, w, groups=C),
        "ccnn-ref layer": ref_layer,
    }
    with torch.no_grad():
        err = float((fns["layer"]() - fns["ccnn-ref layer"]()).abs().max())
    params = [x, w, mixer, *list(layer.parameters())] + ([bias] if bias is not None else [])

    def fb(f):
        def run():
            for p in params:
                p.grad = None
            f().backward(grad)

        return run

    def ng(f):
        def run():
            with torch.no_grad():
                return f()

        return run

    fwd = interleaved({k: ng(f) for k, f in fns.items()}, rounds)
    fwdbwd = interleaved({k: fb(f) for k, f in fns.items()}, rounds)
    ks = "x".join(map(str, w0.shape[2:]))
    label = f"({B}, {C}, {'x'.join(map(str, spatial))}), kernel {ks}"
    print(f"\nSeparable FlexConv layer {label}   [layer vs ccnn-ref layer max abs diff {err:.1e}]")
    ref = "bare sep conv"
    print(f"  {'candidate':<16}{'fwd ms':>9}{'/ bare sep':>12}{'fwd+bwd ms':>12}{'/ bare sep':>12}")
    for k in fns:
        print(
            f"  {k:<16}{fmt_ms(median(fwd[k])):>9}{ratio(fwd, k, ref):>12.2f}"
            f"{fmt_ms(median(fwdbwd[k])):>12}{ratio(fwdbwd, k, ref):>12.2f}"
        )
    return label, ratio(fwd, "layer", ref), ratio(fwdbwd, "layer", ref)


def layer_table(quick: bool, rounds: int) -> dict[str, float] | None:
    """Run the layer benchmarks; returns ``{label: layer / bare sep conv}`` (fwd, fwd+bwd)."""
    cases = (
        [(8, 140, (4096,), 1.0), (8, 140, (4096,), None)]
        if quick
        else [
            (8, 140, (16000,), 1.0),
            (8, 140, (16000,), None),
            (8, 140, (64, 64), 1.0),
        ]
    )
    out: dict[str, float] = {}
    for B, C, spatial, sigma in cases:
        r = one_layer(B, C, spatial, sigma, rounds)
        if r is None:
            return None
        label, f, fb = r
        out[f"fwd {label}"] = f
        out[f"fwd+bwd {label}"] = fb
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    add_timing_args(p)
    args = p.parse_args()
    threads = apply_timing_args(args)
    rounds = args.rounds or (3 if args.quick else 7)
    print(f"torch {torch.__version__}, {threads} thread(s), float32, {rounds} rounds")
    res = layer_table(args.quick, rounds)
    if res:
        print("\nlayer / bare separable conv (target <= 1.25):")
        for k, v in res.items():
            print(f"  {k:<60} {v:.2f}x")


if __name__ == "__main__":
    main()
