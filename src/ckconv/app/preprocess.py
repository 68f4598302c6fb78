"""The input preprocessing of a task's datasets: what ``ckconv export`` puts in front of an
exported model so the artefact takes the data's own units. For grids a per-channel affine map
(:func:`input_affine`); for point clouds the per-cloud normalisation of the reader
(:func:`point_preprocessing`: centring in the unit ball, unit normals).

Only preprocessing whose form is known by the dataset's type is described; anything else
is recorded as ``unknown`` (the export then refuses unless told ``--raw-inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["InputAffine", "input_affine", "point_preprocessing", "preprocessing_record"]


@dataclass(frozen=True)
class InputAffine:
    """``model_input = raw * scale[c] + shift[c]``; ``units`` says what the raw values are."""

    scale: tuple[float, ...]
    shift: tuple[float, ...]
    units: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> InputAffine | None:
        """The affine map of a :func:`preprocessing_record` (None for any other kind)."""
        if record.get("kind") != "affine":
            return None
        return cls(tuple(record["scale"]), tuple(record["shift"]), str(record["units"]))


def preprocessing_record(bundle: Any) -> dict[str, Any]:
    """What a checkpoint records of its task's input preprocessing (plain data), so ``ckconv
    export`` needs no data: ``{"kind": "affine", scale, shift, units}``, ``{"kind": "tokens"}``
    (token ids, nothing to do), for point clouds ``{"kind": "points", num_points, unit_ball,
    unit_normals, units}`` (:func:`point_preprocessing`; ``num_points``: the points per cloud
    of the training data) or ``{"kind": "unknown", "dataset": <type name>, "reason": ...}``."""
    if bundle.spec.tokens:
        return {"kind": "tokens"}
    if getattr(bundle, "points", False):
        record = point_preprocessing(bundle.datasets["train"])
        record["num_points"] = int(bundle.spec.input_size[-1])
        return record
    affine = input_affine(bundle.datasets["train"])
    if affine is None:
        return {"kind": "unknown", "dataset": type(bundle.datasets["train"]).__name__}
    return {"kind": "affine", "scale": list(affine.scale), "shift": list(affine.shift),
            "units": affine.units}  # fmt: skip


def _standardised(mean, std, channels: int, divisor: float, eps: float) -> tuple[tuple, tuple]:
    """``(raw / divisor - mean) / (std + eps)`` as ``raw * scale + shift``, per channel."""
    mean = [0.0] * channels if mean is None else [float(v) for v in mean]
    std = [1.0 - eps] * channels if std is None else [float(v) for v in std]
    scale = tuple(1.0 / (divisor * (s + eps)) for s in std)
    shift = tuple(-m / (s + eps) for m, s in zip(mean, std))
    return scale, shift


def input_affine(dataset: Any) -> InputAffine | None:
    """The affine preprocessing of ``dataset``'s inputs, or None when its type does not say.

    By type: :class:`~ckconv.data.images.ImageClassification` (MNIST, CIFAR-10, digits ...)
    divides the stored integers by its ``scale`` and standardises with ``mean`` / ``std``;
    :class:`~ckconv.data.own.ImageFolder` divides 8-bit pixels by 255 and standardises
    (``std + 1e-5``); :class:`~ckconv.data.uea.UEADataset` standardises the series
    (``std + 1e-5``); :class:`~ckconv.data.own.ArrayDataset` takes the arrays as they are.
    All are per channel, so they commute with pixel reshapes / permutations and with
    resampling (interpolation weights sum to 1). Subsets are read through.
    """
    from torch.utils.data import Subset

    from ckconv.data.images import ImageClassification
    from ckconv.data.own import ArrayDataset, ImageFolder, _Part
    from ckconv.data.uea import UEADataset

    while isinstance(dataset, (Subset, _Part)):
        dataset = dataset.dataset
    if isinstance(dataset, ImageClassification):
        channels = int(dataset.images.shape[1])
        scale, shift = _standardised(dataset.mean, dataset.std, channels, dataset.scale, 0.0)
        return InputAffine(scale, shift, f"stored pixel values 0..{dataset.scale:g}")
    if isinstance(dataset, ImageFolder):
        channels = 1 if dataset.mode == "L" else 3
        scale, shift = _standardised(dataset.mean, dataset.std, channels, 255.0, 1e-5)
        size = "x".join(str(s) for s in dataset.size)
        return InputAffine(scale, shift, f"pixel values 0..255 at {size}")
    if isinstance(dataset, UEADataset) and type(dataset) is UEADataset:
        channels = int(dataset.num_channels)
        scale, shift = _standardised(dataset.mean, dataset.std, channels, 1.0, 1e-5)
        return InputAffine(scale, shift, "the series' own values")
    if isinstance(dataset, ArrayDataset) and dataset.times is None:
        channels = int(dataset.x.shape[1])
        return InputAffine((1.0,) * channels, (0.0,) * channels, "the arrays' own values")
    return None


def point_preprocessing(dataset: Any) -> dict[str, Any]:
    """The per-cloud preprocessing of a point-cloud dataset's items ``(C, N)`` (rows 0-2
    positions, 3-5 normals), by type, as a :func:`preprocessing_record` without
    ``num_points``: ``unit_ball`` (positions centred at their mean and scaled so the farthest
    point is at distance 1, :func:`ckconv.data.modelnet.normalize_points`) and ``unit_normals``
    (normals scaled to length 1); both are functions of the cloud alone, so an exported model
    can apply them (:class:`ckconv.deploy.CloudNormalize`).

    :class:`~ckconv.data.own.PointFolder` does both (unless ``normalize=False``; normals only
    when it keeps them); :class:`~ckconv.data.modelnet.ModelNet` centres the positions (its
    normals are the mesh's); :class:`~ckconv.data.shapes.SyntheticShapes` generates its
    clouds in the unit ball and does nothing more. Voxelised clouds
    (:class:`~ckconv.data.shapes.VoxelCentreClouds`) and anything else are ``unknown``.
    """
    from torch.utils.data import Subset

    from ckconv.data.modelnet import ModelNet
    from ckconv.data.own import PointFolder, _Part
    from ckconv.data.shapes import SyntheticShapes, VoxelCentreClouds

    while isinstance(dataset, (Subset, _Part)):
        dataset = dataset.dataset
    if isinstance(dataset, PointFolder):
        on = dataset.normalize
        units = "the files' coordinates" if on else "the files' coordinates (used as they are)"
        return {"kind": "points", "unit_ball": on, "unit_normals": on and dataset.normals,
                "units": units}  # fmt: skip
    if isinstance(dataset, ModelNet):
        return {"kind": "points", "unit_ball": True, "unit_normals": False,
                "units": "the meshes' coordinates"}  # fmt: skip
    if isinstance(dataset, SyntheticShapes) and _plain_shapes(dataset):
        return {"kind": "points", "unit_ball": False, "unit_normals": False,
                "units": "the generated clouds' coordinates"}  # fmt: skip
    name = type(dataset).__name__
    if isinstance(dataset, VoxelCentreClouds):
        return {"kind": "unknown", "dataset": name,
                "reason": "it voxelises each cloud and keeps occupied-voxel centres, which an "
                "exported model cannot do"}  # fmt: skip
    return {"kind": "unknown", "dataset": name}


def _plain_shapes(dataset: Any) -> bool:
    """A :class:`~ckconv.data.shapes.SyntheticShapes` whose transform only keeps positions."""
    from ckconv.data.builders import _Positions

    return dataset.transform is None or isinstance(dataset.transform, _Positions)
