"""``ckconv export``: bake a trained model for one input size and export it (``.pt2`` or ONNX),
then check that the artefact reproduces the model.

The model comes from the checkpoint (:func:`ckconv.app.checkpoint.rebuild_model`: the model spec
it stores, or for older ``ckconv train`` checkpoints the run config); baking and exporting are
:mod:`ckconv.deploy`'s.

What cannot mislead:

* The input preprocessing of the training data (the standardisation of the image tasks,
  :func:`ckconv.app.preprocess.input_affine`; the per-cloud centring and scaling of point
  clouds, :func:`ckconv.app.preprocess.point_preprocessing`) is part of the artefact, which
  therefore takes inputs in the data's own units. A task whose preprocessing cannot be
  described is refused unless ``--raw-inputs`` says the artefact is to take inputs as the
  model does.
* ``--input-size`` alone sets the rate (``input size / training size``); with ``--rate`` the two
  are checked against each other.
* Point-cloud models have no rate: the input size is the points per cloud (default: the
  training data's, recorded in the checkpoint), and another number is another point density,
  what ``ckconv eval task.num_points=N`` measures; ``--rate`` is refused.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ckconv._checks import ArgumentError, ArgumentValueError, InputError, positive_int
from ckconv.app.checkpoint import rebuild_model, resolve_checkpoint
from ckconv.app.config import ConfigError
from ckconv.app.preprocess import InputAffine
from ckconv.app.quiet import expected_warnings_silenced
from ckconv.deploy import (
    ChannelAffine,
    CloudNormalize,
    bake,
    continuous_layers,
    example_input,
    export_onnx,
    export_pt2,
)
from ckconv.nn import PointConv

__all__ = ["main_export"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ckconv export",
        description=(
            "Bake a trained model for one input size and export it as a torch.export program "
            "(.pt2) or an ONNX file; the artefact is loaded back and compared with the model. "
            "The input preprocessing of the training data (the standardisation of image "
            "tasks, the centring and scaling of point clouds) is included: the artefact takes "
            "inputs in the data's own units. Point-cloud models take clouds (batch, channels, "
            "points) of the --input-size points per cloud (default: the training data's); "
            "they have no --rate. Checkpoints from before these were recorded read them off "
            "the task's data: task.* overrides (e.g. task.path=mydata) say where it is now."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a `ckconv train` checkpoint, a run folder (its best checkpoint) or a model file",
    )
    p.add_argument("--format", required=True, choices=["onnx", "pt2"])
    p.add_argument("--out", required=True, help="output file (.onnx / .pt2)")
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        default=None,
        help="spatial size to bake for, one int per dimension (default: the training size); "
        "alone it sets the rate to input size / training size. Point-cloud models: the points "
        "per cloud; another number than in training is another point density (as `ckconv "
        "eval task.num_points=N`)",
    )
    p.add_argument(
        "--rate",
        default=None,
        help="sampling-rate ratio sr_input/sr_train to bake at (e.g. 2, 1/2); with --input-size "
        "the two must agree (default: from --input-size, else 1); models of point clouds have none",
    )
    p.add_argument("--blur", action="store_true", help="blur kernels sampled finer than training")
    p.add_argument("--method", default="auto", choices=["auto", "direct", "fft"])
    p.add_argument(
        "--batch-size", type=int, default=2, help="example batch size (default %(default)s)"
    )
    p.add_argument("--static-batch", action="store_true", help="fix the batch size")
    p.add_argument("--in-channels", type=int, default=None, help="override the input channels")
    p.add_argument(
        "--raw-inputs",
        action="store_true",
        help="leave the training data's preprocessing out: the artefact takes inputs exactly "
        "as the model does (already preprocessed)",
    )
    p.add_argument("--no-check", action="store_true", help="skip reloading and comparing")
    return p


def _run_artefact(fmt: str, path: Path, x: torch.Tensor) -> torch.Tensor | None:
    if fmt == "pt2":
        return torch.export.load(path).module()(x)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})
    return torch.from_numpy(out)


def _overrides(parser: argparse.ArgumentParser, extra: list[str]) -> list[tuple[str, Any]]:
    """The ``task.*=value`` words after the options (as ``ckconv eval`` takes them); anything
    else is an unrecognised argument."""
    from ckconv.app.config import parse_overrides

    wrong = [a for a in extra if a.startswith("-") or not a.startswith("task.") or "=" not in a]
    if wrong:
        parser.error(f"unrecognized arguments: {' '.join(wrong)}")
    return parse_overrides(extra)


def _record(
    checkpoint: Path, points: bool, complete: bool, overrides: list[tuple[str, Any]]
) -> tuple[dict | None, str | None]:
    """The checkpoint's record of its training data's input preprocessing
    (:func:`ckconv.app.preprocess.preprocessing_record`) and its task's name; ``(None, None)``
    for a model file (no training task). With ``complete``, checkpoints from before they
    recorded it, and point-cloud checkpoints from before the record described clouds, have it
    read off the task's data."""
    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.module import CHECKPOINT_KEY
    from ckconv.app.preprocess import preprocessing_record

    extra = load_checkpoint(checkpoint).get(CHECKPOINT_KEY) or {}
    if "config" not in extra:
        return None, None
    task = (extra["config"].get("task") or {}).get("name")
    record = extra.get("input_preprocessing")
    if not complete or (record is not None and not (points and "num_points" not in record)):
        return record, task
    from ckconv.app.evaluation import load_model

    try:
        _, _, bundle = load_model(checkpoint, overrides)
    except (ConfigError, FileNotFoundError) as err:
        what = "its points per cloud nor " if points else ""
        raise InputError(
            f"the checkpoint records neither {what}its input preprocessing, and the task's "
            f"data cannot tell ({err}); say where the data is (task.path=... or "
            "task.root=...), or pass "
            + ("--input-size N and " if points else "")
            + "--raw-inputs to export the model alone (the artefact then takes preprocessed "
            "inputs)"
        ) from None
    return preprocessing_record(bundle), task


