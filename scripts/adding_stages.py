"""Diagnose a CKCNN on the adding problem: which stage of the solution it has (issue 13).

A CKCNN that solves the adding problem (measured at L = 100) gates ``v_t * m_t`` at every step
in its first block (through the block's pointwise shortcut and ReLU), then sums the gated values
over time with near-flat kernels in its last block and reads the sum at the last step. This
script trains a CKCNN with a plain loop (optional) and reports, on fresh sequences:

- ``gate``: R^2 of ``v_t * m_t`` from the first block's output at each step (linear fit);
- ``conv``/``norm``: held-out R^2 of the target from the last block's second CKConv output at
  the last step, before and after its norm;
- ``out``: the same from the last block's output (after its ReLU and shortcut);
- per channel, the last block's normalised output at the last step: mean and spread across
  sequences (a channel whose values are all below zero passes nothing through the ReLU).

Examples (one torch thread is plenty)::

    python scripts/adding_stages.py --length 100 --omega 14.55 --steps 3000 --save l100.pt
    python scripts/adding_stages.py --length 1000 --omega 2.03 --load run/checkpoints/last.ckpt
    python scripts/adding_stages.py --length 1000 --omega 2.03 --init reference --steps 8000
    python scripts/adding_stages.py --length 1000 --omega 2.03 --weight-init torch \
        --bias-init reference --steps 8000
"""

from __future__ import annotations

import argparse
import time

import torch

from ckconv.data.synthetic import adding_problem_batch
from ckconv.models import CKCNN


def r2(features: torch.Tensor, target: torch.Tensor, fit: slice, score: slice) -> float:
    """R^2 of a least-squares linear fit (with intercept) on rows ``fit``, scored on ``score``,
    floored at 0."""
    design = torch.cat([features, torch.ones(features.shape[0], 1)], 1).double()
    target = target.double().reshape(-1, 1)
    solution = torch.linalg.lstsq(design[fit], target[fit], driver="gelsd").solution
    residual = target[score] - design[score] @ solution
    # below 0 (worse than the mean, e.g. an ill-conditioned fit on near-constant features) is
    # reported as 0: no linear information
    return max(0.0, 1.0 - (residual.pow(2).mean() / target[score].var()).item())


def run(model: CKCNN, x: torch.Tensor, **modules: torch.nn.Module):
    """``model(x)`` without gradients, and the output of each named module during it."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
        for name, module in modules.items()
    ]
    try:
        with torch.no_grad():
            pred = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return pred, seen


def report(model: CKCNN, length: int, n: int = 2000) -> None:
    model.eval()
    x, y = adding_problem_batch(n, length, torch.Generator().manual_seed(7))
    last = model.blocks[-1]
    pred, seen = run(
        model, x, first=model.blocks[0], conv=last.conv2, norm=last.norm2, out=last
    )  # fmt: skip
    h0 = seen["first"]
    gated = (x[:, 0] * x[:, 1])[:200].reshape(-1)
    steps = h0[:200].permute(0, 2, 1).reshape(-1, h0.shape[1])
    half = slice(0, n // 2), slice(n // 2, n)
    norm_last = seen["norm"][..., -1]
    print(
        f"MSE {torch.mean((pred - y) ** 2).item():.5f} | "
        f"gate {r2(steps, gated, slice(None), slice(None)):.4f} | "
        f"conv {r2(seen['conv'][..., -1], y, *half):.4f} | "
        f"norm {r2(norm_last, y, *half):.4f} | out {r2(seen['out'][..., -1], y, *half):.4f}"
    )
    print(
        "last-step norm output, mean per channel:",
        [round(v, 2) for v in norm_last.mean(0).tolist()],
    )
    print("spread across sequences (sd):", [round(v, 4) for v in norm_last.std(0).tolist()])


def reference_init_(model: CKCNN) -> None:
    """Re-draw the parts of ``model`` outside its kernel nets as the public CKConv code's
    adding-problem model starts: the readout N(0, 0.01) with bias 0, GroupNorm eps 1e-12.

    Its kernel nets' init is the library's ``kernel_weight_init="torch"`` with
    ``kernel_bias_init="reference"`` (``--init reference`` builds the model with both).  (Facts
    read off that code; the code itself is not copied.)
    """
    with torch.no_grad():
        for block in model.blocks:
            for norm in (block.norm1, block.norm2):
                norm.eps = 1e-12
        model.head.linear.weight.normal_(0.0, 0.01)
        model.head.linear.bias.zero_()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, required=True)
    parser.add_argument("--omega", type=float, required=True, help="kernel_omega_0")
    parser.add_argument("--norm", default="group")
    parser.add_argument("--bias-init", default=None, help="kernel_bias_init")
    parser.add_argument("--weight-init", default=None, help="kernel_weight_init")
    parser.add_argument(
        "--init",
        choices=("ckconv", "reference"),
        default="ckconv",
        help="reference: the CKConv reference code's effective init (kernel nets: "
        "--weight-init torch --bias-init reference; its readout and GroupNorm eps)",
    )
    parser.add_argument("--hidden", type=int, default=25)
    parser.add_argument("--steps", type=int, default=0, help="plain-loop training steps first")
    parser.add_argument("--load", help="an app checkpoint (.ckpt) or a saved state dict")
    parser.add_argument("--save", help="where to save the state dict after training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.init == "reference":
        if (args.weight_init, args.bias_init) != (None, None):
            parser.error("--init reference sets --weight-init and --bias-init itself")
        args.weight_init, args.bias_init = "torch", "reference"
    torch.manual_seed(args.seed)
    model = CKCNN(
        2, 1, input_size=args.length, hidden_channels=args.hidden, num_blocks=2,
        kernel_omega_0=args.omega, norm=args.norm, kernel_bias_init=args.bias_init,
        kernel_weight_init=args.weight_init,
    )  # fmt: skip
    if args.init == "reference":
        reference_init_(model)
    if args.load:
        state = torch.load(args.load, weights_only=True, map_location="cpu")
        if "state_dict" in state:  # an app checkpoint: the model's entries are under "model."
            state = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
        model.load_state_dict(state)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = torch.Generator().manual_seed(args.seed + 1)
    x_val, y_val = adding_problem_batch(1000, args.length, torch.Generator().manual_seed(123))
    start = time.time()
    for step in range(1, args.steps + 1):
        model.train()
        x, y = adding_problem_batch(32, args.length, batches)
        loss = torch.mean((model(x) - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            model.eval()
            pred, seen = run(model, x_val, norm=model.blocks[-1].norm2)
            val = torch.mean((pred - y_val) ** 2).item()
            last = seen["norm"][..., -1]
            spread, means = last.std(0), last.mean(0)
            print(
                f"step {step} val MSE {val:.5f} | last-step norm output: spread median "
                f"{spread.median().item():.4f} max {spread.max().item():.4f}, "
                f"{int((means > 0).sum())} of {means.numel()} channel means above 0 "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    if args.save:
        torch.save(model.state_dict(), args.save)
    report(model, args.length)


if __name__ == "__main__":
    main()
