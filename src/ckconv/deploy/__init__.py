"""Deployment: baked (fixed-kernel) models, export, and causal streaming inference.

* :func:`bake` freezes a trained model's continuous convolutions for one input size into
  plain torch modules (:class:`BakedConv`): no kernel networks at inference, traceable by
  ``torch.export`` / ``torch.compile(fullgraph=True)`` / the ONNX exporter.
* :func:`export_pt2`, :func:`export_onnx`, :func:`load_model` and the ``ckconv export``
  command (:func:`main_export`) write deployable artefacts.
* :func:`stream` runs a causal model chunk by chunk with outputs identical to the offline
  forward (:class:`Streamer`, :class:`StreamingConv`).
"""

from ckconv.deploy.baked import BakedConv
from ckconv.deploy.baking import bake, continuous_layers
from ckconv.deploy.export import (
    example_input,
    export_onnx,
    export_pt2,
    load_model,
    main_export,
    save_model,
)
from ckconv.deploy.streaming import Streamer, StreamingConv, stream

__all__ = [
    "BakedConv",
    "Streamer",
    "StreamingConv",
    "bake",
    "continuous_layers",
    "example_input",
    "export_onnx",
    "export_pt2",
    "load_model",
    "main_export",
    "save_model",
    "stream",
]
