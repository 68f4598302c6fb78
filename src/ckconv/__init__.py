"""ckconv: continuous kernel convolutions for PyTorch."""

from ckconv import functional, grids, kernelnets, models, nn

__version__ = "0.1.0"

__all__ = ["__version__", "functional", "grids", "kernelnets", "models", "nn"]
