"""The ``ckconv`` command.

::

    ckconv demo [--out DIR]                          train a CCNN on offline digits, ~minutes on CPU
    ckconv train --config NAME|FILE [key=value ...]  train a paper experiment (ckconv configs)
    ckconv train task.name=uea task.path=DIR         train on your own data (docs: own data)
    ckconv train --resume RUN_DIR                    continue a killed run from last.ckpt
    ckconv eval --checkpoint FILE [--rate R]         evaluate, optionally at another resolution
    ckconv eval --checkpoint FILE --sampling-rates 1,1/2,1/4
                                                     one checkpoint at several rates: table + plot
    ckconv sweep-rates --config NAME --train-rates 1,1/2 --test-rates 1,1/2,1/4 [key=value ...]
                                                     train x test sampling-rate table (CKConv T. 5)
    ckconv configs                                   list the shipped experiment configs
    ckconv data list [--root DIR]                    list the tasks and whether their data is here
    ckconv data synth-speech --out DIR [--speakers N] a Speech Commands-layout set (espeak-ng, sox)
    ckconv plot kernels --checkpoint FILE            a trained model's kernels and mask sizes
    ckconv plot curves RUN [RUN ...] [--metric KEY]  one metric of several runs in one picture
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from ckconv._checks import ArgumentError, InputError
from ckconv.app.config import (
    SECTION_DOCS,
    ConfigError,
    dump_config,
    list_configs,
    load_config,
    parse_overrides,
)

if typing.TYPE_CHECKING:
    from ckconv.app.training import RunResult

__all__ = ["main"]


def _config_reference() -> str:
    """Every fixed key with its type and default (``ckconv train --help``)."""
    from ckconv.app.config import _SECTIONS, _type_name

    lines = ["config keys (override with key=value or --key value):", "  name, seed"]
    for section, cls in _SECTIONS.items():
        hints = typing.get_type_hints(cls)
        doc = SECTION_DOCS[section].splitlines()[0]
        lines.append(f"  {section}: {doc}")
        for f in dataclasses.fields(cls):
            if f.name == "options":
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"    {section}.{f.name} ({_type_name(hints[f.name])}) = {default!r}")
        if section in ("task", "model"):
            lines.append(f"    {section}.<option>: any keyword argument of the {section} (checked)")
    return "\n".join(lines)


def _rate_arg(text: str) -> float:
    from ckconv.app.rates import parse_rate

    try:
        return float(parse_rate(text, "--rate"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--rate ")) from None


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint",
        description="Evaluate a checkpoint on a split, optionally at other sampling rates. "
        "Accuracies print as percentages (--json: fractions). Config overrides (key=value, "
        "task.* and trainer.* keys only) follow the options, e.g. task.root=/data/mnist or "
        "task.path=mydata/GunPoint when the data moved.",
        allow_abbrev=False,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a .ckpt written by ckconv train, or a run folder (its best checkpoint)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "test"],
        help="the split to measure; metrics are named after it (default: %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=_rate_arg,
        default=None,
        help="sampling-rate ratio sr_eval/sr_train (e.g. 2, 1/2, 0.25): inputs are resampled "
        "and the kernels follow",
    )
    p.add_argument(
        "--no-resample",
        action="store_true",
        help="pass --rate to the model only (the data is already at that rate)",
    )
    p.add_argument(
        "--sampling-rates",
        metavar="R1,R2,...",
        default=None,
        help="evaluate at each rate (sr_eval/sr_train, e.g. 1,1/2,1/4,1/8 or 2,0.5): prints the "
        "table and writes rates_<split>_<checkpoint>.csv/.json/.png to the run folder or --out",
    )
    p.add_argument(
        "--blur",
        action="store_true",
        help="at rates above 1, blur the finer kernels (Gaussian, CKConv App. E.3)",
    )
    p.add_argument(
        "--no-kernel-scaling",
        action="store_true",
        help="with --sampling-rates: sample the kernels without the sr_train/sr_eval factor "
        "(CKConv eq. 5), the ablation of CKConv Table 5",
    )
    p.add_argument("--out", default=None, help="folder for the --sampling-rates files")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _add_sweep_rates(sub) -> None:
    p = sub.add_parser(
        "sweep-rates",
        help="train at each train rate, evaluate at each test rate (CKConv Table 5)",
        description="Train one model per train rate (the task's native data subsampled, "
        "seq[::n]) and evaluate each at every test rate (the native data resampled; the model "
        "gets rate = test/train). Rates are relative to the task's native resolution. Writes "
        "rate_sweep.csv/.json/.png and the runs to <out>/<name>_rate_sweep/<time>/. "
        "Config overrides (key=value) follow the options, as in ckconv train.",
        allow_abbrev=False,
    )
    p.add_argument("--config", "-c", required=True, help="a YAML file or a shipped config name")
    p.add_argument("--train-rates", required=True, metavar="R1,R2,...", help="e.g. 1,1/2,1/4")
    p.add_argument("--test-rates", required=True, metavar="R1,R2,...", help="e.g. 1,1/2,1/4,1/8")
    p.add_argument(
        "--out", default="runs", help="parent folder of the sweep (default: %(default)s)"
    )
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--batch-size", type=int, default=None, help="evaluation batch size")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckconv",
        description="Continuous kernel convolutions: train and evaluate the papers' models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("::", 1)[1],
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model from a config (key=value overrides allowed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_config_reference(),
        allow_abbrev=False,
    )
    p.add_argument(
        "--config",
        "-c",
        help="a YAML file or a shipped config name (ckconv configs); without it a model sized "
        "from the data (model.name=auto), lr 0.01, batch 16, 30 epochs, e.g. "
        "`ckconv train task.name=uea task.path=mydata/GunPoint`",
    )
    p.add_argument("--resume", metavar="RUN", help="continue the run folder (or checkpoint) RUN")
    p.add_argument("--print-config", action="store_true", help="print the resolved config, exit")
    p.add_argument(
        "--dry-run", action="store_true", help="build data, model and optimiser, then exit"
    )

    _add_eval(sub)
    _add_sweep_rates(sub)

    p = sub.add_parser("demo", help="train a CCNN on scikit-learn digits (offline, a few minutes)")
    p.add_argument("--out", default="runs", help="folder for the run (default: %(default)s)")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"training epochs (default: {_demo_epochs()}, from the demo_digits config)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")

    sub.add_parser("configs", help="list the shipped experiment configs")

    p = sub.add_parser(
        "data", help="datasets: `ckconv data list`, `ckconv data synth-speech`", add_help=True
    )
    p.add_argument("action", choices=["list", "synth-speech"])
    # the action's own options (and its --help) belong to the action's parser
    p.add_argument("action_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    # Subcommands that own their options (argparse in their modules): passed through whole.
    sub.add_parser(
        "fit-kernel", help="fit the papers' target kernels with each kernel net", add_help=False
    )
    sub.add_parser("export", help="bake and export a trained model (onnx|pt2)", add_help=False)
    p = sub.add_parser(
        "plot",
        help="pictures: `ckconv plot kernels --checkpoint ...`, `ckconv plot curves RUN ...`",
        add_help=False,
    )
    p.add_argument("what", nargs="?", choices=["kernels", "curves"])
    return parser


def _demo_epochs() -> int:
    """The demo's training epochs, read from its config (the one place they are set)."""
    from ckconv.app.config import CONFIG_DIR

    return load_config(CONFIG_DIR / "demo_digits.yaml").trainer.max_epochs


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    from ckconv.app.env import dist_env
    from ckconv.app.prepare import prepare
    from ckconv.app.training import train

    overrides = parse_overrides(extra)
    if args.resume:
        if args.config:
            raise ConfigError("--resume reads the run's own config.yaml; drop --config")
        result = train(resume=args.resume, overrides=overrides)
    else:
        if args.config:
            cfg = load_config(args.config, extra)
        else:  # a model chosen and sized from the task's data, a schedule for small sets
            from ckconv.app.tasks import default_config

            cfg = default_config(extra)
        if args.print_config:
            print(dump_config(cfg), end="")
            return 0
        if args.dry_run:
            prepared = prepare(cfg)
            cfg = prepared.cfg
            n = sum(p.numel() for p in prepared.model.parameters())
            spec = prepared.bundle.spec
            shape = "x".join(str(s) for s in (spec.in_channels, *spec.input_size))
            kind = "token ids" if spec.tokens else "inputs"
            print(f"ok: task {cfg.task.name} ({shape} {kind}, {prepared.bundle.objective.kind}), "
                  f"model {cfg.model.name} with {n:,} parameters, "
                  f"{prepared.steps_per_epoch} steps per epoch")  # fmt: skip
            for note in prepared.notes:
                print(f"note: {note}")
            return 0
        result = train(cfg)
    if dist_env().is_zero:
        _print_run_summary(result)
        print(f"run folder: {result.run_dir}")
    return 0


