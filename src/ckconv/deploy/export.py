"""Export baked models: ``torch.export`` programs (``.pt2``) and ONNX files, and the
``ckconv export`` command.

A model with continuous convolutions is first baked (:func:`ckconv.deploy.bake`) for one input
resolution; the baked model is plain torch (``F.conv{1,2,3}d``, ``torch.fft``, matmuls), so it
exports whole.  ONNX: direct convolutions become ``Conv`` nodes and the FFT path becomes
``DFT`` nodes (opset 17+), in 1D, 2D and 3D alike; ONNX export needs the optional packages
``onnx`` and ``onnxscript`` (and ``onnxruntime`` to run or check the file).  The batch size can
stay dynamic; the spatial size is the baked one.

Checkpoints :func:`load_model` reads:

* ``{"model_config": {"name": <ckconv.models.build_model name>, **kwargs}, "model_state":
  state_dict}`` (written by :func:`save_model`);
* checkpoints of ``ckconv train``: Lightning's ``state_dict`` (model weights under
  ``"model."``) plus the ``"ckconv"`` entry; when that entry holds a ``"model_config"`` (as
  above) the model is rebuilt from it, otherwise from the run config through the app, which
  needs the task's data to find the input sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ckconv.deploy.baking import bake, continuous_layers

__all__ = [
    "example_input",
    "export_onnx",
    "export_pt2",
    "load_model",
    "main_export",
    "save_model",
]


# -- inputs -------------------------------------------------------------------------------
def _input_layout(model: nn.Module) -> tuple[int | None, int | None]:
    """``(in_channels, vocab_size)`` of the model's input, as far as its modules tell."""
    from ckconv.models.common import Stem

    for mod in model.modules():
        if isinstance(mod, Stem):
            if mod.vocab_size is not None:
                return None, mod.vocab_size
            return mod.in_channels, None
        if isinstance(mod, nn.Embedding):
            return None, mod.num_embeddings
        channels = getattr(mod, "in_channels", None)
        if isinstance(channels, int):
            return channels, None
    return None, None


