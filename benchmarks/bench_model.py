"""A whole CCNN-4,140 training step: ckconv against a reference-structured implementation.

Run from the repository root::

    python benchmarks/bench_model.py [--quick] [--batch B] [--threads N] [--clock cpu]

One training step (zero grad, forward, cross-entropy, backward, AdamW step) of the causal
CCNN-4,140 at the shapes of two CCNN paper tasks:

* ``sCIFAR10``: 3 channels, L = 1024 (omega_0 2386.49, dropout 0.0, as its config);
* ``SC_raw``: 1 channel, L = 16000 (omega_0 1295.61, dropout 0.2).

``ckconv`` is :class:`ckconv.models.CCNN`; ``reference`` is ``baselines.ReferenceCCNN``: the
same modules, with every FlexConv computed as the reference CCNN code structures it (kernel
net on the full grid, mask afterwards, the textbook FFT convolution at size 2L, ``einsum``
mixer).  Both start from the same parameters; their logits are checked to agree before timing.
The mask width is the papers' initial 0.075 and, as a second row, 0.5 (a kernel covering
the last quarter of the sequence, as masks grow in training).

Steps run interleaved in one process (load from other processes hits both alike); the table
gives median step times, the median of the per-round ratios ``reference / ckconv`` (> 1:
ckconv is faster), and the peak memory of one step (``_harness.peak_bytes``).  The batch is
8 by default on the CPU (the configs train with 50 and 20; ``--batch`` changes it).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    add_timing_args,
    apply_timing_args,
    device_peak_bytes,
    fmt_ms,
    interleaved,
    median,
    ratio,
    synchronize,
)
from baselines import ReferenceCCNN
from ckconv.models import CCNN

#: (name, input channels, length, omega_0, dropout) of the timed tasks.
TASKS = [
    ("sCIFAR10", 3, 1024, 2386.49, 0.0),
    ("SC_raw", 1, 16000, 1295.61, 0.2),
]


def build_pair(in_channels, length, omega_0, dropout, sigma, *, device, hidden=140, blocks=4):
    """The ckconv CCNN-4,140 (causal) and its reference-structured twin with equal weights."""
    torch.manual_seed(0)
    model = CCNN(
        in_channels,
        10,
        input_size=length,
        hidden_channels=hidden,
        num_blocks=blocks,
        kernel_hidden=32,
        causal=True,
        kernel_omega_0=omega_0,
        dropout=dropout,
        device=device,
    )
    with torch.no_grad():
        for block in model.blocks:
            block.conv.kernel_mask.sigma.fill_(sigma)
    reference = ReferenceCCNN(copy.deepcopy(model))
    return model, reference


def training_step(model, x, target, *, autocast_dtype=None):
    """A function running one optimiser step of ``model`` on ``(x, target)``."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    device = x.device

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), target)
        loss.backward()
        opt.step()
        synchronize(device)
        return loss.detach()

    return step


def check_agree(model, reference, x) -> float:
    """Relative difference of the two models' logits (eval mode: dropout off)."""
    model.eval()
    reference.eval()
    with torch.no_grad():
        a, b = model(x), reference(x)
    model.train()
    reference.train()
    diff = float((a - b).norm() / b.norm())
    if diff > 1e-3:
        raise AssertionError(f"ckconv and the reference CCNN disagree: {diff:.2e}")
    return diff


def run(
    tasks, batch, sigmas, rounds, device, hidden=140, blocks=4, autocast_dtype=None, report=None
):
    """Rows ``(task, sigma, ms ckconv, ms reference, ratio, peak ckconv, peak reference)``;
    ``report(row)`` is called as each row is measured."""
    rows = []
    for name, channels, length, omega_0, dropout in tasks:
        for sigma in sigmas:
            model, reference = build_pair(
                channels, length, omega_0, dropout, sigma, device=device, hidden=hidden,
                blocks=blocks,
            )  # fmt: skip
            x = torch.randn(batch, channels, length, device=device)
            target = torch.randint(0, 10, (batch,), device=device)
            check_agree(model, reference, x)
            steps = {
                "ckconv": training_step(model, x, target, autocast_dtype=autocast_dtype),
                "reference": training_step(reference, x, target, autocast_dtype=autocast_dtype),
            }
            times = interleaved(steps, rounds)
            peaks = {k: device_peak_bytes(f, device) for k, f in steps.items()}
            rows.append(
                (
                    name,
                    sigma,
                    median(times["ckconv"]),
                    median(times["reference"]),
                    ratio(times, "reference", "ckconv"),
                    peaks["ckconv"],
                    peaks["reference"],
                )
            )
            if report is not None:
                report(rows[-1])
    return rows


def print_header(batch, title) -> None:
    print(f"\n{title} (batch {batch}; ratio = reference / ckconv, median of per-round ratios)")
    print(f"{'task':10s} {'sigma':>6s} {'ckconv ms':>10s} {'ref ms':>10s} {'ratio':>6s} "
          f"{'ckconv MB':>10s} {'ref MB':>10s}", flush=True)  # fmt: skip


def print_row(row) -> None:
    name, sigma, t_ck, t_ref, r, m_ck, m_ref = row
    print(f"{name:10s} {sigma:6.3f} {fmt_ms(t_ck):>10s} {fmt_ms(t_ref):>10s} {r:6.2f} "
          f"{m_ck / 2**20:10.1f} {m_ref / 2**20:10.1f}", flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes: a smoke test")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tasks", default="sCIFAR10,SC_raw", help="comma-separated task names")
    add_timing_args(p, rounds=5)
    args = p.parse_args()
    threads = apply_timing_args(args)
    print(f"torch {torch.__version__}, {threads} thread(s), clock {args.clock}")
    tasks = [t for t in TASKS if t[0] in args.tasks.split(",")]
    if args.quick:
        print_header(2, "CCNN (8 channels, 2 blocks) training step, L = 64 (quick)")
        tasks = [(n, c, 64, w, d) for n, c, _, w, d in tasks]
        run(tasks, 2, (0.075, 0.5), args.rounds or 2, "cpu", hidden=8, blocks=2, report=print_row)
        return
    print_header(args.batch, "CCNN-4,140 training step on the CPU")
    run(tasks, args.batch, (0.075, 0.5), args.rounds, "cpu", report=print_row)


if __name__ == "__main__":
    main()
