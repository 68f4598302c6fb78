"""Export baked models: ``torch.export`` programs (``.pt2``) and ONNX files.

A model with continuous convolutions is first baked (:func:`ckconv.deploy.bake`) for one input
resolution; the baked model is plain torch (``F.conv{1,2,3}d``, ``torch.fft``, matmuls), so it
exports whole.  ONNX: direct convolutions become ``Conv`` nodes and the FFT path becomes
``DFT`` nodes (opset 17+), in 1D, 2D and 3D alike; ONNX export needs the optional packages
``onnx`` and ``onnxscript`` (and ``onnxruntime`` to run or check the file).  The batch size can
stay dynamic; the spatial size is the baked one.

Point-cloud models (:class:`ckconv.models.PointCCNN`, the point layers) are not baked: the
kernel networks stay in the program, which takes clouds of the example's size
``(B, C, N)`` with a dynamic ``B``.  Under export their neighbour search runs the torch backend
and their work is split into blocks sized for one cloud, so nothing depends on the batch size
(:func:`ckconv.functional.neighbors.block_rows`).

A trained model comes back from its checkpoint with :func:`ckconv.models.load_checkpoint`; the
``ckconv export`` command (in the app) does load, bake, export and check in one go.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ckconv._checks import ArgumentValueError
from ckconv.deploy.baking import continuous_layers

__all__ = ["ChannelAffine", "CloudNormalize", "example_input", "export_onnx", "export_pt2"]


class ChannelAffine(nn.Module):
    """``x * scale[c] + shift[c]`` per channel: a model's input preprocessing (e.g. the
    standardisation of its training data), put in front of an exported model so the artefact
    takes inputs in the data's own units.

    Shape:
        - Input: ``(N, C, *spatial)``
        - Output: same shape

    Examples:
        >>> import torch
        >>> pre = ChannelAffine([1 / 16], [-0.5])    # 0..16 pixel values -> [-0.5, 0.5]
        >>> pre(torch.full((1, 1, 2), 16.0))
        tensor([[[0.5000, 0.5000]]])
    """

    def __init__(self, scale: Sequence[float], shift: Sequence[float]) -> None:
        super().__init__()
        scale_t = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
        shift_t = torch.as_tensor(shift, dtype=torch.float32).reshape(-1)
        if scale_t.shape != shift_t.shape or scale_t.numel() == 0:
            raise ArgumentValueError(
                f"scale and shift need one value per channel each, got {tuple(scale_t.shape)} "
                f"and {tuple(shift_t.shape)}",
                "shift",
            )
        self.register_buffer("scale", scale_t)
        self.register_buffer("shift", shift_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.reshape(view).to(x.dtype) + self.shift.reshape(view).to(x.dtype)

    def extra_repr(self) -> str:
        return f"channels={self.scale.numel()}"


class CloudNormalize(nn.Module):
    """The per-cloud normalisation of point readers, put in front of an exported point model
    so the artefact takes clouds in their own coordinates: positions (rows 0-2) centred at
    their mean and scaled so the farthest point is at distance 1 (``unit_ball``; a cloud of
    one repeated point is only centred), normals (rows 3-5) scaled to length 1
    (``unit_normals``; zero normals stay zero); further rows pass through. It is
    :func:`ckconv.data.modelnet.normalize_points` on each cloud, in torch, and idempotent:
    clouds normalised already come out the same (to float rounding).

    Shape:
        - Input: ``(N, C, P)``: ``N`` clouds of ``P`` points, ``C >= 3`` rows
        - Output: same shape

    Examples:
        >>> import torch
        >>> pre = CloudNormalize()
        >>> pre(torch.tensor([[[1.0, 3.0], [5.0, 5.0], [0.0, 0.0]]]))
        tensor([[[-1.,  1.],
                 [ 0.,  0.],
                 [ 0.,  0.]]])
    """

    def __init__(self, unit_ball: bool = True, unit_normals: bool = False) -> None:
        super().__init__()
        self.unit_ball = bool(unit_ball)
        self.unit_normals = bool(unit_normals)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos, normals, rest = x[:, :3], x[:, 3:6], x[:, 6:]
        if self.unit_ball:
            pos = pos - pos.mean(dim=-1, keepdim=True)
            radius = pos.norm(dim=1, keepdim=True).amax(dim=-1, keepdim=True)  # (N, 1, 1)
            pos = pos / torch.where(radius > 0, radius, torch.ones_like(radius))
        if self.unit_normals and normals.shape[1] > 0:
            length = normals.norm(dim=1, keepdim=True)
            normals = normals / torch.where(length > 0, length, torch.ones_like(length))
        return torch.cat([pos, normals, rest], dim=1)

    def extra_repr(self) -> str:
        return f"unit_ball={self.unit_ball}, unit_normals={self.unit_normals}"


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
        raise ArgumentValueError(
            f"input_size must be positive ints, got {input_size!r}", "input_size"
        )
    found, vocab = _input_layout(model)
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else None
    if vocab is not None and in_channels is None:
        if len(size) != 1:
            raise ArgumentValueError(
                f"token models take sequences: input_size must be one int, got {size}",
                "input_size",
            )
        return torch.randint(0, vocab, (batch_size, size[0]), device=device)
    channels = in_channels if in_channels is not None else found
    if channels is None:
        raise ArgumentValueError(
            f"cannot tell the input channels of {type(model).__name__}; pass in_channels=...",
            "in_channels",
        )
    dtype = dtype or (ref.dtype if ref is not None and ref.is_floating_point() else None)
    return torch.randn(batch_size, channels, *size, device=device, dtype=dtype)


def _check_exportable(model: nn.Module) -> None:
    layers = continuous_layers(model)
    if layers:
        raise ArgumentValueError(
            f"{type(model).__name__} still has continuous layers (e.g. {layers[0][0] or 'itself'!r}) "
            "whose kernel networks do not export; bake it first: "
            "ckconv.deploy.bake(model, input_size)",
            "model",
        )


def _dynamic_shapes(example: torch.Tensor, dynamic_batch: bool) -> Any:
    if not dynamic_batch:
        return None
    if example.shape[0] < 2:
        raise ArgumentValueError(
            "a dynamic batch dimension needs an example input with batch size >= 2 (torch.export "
            f"specialises sizes 0 and 1), got {tuple(example.shape)}",
            "example",
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

    Point-cloud models export too: under export their neighbour search orders candidates with
    ONNX's ``TopK`` (equal distances in index order, as in eager) instead of a stable sort,
    which ONNX does not have.
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
