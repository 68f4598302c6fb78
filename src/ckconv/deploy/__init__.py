"""Deployment: baked (fixed-kernel) models, export, and causal streaming inference."""

from ckconv.deploy.bake import bake, continuous_layers
from ckconv.deploy.baked import BakedConv

__all__ = ["BakedConv", "bake", "continuous_layers"]
