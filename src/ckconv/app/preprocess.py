"""The input preprocessing of a task's datasets as a per-channel affine map: what ``ckconv
export`` puts in front of an exported model so the artefact takes the data's own units.

Only preprocessing whose form is known by the dataset's type is described; anything else
returns None (the export then refuses unless told ``--raw-inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["InputAffine", "input_affine", "preprocessing_record"]


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
    (token ids, nothing to do) or ``{"kind": "unknown", "dataset": <type name>}``."""
    if bundle.spec.tokens:
        return {"kind": "tokens"}
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
