"""``ckconv fit-kernel``: the kernel-fitting study of the CKConv paper (Figs. 4 and 7) from the
command line; the study itself is :mod:`ckconv.studies.fit_kernel`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ckconv.studies.fit_kernel import (
    DEFAULT_NETS,
    DEFAULT_TARGETS,
    FIT_NETS,
    TARGETS,
    FitSettings,
    FitStudy,
    format_fit_table,
    plot_fit_study,
    run_fit_study,
)

__all__ = ["main_fit_kernel"]


def _write_csv(study: FitStudy, path: Path) -> None:
    lines = ["net,target,mse,params,seconds"]
    for (net, target), r in study.results.items():
        lines.append(f"{net},{target},{r.mse:.6e},{r.params},{r.seconds:.3f}")
    path.write_text("\n".join(lines) + "\n")


def _command(args: argparse.Namespace) -> str:
    """The ``ckconv fit-kernel`` command line that repeats this study (every setting explicit)."""
    return (
        f"ckconv fit-kernel --targets {' '.join(args.targets)} --nets {' '.join(args.nets)} "
        f"--length {args.length} --steps {args.steps} --lr {args.lr:g} --hidden {args.hidden} "
        f"--magnet-hidden {args.magnet_hidden} --mlp-norm {args.mlp_norm} "
        f"--siren-omega {args.siren_omega:g} --magnet-omega {args.magnet_omega:g} "
        f"--rff-omega {args.rff_omega:g} --seed {args.seed}"
    )


def main_fit_kernel(argv: list[str] | None = None) -> int:
    """``ckconv fit-kernel``: fit the kernel networks to the target kernels, print the MSE table
    and write the grid plot (CKConv Figs. 4 and 7)."""
    d = FitSettings()
    parser = argparse.ArgumentParser(
        prog="ckconv fit-kernel",
        description=(
            "Fit kernel networks (ReLU/LeakyReLU/Swish MLPs with default and uniform-knot init, "
            "SIREN, MAGNet, RFF) to long target kernels; print the MSE table and write a grid "
            "plot of targets vs fits (CKConv paper, Figs. 4 and 7)."
        ),
        epilog=(
            f"targets: {', '.join(TARGETS)}.  networks: {', '.join(FIT_NETS)}.  The defaults "
            "take a few CPU minutes."
        ),
    )
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS), metavar="NAME",
                        help="targets to fit (default: all)")  # fmt: skip
    parser.add_argument("--nets", nargs="+", default=list(DEFAULT_NETS), metavar="NAME",
                        help="networks to fit (default: all but gelu)")  # fmt: skip
    parser.add_argument("--length", type=int, default=d.length, help="samples per target")
    parser.add_argument("--steps", type=int, default=d.steps, help="Adam steps per fit")
    parser.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (cosine decay)")
    parser.add_argument("--hidden", type=int, default=d.hidden,
                        help="width of the MLPs, SIREN and RFF network")  # fmt: skip
    parser.add_argument("--magnet-hidden", type=int, default=d.magnet_hidden,
                        help="filters per MAGNet layer")  # fmt: skip
    parser.add_argument("--mlp-norm", choices=["none", "layer"], default="none",
                        help="LayerNorm in the ReLU-family MLPs (paper Appx. D.1)")  # fmt: skip
    parser.add_argument("--siren-omega", type=float, default=d.siren_omega_0)
    parser.add_argument("--magnet-omega", type=float, default=d.magnet_omega_0)
    parser.add_argument("--rff-omega", type=float, default=d.rff_omega_0)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the networks are too small to gain)")  # fmt: skip
    parser.add_argument("--out", default="fit_kernel",
                        help="folder for fit_kernel.png, fit_kernel.csv, fit_kernel.md "
                        "(default: ./fit_kernel)")  # fmt: skip
    parser.add_argument("--no-plot", action="store_true", help="do not draw the grid plot")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of the plot (default 100)")
    parser.add_argument("--quiet", action="store_true", help="no per-fit progress lines")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.dpi < 1:
        parser.error(f"--dpi must be >= 1, got {args.dpi}")

    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:  # bad settings and unknown names fail before any fitting
        settings = FitSettings(
            length=args.length, steps=args.steps, lr=args.lr, hidden=args.hidden,
            magnet_hidden=args.magnet_hidden,
            mlp_norm=None if args.mlp_norm == "none" else args.mlp_norm,
            siren_omega_0=args.siren_omega, magnet_omega_0=args.magnet_omega,
            rff_omega_0=args.rff_omega, seed=args.seed,
        )  # fmt: skip
        study = run_fit_study(
            args.targets,
            args.nets,
            settings,
            threads=args.threads,
            progress=None if args.quiet else report,
        )
    except ValueError as err:
        parser.error(str(err))
    table = format_fit_table(study)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit_kernel.md").write_text(f"Command: `{_command(args)}`\n\n{table}\n")
    _write_csv(study, out / "fit_kernel.csv")
    written = [out / "fit_kernel.md", out / "fit_kernel.csv"]
    if not args.no_plot:
        from ckconv.viz.kernels import save_figure

        fig = plot_fit_study(study)
        save_figure(fig, out / "fit_kernel.png", dpi=args.dpi)
        written.append(out / "fit_kernel.png")
    print("\nwrote " + ", ".join(os.fspath(p) for p in written))
    return 0
