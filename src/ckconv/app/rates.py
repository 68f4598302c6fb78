"""Accuracy across sampling rates: one checkpoint at many rates (``ckconv eval --sampling-rates``)
and the train-rate x test-rate table of CKConv Table 5 (``ckconv sweep-rates``).

What a rate means
-----------------
A rate is a ratio of sampling rates with the extent of the signal fixed: ``1/2`` is half as many
samples over the same sequence or image (a 64-step sequence becomes 32 steps, an 8x8 image 4x4),
``2`` twice as many. The model is told ``rate = sr_eval / sr_train`` (the ratio between the
sampling of the data it sees and the sampling it was trained at): its continuous kernels are then
sampled at the new step, aligned with the training grid, and scaled by ``sr_train / sr_eval``
(CKConv eq. 5). Inputs are resampled with :func:`ckconv.app.resample.resample_input` (``seq[::n]`` for
``1/n``, which keeps the first sample; interpolation otherwise; antialiased bilinear for images).

* ``ckconv eval --checkpoint FILE --sampling-rates 1,1/2,1/4,1/8``: rates relative to the data
  the checkpoint was trained on (``sr_eval / sr_train``, the same as ``--rate``).
* ``ckconv sweep-rates --config NAME --train-rates 1,1/2 --test-rates 1,1/2,1/4``: rates relative
  to the task's *native* data (the task with ``subsample=1``), as in CKConv Table 5. A model
  trained at ``r_train`` (task option ``subsample = 1/r_train``, so train rates are ``1/n``) is
  evaluated on the native data resampled to ``r_test`` and told ``rate = r_test / r_train``.
  Train rates other than 1 need a task with a ``subsample`` option (the sequence tasks).
"""

from __future__ import annotations

import csv
import io
import json
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ckconv.app.config import ConfigError
from ckconv.app.metrics import format_metric, metric_of

__all__ = [
    "RateSweep",
    "RateTable",
    "parse_rate",
    "parse_rates",
    "rate_label",
    "rate_table",
    "sweep_rates",
    "unscaled_kernels",
    "write_rate_table",
    "write_sweep",
]


def parse_rate(text: str | float | Fraction, name: str = "rate") -> Fraction:
    """``"1/2"``, ``"0.25"``, ``"2"`` (or a number) -> a positive :class:`~fractions.Fraction`.

    What a rate may be is :func:`ckconv.grids.as_rates`'s rule (the one the models apply to
    their ``rate`` argument), so ``--rate``, ``--sampling-rates``, the sweep's rates and
    ``ckconv export --rate`` accept the same values; the fraction keeps ``1/3`` exact for labels.
    """
    from ckconv.grids import as_rates

    if isinstance(text, str):
        text = text.strip()
    as_rates(text, 1, name)  # ValueError naming ``name`` and the value
    return Fraction(text).limit_denominator(1_000_000)


def parse_rates(text: str, name: str = "--sampling-rates") -> list[Fraction]:
    """A comma-separated list of rates (``"1,1/2,1/4,1/8"``); duplicates and empty items fail."""
    items = [item.strip() for item in str(text).split(",")]
    if not any(items) or any(not item for item in items):
        raise ValueError(
            f"{name}: expected a comma-separated list of rates such as 1,1/2,1/4, got {text!r}"
        )
    rates = [parse_rate(item, name) for item in items]
    seen: set[Fraction] = set()
    for item, rate in zip(items, rates):
        if rate in seen:
            raise ValueError(f"{name}: rate {item!r} is listed twice in {text!r}")
        seen.add(rate)
    return rates


def rate_label(rate: Fraction | float) -> str:
    """``Fraction(1, 2)`` -> ``"1/2"``, ``2`` -> ``"2"``, ``0.3`` -> ``"3/10"``."""
    return str(Fraction(rate).limit_denominator(1_000_000))


def _slug(rate: Fraction) -> str:
    return rate_label(rate).replace("/", "_")


def _size_label(size: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in size)


def _input_size(bundle: Any, split: str, input_rate: float | None) -> tuple[int, ...]:
    """Spatial size of the split's first input after resampling by ``input_rate``."""
    from ckconv.app.resample import resample_input

    x = bundle.datasets[split][0][0]
    if input_rate is not None and float(input_rate) != 1.0:
        try:
            x = resample_input(x, float(input_rate), bundle.spec.tokens)
        except ValueError as err:
            raise ConfigError(
                f"cannot evaluate task {bundle.name!r} at rate {rate_label(input_rate)}: {err}"
            ) from None
    if isinstance(x, (tuple, list)):  # timestamped (values, times, mask): observed samples
        x = x[0]
    return tuple(int(s) for s in x.shape[1:]) if x.dim() > 1 else (int(x.shape[0]),)


