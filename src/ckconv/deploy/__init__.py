"""Deployment: baked (fixed-kernel) models, export, and causal streaming inference.

* :func:`bake` freezes a trained model's continuous convolutions for one input size into
  plain torch modules (:class:`BakedConv`): no kernel networks at inference, traceable by
  ``torch.export`` / ``torch.compile(fullgraph=True)`` / the ONNX exporter.
* :func:`export_pt2` and :func:`export_onnx` write deployable artefacts (the ``ckconv export``
  command does it from a checkpoint; :func:`ckconv.models.load_checkpoint` reads one).
* :func:`stream` runs a causal model chunk by chunk with outputs identical to the offline
  forward (:class:`Streamer`, :class:`StreamingConv`).
"""

from ckconv.deploy.baked import BakedConv
from ckconv.deploy.baking import bake, continuous_layers
from ckconv.deploy.export import (
    ChannelAffine,
    CloudNormalize,
    example_input,
    export_onnx,
    export_pt2,
)
from ckconv.deploy.streaming import Streamer, StreamingConv, stream

__all__ = [
    "BakedConv",
    "ChannelAffine",
    "CloudNormalize",
    "Streamer",
    "StreamingConv",
    "bake",
    "continuous_layers",
    "example_input",
    "export_onnx",
    "export_pt2",
    "stream",
]