def example_input(
    model: nn.Module,
    input_size: int | Sequence[int],
    batch_size: int = 2,
    *,
    in_channels: int | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """A random input for ``model``: ``(batch, C_in, *input_size)`` floats, or ``(batch, L)``
    token ids for models with an embedding stem.  ``in_channels`` overrides what is read off
    the model's first layer."""
    size = (input_size,) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if not size or any(s < 1 for s in size):
        raise ValueError(f"input_size must be positive ints, got {input_size!r}")
    found, vocab = _input_layout(model)
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else None
    if vocab is not None and in_channels is None:
        if len(size) != 1:
            raise ValueError(f"token models take sequences: input_size must be one int, got {size}")
        return torch.randint(0, vocab, (batch_size, size[0]), device=device)
    channels = in_channels if in_channels is not None else found
    if channels is None:
        raise ValueError(
            f"cannot tell the input channels of {type(model).__name__}; pass in_channels=..."
        )
    dtype = dtype or (ref.dtype if ref is not None and ref.is_floating_point() else None)
    return torch.randn(batch_size, channels, *size, device=device, dtype=dtype)


def _check_exportable(model: nn.Module) -> None:
    layers = continuous_layers(model)
    if layers:
        raise ValueError(
            f"{type(model).__name__} still has continuous layers (e.g. {layers[0][0] or 'itself'!r}) "
            "whose kernel networks do not export; bake it first: "
            "ckconv.deploy.bake(model, input_size)"
        )


def _dynamic_shapes(example: torch.Tensor, dynamic_batch: bool) -> Any:
    if not dynamic_batch:
        return None
    if example.shape[0] < 2:
        raise ValueError(
            "a dynamic batch dimension needs an example input with batch size >= 2 (torch.export "
            f"specialises sizes 0 and 1), got {tuple(example.shape)}"
        )
    return ({0: torch.export.Dim("batch", min=1)},)


# -- export --------------------------------------------------------------------------------
def export_pt2(
    model: nn.Module,
    path: str | os.PathLike,
    example: torch.Tensor,
    *,
    dynamic_batch: bool = True,
) -> torch.export.ExportedProgram:
    """``torch.export`` a baked model and save it with ``torch.export.save`` to ``path``.

    Load it anywhere with ``torch.export.load(path).module()(x)`` (no ckconv needed).

    Args:
        model: a baked model (no CKConv/FlexConv left).
        example: an input of the baked size (batch size >= 2 for ``dynamic_batch``).
        dynamic_batch: export the batch dimension as dynamic.
    """
    _check_exportable(model)
    model = model.eval()
    program = torch.export.export(
        model, (example,), dynamic_shapes=_dynamic_shapes(example, dynamic_batch)
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return program


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    example: torch.Tensor,
    *,
    dynamic_batch: bool = True,
    opset_version: int | None = None,
) -> Path:
    """Export a baked model to an ONNX file (the ``torch.export``-based exporter).

    Needs the optional packages ``onnx`` and ``onnxscript``; run the file with
    ``onnxruntime``.  The input is named ``"input"``, the output ``"output"``.
    """
    _check_exportable(model)
    missing = [m for m in ("onnx", "onnxscript") if _find(m) is None]
    if missing:
        raise ImportError(
            f"ONNX export needs {' and '.join(missing)}: pip install onnx onnxscript "
            "(and onnxruntime to run the file)"
        )
    model = model.eval()
    kwargs: dict[str, Any] = {}
    if opset_version is not None:
        kwargs["opset_version"] = opset_version
    shapes = _dynamic_shapes(example, dynamic_batch)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        dynamic_shapes=shapes,
        input_names=["input"],
        output_names=["output"],
        verbose=False,
        **kwargs,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


def _find(module: str) -> Any:
    import importlib.util

    return importlib.util.find_spec(module)


# -- checkpoints ----------------------------------------------------------------------------
def save_model(path: str | os.PathLike, model: nn.Module, model_config: dict[str, Any]) -> None:
    """Write ``{"model_config": model_config, "model_state": model.state_dict()}``.

    ``model_config`` is ``{"name": <build_model name>, **build_model keyword arguments}``;
    it is checked by rebuilding the model and loading the weights into it.
    """
    config = dict(model_config)
    _load_weights(_build(config), model.state_dict(), "model_config")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_config": config, "model_state": model.state_dict()}, path)


def _load_weights(model: nn.Module, state: dict[str, Any], source: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = str(err).splitlines()
        detail = "; ".join(line.strip() for line in lines[1:4]) or lines[0]
        raise ValueError(
            f"the weights do not match the model built from {source}: {detail}"
        ) from None


def _build(config: dict[str, Any]) -> nn.Module:
    from ckconv.models import build_model

    if "name" not in config:
        raise ValueError(
            f"model_config needs a 'name' (one of ckconv.models.MODEL_NAMES), got keys "
            f"{sorted(config)}"
        )
    kwargs = {k: v for k, v in config.items() if k != "name"}
    if isinstance(kwargs.get("input_size"), list):
        kwargs["input_size"] = tuple(kwargs["input_size"])
    return build_model(config["name"], **kwargs)


def _from_app(path: Path, ckpt: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    extra = ckpt.get("ckconv") or {}
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if not state:
        raise ValueError(f"{path}: the checkpoint's state_dict has no 'model.' weights")
    if "model_config" in extra:
        config = dict(extra["model_config"])
        model = _build(config)
    elif "config" in extra:
        try:
            from ckconv.app.config import config_from_dict
            from ckconv.app.tasks import build_model_from_config, build_task
        except ImportError as err:
            raise ImportError(
                f"{path}: rebuilding a `ckconv train` model needs the app extra "
                f"(pip install 'ckconv[app]'): {err}"
            ) from None
        cfg = config_from_dict(extra["config"])
        try:
            bundle = build_task(cfg)
        except Exception as err:
            raise ValueError(
                f"{path}: the checkpoint stores no model_config, and the model's input sizes "
                f"come from task {cfg.task.name!r}, whose data could not be loaded "
                f"({type(err).__name__}: {err})"
            ) from None
        model = build_model_from_config(cfg, bundle)
        spec = bundle.spec
        config = {"name": cfg.model.name, "input_size": tuple(spec.input_size)}
        if spec.tokens:
            config["vocab_size"] = bundle.vocab_size
        else:
            config["in_channels"] = spec.in_channels
    else:
        raise ValueError(f"{path}: a Lightning checkpoint without the 'ckconv' entry")
    _load_weights(model, state, f"{path}'s config")
    return model, config


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint (see the module docstring for the formats).

    Returns the model (eval mode) and its config (``name`` and the ``build_model`` keyword
    arguments known, in particular ``input_size`` when recorded).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{path}: not a checkpoint loadable with weights_only=True ({type(err).__name__})"
        ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    if "model_state" in ckpt and "model_config" in ckpt:
        config = dict(ckpt["model_config"])
        model = _build(config)
        _load_weights(model, ckpt["model_state"], f"{path}'s model_config")
    elif "state_dict" in ckpt:
        model, config = _from_app(path, ckpt)
    else:
        raise ValueError(
            f"{path}: neither a ckconv model file (model_config + model_state) nor a "
            f"`ckconv train` checkpoint (state_dict + ckconv); keys: {sorted(ckpt)[:8]}"
        )
    return model.eval(), config


# -- command ---------------------------------------------------------------------------------
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
    if _find("onnxruntime") is None:
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
        model, config = load_model(args.checkpoint)
        size = args.input_size or config.get("input_size")
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


if __name__ == "__main__":
    sys.exit(main_export())