def _print_run_summary(result: RunResult) -> None:
    """The end of ``ckconv train``: the best monitored value (the epoch ``best.ckpt`` holds),
    the last validation's metrics and the test metrics, each labelled with what it is of."""
    from ckconv.app.metrics import format_metric

    def joined(prefix: str) -> str:
        keys = sorted(k for k in result.metrics if k.startswith(prefix))
        return ", ".join(f"{k} {format_metric(k, result.metrics[k])}" for k in keys)

    if result.best_value is not None and result.monitor:
        at = f" at epoch {result.best_epoch}" if result.best_epoch is not None else ""
        print(f"best {result.monitor}: {format_metric(result.monitor, result.best_value)}{at} "
              "(checkpoints/best.ckpt)")  # fmt: skip
    val, test = joined("val/"), joined("test/")
    if val:
        epoch = result.last_val_epoch
        print(f"last validation{'' if epoch is None else f' (epoch {epoch})'}: {val}")
    if test:
        weights = "best.ckpt" if result.best_checkpoint is not None else "the final weights"
        print(f"test ({weights}): {test}")


def _print_metrics(metrics: dict[str, float]) -> None:
    from ckconv.app.metrics import format_metric

    for key in sorted(metrics):
        if key.startswith(("val/", "test/")):
            print(f"{key}: {format_metric(key, metrics[key])}")