def _default_out_dir(checkpoint: Path) -> Path:
    """The run folder of ``RUN/checkpoints/x.ckpt``, else the checkpoint's folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


def _pyplot():
    from ckconv.app.plots import _pyplot as pyplot  # matplotlib with the Agg backend

    return pyplot()


def _save_figure(fig, path: Path) -> None:
    from ckconv.app.plots import _save  # atomic: a temporary file, then a rename

    _save(fig, path)


def _write_text(path: Path, text: str) -> None:
    from ckconv.app.run_dir import atomic_write_text

    atomic_write_text(path, text)


def _percent(metric: str, value: float) -> str:
    return metric_of(metric, "metric").format(value)


# ----------------------------------------------------------------------------- one checkpoint


@contextmanager
def unscaled_kernels(model: Any, rate: Fraction | float):
    """Inside the block, the continuous-kernel layers of ``model`` called with ``rate`` sample
    their kernels *without* the CKConv eq. 5 factor ``sr_train / sr_eval`` (the ablation of
    CKConv Table 5): each layer's kernel net output is multiplied by the inverse of the factor
    the layer applies, so the sampled kernel is the trained function's values at the new
    positions. Inside the block, call the model at this ``rate`` only. Layers sample their
    kernel on every call (no kernel is cached between calls), so nothing outlives the block."""
    from ckconv.grids import rate_scale
    from ckconv.nn import CKConv

    layers = [m for m in model.modules() if isinstance(m, CKConv)]
    if not layers:
        raise ConfigError(
            f"--no-kernel-scaling: {type(model).__name__} has no continuous-kernel layers whose scaling could "
            "be switched off"
        )

    handles = []
    try:
        for layer in layers:
            inverse = 1.0 / rate_scale(float(rate), layer.data_dim)
            handles.append(
                layer.kernel_net.register_forward_hook(lambda _m, _a, out, k=inverse: out * k)
            )
        yield model
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class RateTable:
    """Metrics of one checkpoint at several sampling rates (``sr_eval / sr_train``)."""

    checkpoint: str
    split: str
    metric: str  # the task's metric, e.g. "test/acc"
    rates: list[Fraction]
    input_sizes: list[tuple[int, ...]]
    metrics: list[dict[str, float]]
    resampled: bool = True
    kernel_scaling: bool = True  # False: kernels sampled without CKConv eq. 5

    def value(self, rate: Fraction | float | str) -> float:
        """The task metric at ``rate``."""
        return self.metrics[self.rates.index(parse_rate(rate))][self.metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "split": self.split,
            "metric": self.metric,
            "rate_meaning": "sr_eval / sr_train (relative to the checkpoint's training data)",
            "inputs_resampled": self.resampled,
            "kernel_scaling": self.kernel_scaling,
            "rows": [
                {
                    "rate": rate_label(r),
                    "rate_value": float(r),
                    "input_size": list(size),
                    "metrics": m,
                }
                for r, size, m in zip(self.rates, self.input_sizes, self.metrics)
            ],
        }

    def to_csv(self) -> str:
        keys = sorted({k for m in self.metrics for k in m})
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["rate", "rate_value", "input_size", *keys])
        for r, size, m in zip(self.rates, self.input_sizes, self.metrics):
            w.writerow([rate_label(r), float(r), _size_label(size), *(m.get(k, "") for k in keys)])
        return buf.getvalue()

    def format(self) -> str:
        name = self.metric.split("/", 1)[-1]
        unit = " (%)" if name in ("acc", "auroc") else ""
        head = ("rate", "input", f"{name}{unit}")
        rows = [
            (rate_label(r), _size_label(s), _percent(name, m[self.metric]))
            for r, s, m in zip(self.rates, self.input_sizes, self.metrics)
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        lines = ["  ".join(str(x).rjust(w) for x, w in zip(row, widths)) for row in [head, *rows]]
        return "\n".join(lines)


def rate_table(
    checkpoint: str | os.PathLike,
    rates: list[Fraction | float | str],
    *,
    split: str = "test",
    resample: bool = True,
    overrides: list[tuple[str, Any]] | None = None,
    batch_size: int | None = None,
    progress_bar: bool = False,
    blur: bool = False,
    kernel_scaling: bool = True,
) -> RateTable:
    """Evaluate one checkpoint at each of ``rates`` (``sr_eval / sr_train``); ``blur`` blurs
    the kernels at rates above 1 (CKConv App. E.3); ``kernel_scaling=False`` samples the
    kernels without the CKConv eq. 5 factor (:func:`unscaled_kernels`, an ablation).

    The model is loaded once; for each rate the split's inputs are resampled to it (unless
    ``resample`` is False: the data already is at that rate) and the model is told the rate.
    """
    from ckconv.app.checkpoint import resolve_checkpoint
    from ckconv.app.env import dist_env, init_distributed
    from ckconv.app.evaluation import check_rate_applies, evaluate_model, load_model

    checkpoint = resolve_checkpoint(checkpoint)
    parsed = [parse_rate(r, "rates") for r in rates]
    if not parsed:
        raise ValueError("rates: give at least one sampling rate")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    model, cfg, bundle = load_model(checkpoint, overrides)
    passed = [check_rate_applies(cfg, bundle, r, "--sampling-rates") for r in parsed]
    if bundle.spec.tokens and resample and any(r != 1 for r in parsed):
        raise ConfigError(f"task {bundle.name!r} has token inputs, which cannot be resampled")
    init_distributed(cfg, dist_env())
    metric = f"{split}/{bundle.objective.metric}"
    sizes, rows = [], []
    for r, given in zip(parsed, passed):
        input_rate = float(r) if resample and given is not None else None
        sizes.append(_input_size(bundle, split, input_rate))
        with nullcontext() if kernel_scaling else unscaled_kernels(model, r):
            rows.append(
                evaluate_model(
                    model,
                    cfg,
                    bundle,
                    split=split,
                    rate=None if given is None else float(r),
                    input_rate=input_rate,
                    batch_size=batch_size,
                    progress_bar=progress_bar,
                    blur=blur,
                )
            )
    return RateTable(str(checkpoint), split, metric, parsed, sizes, rows, resample, kernel_scaling)


def plot_rate_table(table: RateTable, path: str | os.PathLike) -> Path:
    """The task metric against the rate (log2 axis), the training rate marked."""
    plt = _pyplot()
    path = Path(path)
    order = sorted(range(len(table.rates)), key=lambda i: table.rates[i])
    xs = [float(table.rates[i]) for i in order]
    ys = [table.metrics[i][table.metric] for i in order]
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.plot(xs, ys, "o-", lw=1.5)
    for i in order:
        label = _size_label(table.input_sizes[i])
        ax.annotate(
            label,
            (float(table.rates[i]), table.metrics[i][table.metric]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
        )
    ax.margins(x=0.08, y=0.18)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--", label="training rate")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [rate_label(table.rates[i]) for i in order])
    ax.set_xlabel("sampling rate sr_eval / sr_train")
    ax.set_ylabel(table.metric)
    ckpt = Path(table.checkpoint)
    run = _default_out_dir(ckpt)
    ax.set_title(f"{run.parent.name}/{run.name}/{ckpt.name} on {table.split}", fontsize=9)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)
    return path


def write_rate_table(table: RateTable, out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write ``rates_<split>_<checkpoint>.csv/.json/.png`` to ``out_dir`` (default: the
    checkpoint's run folder); returns the paths by kind. Earlier tables are kept: a rerun
    writes ``rates_<split>_<checkpoint>-2.*`` (then ``-3`` ...)."""
    ckpt = Path(table.checkpoint)
    folder = Path(out_dir) if out_dir is not None else _default_out_dir(ckpt)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"rates_{table.split}_{ckpt.stem}{'' if table.kernel_scaling else '_unscaled'}"
    kinds = ("csv", "json", "png")
    for i in range(1, 10_000):
        stem = folder / (base if i == 1 else f"{base}-{i}")
        paths = {kind: stem.with_name(f"{stem.name}.{kind}") for kind in kinds}
        if not any(p.exists() for p in paths.values()):
            break
    else:
        raise FileExistsError(f"{folder}: 10000 rate tables named {base}-*; pass --out")
    _write_text(paths["csv"], table.to_csv())
    _write_text(paths["json"], json.dumps(table.to_dict(), indent=2) + "\n")
    plot_rate_table(table, paths["png"])
    return paths


