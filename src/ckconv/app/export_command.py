"""``ckconv export``: bake a trained model for one input size and export it (``.pt2`` or ONNX),
then check that the artefact reproduces the model.

The model comes from the checkpoint (:func:`ckconv.app.checkpoint.rebuild_model`: the model spec
it stores, or for older ``ckconv train`` checkpoints the run config); baking and exporting are
:mod:`ckconv.deploy`'s.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch

from ckconv.app.checkpoint import rebuild_model
from ckconv.deploy import bake, continuous_layers, example_input, export_onnx, export_pt2

__all__ = ["main_export"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ckconv export",
        description=(
            "Bake a trained model for one input size and export it as a torch.export program "
            "(.pt2) or an ONNX file; the artefact is loaded back and compared with the model."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--checkpoint", required=True, help="a `ckconv train` checkpoint or a model file"
    )
    p.add_argument("--format", required=True, choices=["onnx", "pt2"])
    p.add_argument("--out", required=True, help="output file (.onnx / .pt2)")
    p.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        default=None,
        help="spatial size to bake for, one int per dimension (default: the training size)",
    )
    p.add_argument("--rate", default=None, help="sampling-rate ratio sr_input/sr_train to bake at")
    p.add_argument("--blur", action="store_true", help="blur kernels sampled finer than training")
    p.add_argument("--method", default="auto", choices=["auto", "direct", "fft"])
    p.add_argument("--batch-size", type=int, default=2, help="example batch size (default 2)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch size")
    p.add_argument("--in-channels", type=int, default=None, help="override the input channels")
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


def main_export(argv: list[str] | None = None) -> int:
    """``ckconv export --checkpoint FILE --format onnx|pt2 --out PATH [--input-size ...]``.

    Returns 0 on success, 1 when the exported artefact does not reproduce the model, 2 on
    bad arguments or files.
    """
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        rebuilt = rebuild_model(args.checkpoint)
        model = rebuilt.model
        size = args.input_size or rebuilt.input_size
        if size is None:
            raise ValueError(
                f"{args.checkpoint}: no input size recorded; pass --input-size (one int per "
                "dimension)"
            )
        size = (size,) if isinstance(size, int) else tuple(size)
        rate: Any = args.rate
        if rate is not None:
            rate = float(rate) if "/" not in rate else rate
        example = example_input(model, size, args.batch_size, in_channels=args.in_channels)
        exported = (
            bake(model, size, rate=rate, blur=args.blur, method=args.method)
            if continuous_layers(model)
            else model
        )
        out = Path(args.out)
        if args.format == "pt2":
            export_pt2(exported, out, example, dynamic_batch=not args.static_batch)
        else:
            export_onnx(exported, out, example, dynamic_batch=not args.static_batch)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"ckconv export: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {out} ({args.format}, input {tuple(example.shape)}, {out.stat().st_size:,} bytes)"
    )
    if args.no_check:
        return 0
    with torch.no_grad():
        kwargs = {} if rate is None else {"rate": rate}
        if args.blur:
            kwargs["blur"] = True
        expected = model(example, **kwargs)
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