def _preprocessing(record: dict[str, Any] | None, task: str | None) -> tuple[nn.Module, str] | None:
    """The module that maps the data's own units to the model's inputs and what those units
    are (None: the artefact takes model inputs; ``record`` None is a model file)."""
    if record is None or record.get("kind") == "tokens":
        return None
    if record.get("kind") == "points":
        if not (record.get("unit_ball") or record.get("unit_normals")):
            return None  # the clouds go in as the data gives them
        units = f"{record.get('units', 'the data')}, normalised per cloud in the artefact"
        return CloudNormalize(record["unit_ball"], record["unit_normals"]), units
    if record.get("kind") == "unknown":
        why = record.get("reason") or "it cannot put that into the artefact"
        raise InputError(
            f"cannot tell how task {task!r} ({record.get('dataset')}) preprocesses its "
            f"inputs: {why}; pass --raw-inputs to export the model alone (the artefact then "
            "takes inputs preprocessed as in training)"
        )
    pre = InputAffine.from_record(record)
    if pre is None:
        raise InputError(f"unknown input preprocessing {record.get('kind')!r} in the checkpoint")
    return ChannelAffine(pre.scale, pre.shift), f"inputs in {pre.units}, preprocessing included"


def _point_size(args: argparse.Namespace, train: tuple[int, ...] | None) -> tuple[int, ...]:
    """The points per cloud to export for: ``--input-size`` or the training data's."""
    if args.rate is not None:
        raise ArgumentValueError(
            "--rate: a point-cloud model takes no sampling rate; --input-size N sets the points "
            "per cloud (another point density than in training, as `ckconv eval "
            "task.num_points=N`)",
            "--rate",
        )
    if args.input_size is None:
        if train is None:
            raise ArgumentValueError(
                "no points per cloud recorded (a model file); pass --input-size N", "--input-size"
            )
        return train
    if len(args.input_size) != 1:
        raise ArgumentValueError(
            f"--input-size: a point-cloud model takes one number, the points per cloud; got "
            f"{list(args.input_size)}",
            "--input-size",
        )
    size = (args.input_size[0],)
    if train is not None and size != train:
        print(
            f"{size[0]} points per cloud (trained with {train[0]}): another point density, "
            f"what `ckconv eval task.num_points={size[0]}` measures"
        )
    return size


def _expected_sizes(train: tuple[int, ...], rate: Fraction) -> list[set[int]]:
    """Per dimension, the sizes inputs of ``train`` samples have at ``rate``: ``round`` (the
    resampling of ``ckconv eval --rate``) or ``ceil`` (``seq[::n]`` keeps the first sample)."""
    return [{max(1, round(t * rate)), max(1, math.ceil(t * rate))} for t in train]


def _size_and_rate(args: argparse.Namespace, train: tuple[int, ...] | None):
    """The input size to bake for and the rate (None: the training rate)."""
    from ckconv.app.rates import parse_rate, rate_label

    rate = None if args.rate is None else parse_rate(args.rate, "--rate")
    if args.input_size is None:
        if train is None:
            raise ArgumentValueError(
                "no input size recorded; pass --input-size (one int per dimension; for a "
                "point-cloud model the points per cloud)",
                "--input-size",
            )
        if rate is None or rate == 1:
            return train, None
        size = tuple(max(1, round(t * rate)) for t in train)
        print(f"input size {size} from --rate {rate_label(rate)} (trained at {train})")
        return size, rate
    size = tuple(args.input_size)
    if train is None:
        return size, rate
    if len(size) != len(train):
        raise ArgumentValueError(
            f"--input-size: {len(size)} number(s) {list(size)} for a model trained on "
            f"{len(train)}-D inputs of size {list(train)}",
            "--input-size",
        )
    if rate is None:
        ratios = [Fraction(s, t) for s, t in zip(size, train)]
        derived = ratios[0] if len(set(ratios)) == 1 else tuple(ratios)
        if derived == 1:
            return size, None
        shown = rate_label(derived) if isinstance(derived, Fraction) else (
            "(" + ", ".join(rate_label(r) for r in derived) + ")"
        )  # fmt: skip
        print(f"rate {shown} from --input-size {list(size)} (trained at {list(train)})")
        return size, derived
    expected = _expected_sizes(train, rate)
    if any(s not in e for s, e in zip(size, expected)):
        want = [sorted(e) for e in expected]
        raise ArgumentValueError(
            f"--input-size {list(size)} does not match --rate {rate_label(rate)}: inputs of "
            f"{list(train)} samples at that rate have {want} samples; give one of the two",
            "--input-size",
        )
    return size, rate