def _eval(args: argparse.Namespace, extra: list[str]) -> int:
    from ckconv.app.env import dist_env
    from ckconv.app.evaluation import evaluate

    if args.sampling_rates is not None:
        return _eval_rates(args, extra)
    if args.out is not None:
        raise ConfigError("--out is for the --sampling-rates files")
    if args.no_kernel_scaling:
        raise ConfigError(
            "--no-kernel-scaling goes with --sampling-rates (e.g. --sampling-rates 1/2)"
        )
    metrics = evaluate(
        args.checkpoint,
        split=args.split,
        rate=args.rate,
        resample=not args.no_resample,
        overrides=parse_overrides(extra),
        batch_size=args.batch_size,
        progress_bar=not args.json,
        blur=args.blur,
    )
    if not dist_env().is_zero:
        return 0
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        _print_metrics(metrics)
    return 0


def _eval_rates(args: argparse.Namespace, extra: list[str]) -> int:
    from ckconv.app.env import dist_env
    from ckconv.app.rates import parse_rates, rate_table, write_rate_table

    if args.rate is not None:
        raise ConfigError("give either --rate or --sampling-rates, not both")
    try:
        rates = parse_rates(args.sampling_rates, "--sampling-rates")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    table = rate_table(
        args.checkpoint,
        rates,
        split=args.split,
        resample=not args.no_resample,
        overrides=parse_overrides(extra),
        batch_size=args.batch_size,
        blur=args.blur,
        kernel_scaling=not args.no_kernel_scaling,
    )
    if not dist_env().is_zero:
        return 0
    paths = write_rate_table(table, args.out)
    if args.json:
        print(json.dumps(table.to_dict(), sort_keys=True))
    else:
        print(table.format())
        print(f"written: {paths['csv']}, {paths['json']}, {paths['png']}")
    return 0


def _sweep_rates(args: argparse.Namespace, extra: list[str]) -> int:
    from ckconv.app.rates import parse_rates, sweep_rates, write_sweep

    try:
        train_rates = parse_rates(args.train_rates, "--train-rates")
        test_rates = parse_rates(args.test_rates, "--test-rates")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    parse_overrides(extra)  # a malformed override fails before anything runs
    sweep = sweep_rates(
        args.config,
        train_rates,
        test_rates,
        overrides=extra,
        out=args.out,
        split=args.split,
        batch_size=args.batch_size,
    )
    paths = write_sweep(sweep)
    print()
    print(sweep.format())
    print(f"written: {paths['csv']}, {paths['json']}, {paths['png']}")
    return 0


def _user_error(message: str) -> int:
    """Report an error in what the user gave as one line on stderr; the exit code 2.

    Only :class:`~ckconv._checks.InputError` (config, data file, checkpoint, download errors),
    :class:`~ckconv._checks.ArgumentError` and missing / unreadable paths come here: any other
    exception is a bug and keeps its traceback.
    """
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"ckconv: {line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ckconv`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "train":
            return _train(args, extra)
        if args.command == "data":
            from ckconv.app.data_command import main_data_list, main_synth_speech

            action = main_data_list if args.action == "list" else main_synth_speech
            return action([*args.action_args, *extra])
        if args.command == "fit-kernel":
            from ckconv.app.fit_kernel_command import main_fit_kernel

            return main_fit_kernel(extra)
        if args.command == "export":
            from ckconv.app.export_command import main_export

            return main_export(extra)
        if args.command == "plot":
            from ckconv.app.plot_command import main_plot_curves, main_plot_kernels

            if args.what is None:  # `ckconv plot --help` (or nothing): what there is to plot
                if not {"-h", "--help"} & set(extra):
                    parser.error(
                        "plot: say what to plot: `ckconv plot kernels --checkpoint ...` or "
                        "`ckconv plot curves RUN [RUN ...]`"
                    )
                print(
                    "usage: ckconv plot {kernels,curves} ...\n\n"
                    "  kernels --checkpoint FILE   a trained model's kernels and mask sizes\n"
                    "  curves RUN [RUN ...]        one metric of several runs in one picture\n\n"
                    "`ckconv plot kernels --help`, `ckconv plot curves --help`: their options"
                )
                raise SystemExit(0)  # as argparse's --help
            return (main_plot_curves if args.what == "curves" else main_plot_kernels)(extra)
        if extra and args.command not in ("eval", "sweep-rates"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "eval":
            return _eval(args, extra)
        if args.command == "sweep-rates":
            return _sweep_rates(args, extra)
        if args.command == "demo":
            from ckconv.app.demo import run_demo

            run_demo(out=args.out, epochs=args.epochs, seed=args.seed, threads=args.threads)
            return 0
        if args.command == "configs":
            for name in list_configs():
                print(name)
            return 0
    except ConfigError as err:
        return _user_error(f"config error: {err}")
    except (InputError, ArgumentError, FileNotFoundError, FileExistsError, IsADirectoryError,
            PermissionError) as err:  # fmt: skip
        return _user_error(str(err))
    parser.print_help()
    return 1


if __name__ == "__main__":
    sys.exit(main())
