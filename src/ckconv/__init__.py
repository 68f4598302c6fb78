"""ckconv: continuous kernel convolutions for PyTorch."""

from ckconv import deploy, functional, grids, kernelnets, models, nn

__version__ = "0.1.0"

__all__ = ["__version__", "deploy", "functional", "grids", "kernelnets", "models", "nn"]
