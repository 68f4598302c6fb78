"""ckconv: continuous kernel convolutions for PyTorch."""

from ckconv import deploy, functional, grids, kernelnets, models, nn
from ckconv._checks import ArgumentError, ArgumentTypeError, ArgumentValueError, InputError

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "InputError",
    "__version__",
    "deploy",
    "functional",
    "grids",
    "kernelnets",
    "models",
    "nn",
]
