"""Build models by name (what the app's configs refer to)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ckconv.models.baselines import RNN, TCN, ResNet
from ckconv.models.ccnn import CCNN
from ckconv.models.ckcnn import CKCNN
from ckconv.models.point_ccnn import PointCCNN

__all__ = ["MODEL_NAMES", "build_model"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "ccnn": CCNN,
    "ckcnn": CKCNN,
    "tcn": TCN,
    "gru": lambda *a, **k: RNN(*a, kind="gru", **k),
    "lstm": lambda *a, **k: RNN(*a, kind="lstm", **k),
    "resnet": ResNet,
    "point_ccnn": PointCCNN,
}
#: Model names :func:`build_model` accepts.
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build ``name`` (one of :data:`MODEL_NAMES`) with the model's own keyword arguments.

    ``CCNN`` presets: pass ``preset="ccnn_4_140"`` (or ``"ccnn_6_380"``) with ``name="ccnn"``.
    """
    key = name.lower()
    if key not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose from {list(MODEL_NAMES)}")
    if key in ("ccnn", "point_ccnn") and "preset" in kwargs:
        preset = kwargs.pop("preset")
        in_ch = kwargs.pop("in_channels")
        out_ch = kwargs.pop("out_channels")
        return (CCNN if key == "ccnn" else PointCCNN).preset(preset, in_ch, out_ch, **kwargs)
    return _BUILDERS[key](**kwargs)