def _check_arguments(args: argparse.Namespace) -> None:
    """The command line's numbers and the packages ``--format`` needs, before any work."""
    for size in args.input_size or ():
        positive_int("--input-size", size)
    if args.in_channels is not None:
        positive_int("--in-channels", args.in_channels)
    positive_int("--batch-size", args.batch_size)
    if args.batch_size < 2 and not args.static_batch:
        raise ArgumentValueError(
            f"--batch-size {args.batch_size} with a dynamic batch: torch.export specialises "
            "batch sizes 0 and 1, so the example needs 2 or more (the artefact then runs any "
            "batch size); or pass --static-batch",
            "--batch-size",
        )
    if args.format == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ArgumentValueError(
                f"--format onnx needs {' and '.join(missing)}: pip install 'ckconv[export]' "
                "(onnx, onnxscript and onnxruntime)",
                "--format",
            )


def _model_rate(rate: Any) -> Any:
    if rate is None:
        return None
    return tuple(float(r) for r in rate) if isinstance(rate, tuple) else float(rate)


def main_export(argv: list[str] | None = None) -> int:
    """``ckconv export --checkpoint FILE|RUN --format onnx|pt2 --out PATH [--input-size ...]``.

    Returns 0 on success, 1 when the exported artefact does not reproduce the model, 2 on
    bad arguments or files.
    """
    parser = _parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        overrides = _overrides(parser, extra)
        _check_arguments(args)
        checkpoint = resolve_checkpoint(args.checkpoint)
        rebuilt = rebuild_model(checkpoint, overrides)
        model = rebuilt.model
        points = any(isinstance(m, PointConv) for m in model.modules())
        complete = not args.raw_inputs or (points and args.input_size is None)
        record, task = _record(checkpoint, points, complete, overrides)
        if points:
            num_points = None if record is None else record.get("num_points")
            size, rate = _point_size(args, None if num_points is None else (int(num_points),)), None
        else:
            size, rate = _size_and_rate(args, rebuilt.input_size)
        rate = _model_rate(rate)
        pre = None if args.raw_inputs else _preprocessing(record, task)
        example = example_input(model, size, args.batch_size, in_channels=args.in_channels)
        exported: nn.Module = (
            bake(model, size, rate=rate, blur=args.blur, method=args.method)
            if continuous_layers(model)
            else model
        )
        if pre is not None:
            front = pre[0].to(example.device)
            exported = nn.Sequential(front, exported).eval()
            if isinstance(front, ChannelAffine):  # an example in the data's units
                example = example / front.scale.reshape(1, -1, *(1,) * (example.dim() - 2))
        out = Path(args.out)
        with expected_warnings_silenced():
            if args.format == "pt2":
                export_pt2(exported, out, example, dynamic_batch=not args.static_batch)
            else:
                export_onnx(exported, out, example, dynamic_batch=not args.static_batch)
    except (
        InputError,
        ArgumentError,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
    ) as err:
        print(f"ckconv export: {err}", file=sys.stderr)
        return 2
    inputs = "inputs as the model takes them" if pre is None else pre[1]
    print(
        f"wrote {out} ({args.format}, input {tuple(example.shape)}, {inputs}, "
        f"{out.stat().st_size:,} bytes)"
    )
    if args.no_check:
        return 0
    with torch.no_grad():
        kwargs = {} if rate is None else {"rate": rate}
        if args.blur:
            kwargs["blur"] = True
        x = example if pre is None else exported[0](example)
        expected = model(x, **kwargs)
        got = _run_artefact(args.format, out, example)
    if got is None:
        print("not checked: onnxruntime is not installed (pip install onnxruntime)")
        return 0
    err = float((got.to(expected.dtype) - expected).abs().max())
    scale = float(expected.abs().max()) or 1.0
    print(f"check: max |exported - model| = {err:.3g} (outputs up to {scale:.3g})")
    if err > 1e-4 * max(1.0, scale):
        print("ckconv export: the exported model does not reproduce the model", file=sys.stderr)
        return 1
    return 0
