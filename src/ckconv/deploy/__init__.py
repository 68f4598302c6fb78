"""Deployment: baked (fixed-kernel) models, export, and causal streaming inference."""

from ckconv.deploy.bake import bake, continuous_layers
from ckconv.deploy.baked import BakedConv
from ckconv.deploy.stream import Streamer, StreamingConv, stream

__all__ = ["BakedConv", "Streamer", "StreamingConv", "bake", "continuous_layers", "stream"]