# ----------------------------------------------------------------------------- train x test sweep


@dataclass
class RateSweep:
    """The train-rate x test-rate table (CKConv Table 5); rates relative to the native data."""

    config: str
    task: str
    model: str
    metric: str
    train_rates: list[Fraction]
    test_rates: list[Fraction]
    values: list[list[float]]  # [train][test]
    train_sizes: list[tuple[int, ...]]
    test_sizes: list[tuple[int, ...]]
    runs: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    folder: str = ""

    def value(self, train_rate, test_rate) -> float:
        i = self.train_rates.index(parse_rate(train_rate))
        j = self.test_rates.index(parse_rate(test_rate))
        return self.values[i][j]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "task": self.task,
            "model": self.model,
            "metric": self.metric,
            "rate_meaning": "relative to the task's native data; the model gets "
            "rate = test_rate / train_rate (sr_eval / sr_train)",
            "train_rates": [rate_label(r) for r in self.train_rates],
            "test_rates": [rate_label(r) for r in self.test_rates],
            "train_input_sizes": [list(s) for s in self.train_sizes],
            "test_input_sizes": [list(s) for s in self.test_sizes],
            "values": self.values,
            "runs": self.runs,
            "checkpoints": self.checkpoints,
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["train_rate", *(f"test_rate={rate_label(r)}" for r in self.test_rates)])
        for r, row in zip(self.train_rates, self.values):
            w.writerow([rate_label(r), *row])
        return buf.getvalue()

    def format(self) -> str:
        name = self.metric.split("/", 1)[-1]
        unit = " (%)" if name in ("acc", "auroc") else ""
        head = [
            f"train \\ test {name}{unit}",
            *(
                f"{rate_label(r)} ({_size_label(s)})"
                for r, s in zip(self.test_rates, self.test_sizes)
            ),
        ]
        rows = [
            [f"{rate_label(r)} ({_size_label(s)})", *(_percent(name, v) for v in row)]
            for r, s, row in zip(self.train_rates, self.train_sizes, self.values)
        ]
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        return "\n".join("  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in [head, *rows])


def _subsample_of(rate: Fraction) -> int:
    inv = 1 / rate
    if rate > 1 or inv.denominator != 1:
        raise ConfigError(
            f"--train-rates: {rate_label(rate)} is not 1/n; training data is the native data "
            "subsampled (seq[::n]), so train rates are 1, 1/2, 1/3, ..."
        )
    return int(inv)


def _native_task(config, overrides: list[str], base, subs: list[int]):
    """The task at its native rate and the config keys that set a train rate's subsampling.

    The data of train rate 1/n is the native data with task.subsample=n, set explicitly (a task
    whose default subsampling is not 1 is still measured against its native rate). Tasks without
    the option (images) train at their native rate only.
    """
    from ckconv.app.config import load_config
    from ckconv.app.tasks import build_task
    from ckconv.data.registry import TASKS

    info = TASKS.get(base.task.name)
    if info is None or "subsample" not in info.options:
        if info is not None and any(n != 1 for n in subs):
            raise ConfigError(
                f"--train-rates: task {base.task.name!r} has no subsample option, so it trains "
                "at its native rate only (use --train-rates 1; the test rates resample the "
                "inputs)"
            )
        return build_task(base), []
    native = build_task(load_config(config, [*overrides, "task.subsample=1"]))
    keys = ["task.subsample"]
    if "test_subsample" in base.task.options:
        keys.append("task.test_subsample")
    return native, keys


def _measure(sweep: RateSweep, r: Fraction, cfg, native_data, **evaluation) -> None:
    """Train ``cfg`` (train rate ``r``) and add its row of test-rate metrics to ``sweep``; the
    evaluation data is the native data (``native_data``: the overrides that give it)."""
    from ckconv.app.evaluation import evaluate_model, load_model
    from ckconv.app.training import train

    result = train(cfg)
    ckpt = result.best_checkpoint or result.last_checkpoint
    if ckpt is None:
        raise RuntimeError(f"the run {result.run_dir} wrote no checkpoint")
    model, mcfg, bundle = load_model(ckpt, native_data)
    row = []
    for t in sweep.test_rates:
        metrics = evaluate_model(
            model, mcfg, bundle, rate=float(t / r), input_rate=float(t), **evaluation
        )
        row.append(float(metrics[sweep.metric]))
    sweep.values.append(row)
    sweep.runs.append(str(result.run_dir))
    sweep.checkpoints.append(str(ckpt))
    cells = ", ".join(
        f"{rate_label(t)}: {format_metric(sweep.metric, v)}" for t, v in zip(sweep.test_rates, row)
    )
    print(f"sweep-rates: trained at {rate_label(r)}, {sweep.metric} at test rates {cells}")


def sweep_rates(
    config: str | os.PathLike,
    train_rates: list[Fraction | float | str],
    test_rates: list[Fraction | float | str],
    *,
    overrides: list[str] | None = None,
    out: str | os.PathLike = "runs",
    split: str = "test",
    progress_bar: bool = False,
    batch_size: int | None = None,
) -> RateSweep:
    """Train one model per train rate and evaluate each at every test rate.

    ``config`` and ``overrides`` are those of ``ckconv train``; the runs and the table go to a
    new folder ``<out>/<name>_rate_sweep/<timestamp>/`` (written by :func:`write_sweep`). The
    task's options and every train rate's config are checked before anything trains.
    """
    from ckconv.app.config import load_config
    from ckconv.app.env import dist_env
    from ckconv.app.prepare import prepare
    from ckconv.app.run_dir import new_run_dir

    trains = [parse_rate(r, "--train-rates") for r in train_rates]
    tests = [parse_rate(r, "--test-rates") for r in test_rates]
    if not trains or not tests:
        raise ValueError("sweep_rates: give at least one train rate and one test rate")
    if split not in ("train", "val", "test"):
        raise ValueError(f"--split must be train, val or test, got {split!r}")
    if dist_env().world_size > 1:
        raise ConfigError("ckconv sweep-rates runs in one process (not under torchrun)")
    overrides = list(overrides or [])
    base = load_config(config, overrides)
    subs = [_subsample_of(r) for r in trains]
    native, keys = _native_task(config, overrides, base, subs)
    if native.spec.tokens and (any(r != 1 for r in tests) or any(n != 1 for n in subs)):
        raise ConfigError(f"task {native.name!r} has token inputs, which cannot be resampled")
    train_sizes = [_input_size(native, "train", float(r)) for r in trains]
    test_sizes = [_input_size(native, split, float(t)) for t in tests]
    folder = new_run_dir(out, f"{base.name}_rate_sweep", None)
    cfgs = [
        load_config(config, [*overrides, *(f"{k}={n}" for k in keys),
                             f"trainer.out_dir={folder}", f"trainer.version=train_rate_{_slug(r)}"])
        for r, n in zip(trains, subs)
    ]  # fmt: skip
    for cfg in cfgs:  # sizes that cannot work fail here, before any training
        prepare(cfg)
    sweep = RateSweep(str(config), native.name, base.model.name, f"{split}/{native.objective.metric}",
                      trains, tests, [], train_sizes, test_sizes, folder=str(folder))  # fmt: skip
    native_data = [(k, 1) for k in keys]
    for r, cfg, size in zip(trains, cfgs, train_sizes):
        print(f"sweep-rates: training at rate {rate_label(r)} ({_size_label(size)} inputs)")
        _measure(sweep, r, cfg, native_data, split=split, batch_size=batch_size,
                 progress_bar=progress_bar)  # fmt: skip
    return sweep


def plot_sweep(sweep: RateSweep, path: str | os.PathLike) -> Path:
    """Heat map of the train-rate x test-rate table, values written in the cells."""
    plt = _pyplot()
    path = Path(path)
    name = sweep.metric.split("/", 1)[-1]
    nr, nc = len(sweep.train_rates), len(sweep.test_rates)
    fig, ax = plt.subplots(figsize=(1.2 + 1.0 * nc, 1.0 + 0.6 * nr))
    higher_better = metric_of(sweep.metric, "metric").higher_is_better
    im = ax.imshow(sweep.values, cmap="viridis" if higher_better else "viridis_r", aspect="auto")
    for i, row in enumerate(sweep.values):
        for j, v in enumerate(row):
            ax.text(
                j,
                i,
                _percent(name, v),
                ha="center",
                va="center",
                fontsize=8,
                color="w",
                path_effects=_outline(),
            )
    ax.set_xticks(
        range(nc),
        [f"{rate_label(r)}\n{_size_label(s)}" for r, s in zip(sweep.test_rates, sweep.test_sizes)],
    )
    ax.set_yticks(
        range(nr),
        [
            f"{rate_label(r)} ({_size_label(s)})"
            for r, s in zip(sweep.train_rates, sweep.train_sizes)
        ],
    )
    ax.set_xlabel("test rate (input size)")
    ax.set_ylabel("train rate")
    ax.set_title(f"{sweep.model} on {sweep.task}: {sweep.metric}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    _save_figure(fig, path)
    plt.close(fig)
    return path


def _outline():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=1.5, foreground="black")]


def write_sweep(sweep: RateSweep, out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write ``rate_sweep.csv/.json/.png`` to ``out_dir`` (default: the sweep's folder)."""
    folder = Path(out_dir) if out_dir is not None else Path(sweep.folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"rate_sweep.{k}" for k in ("csv", "json", "png")}
    _write_text(paths["csv"], sweep.to_csv())
    _write_text(paths["json"], json.dumps(sweep.to_dict(), indent=2) + "\n")
    plot_sweep(sweep, paths["png"])
    return paths
