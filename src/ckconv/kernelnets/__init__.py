"""Kernel networks: ``positions (..., in_dims) -> kernel values (..., out_channels)``."""

from __future__ import annotations

from ckconv.kernelnets.base import KernelNet
from ckconv.kernelnets.hyena import HyenaFilter
from ckconv.kernelnets.magnet import MAGNet
from ckconv.kernelnets.mfn import FourierNet, GaborNet
from ckconv.kernelnets.mlp import MLP
from ckconv.kernelnets.rff import RFFNet
from ckconv.kernelnets.siren import SIREN

__all__ = [
    "KERNEL_NETS",
    "MLP",
    "SIREN",
    "FourierNet",
    "GaborNet",
    "HyenaFilter",
    "KernelNet",
    "MAGNet",
    "RFFNet",
    "build_kernel_net",
]

#: Kernel-net classes by the names :func:`build_kernel_net` accepts.
KERNEL_NETS: dict[str, type[KernelNet]] = {
    "siren": SIREN,
    "magnet": MAGNet,
    "gabor": GaborNet,
    "fourier": FourierNet,
    "rff": RFFNet,
    "mlp": MLP,
    "hyena": HyenaFilter,
}


def build_kernel_net(name: str, in_dims: int, out_channels: int, **kwargs) -> KernelNet:
    """Build a kernel network by name (``"siren"``, ``"magnet"``, ``"gabor"``, ``"fourier"``,
    ``"rff"``, ``"mlp"``, ``"hyena"``; case-insensitive), passing ``kwargs`` to its constructor.

    Examples:
        >>> net = build_kernel_net("magnet", 1, 16, hidden=32, omega_0=100.0)
        >>> type(net).__name__, net.layers
        ('MAGNet', 4)
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in KERNEL_NETS:
        raise ValueError(f"unknown kernel net {name!r}; expected one of {sorted(KERNEL_NETS)}")
    return KERNEL_NETS[key](in_dims, out_channels, **kwargs)
