"""What the fixed-kernel deploy layers share (:class:`~ckconv.deploy.BakedConv`,
:class:`~ckconv.deploy.StreamingConv`): a kernel buffer, an optional spectrum buffer derived
from it, the separable layer's pointwise mixer and the bias."""

from __future__ import annotations

import torch
from torch import nn


class FixedKernelConv(nn.Module):
    """Base of the deploy layers: ``weight`` (buffer), ``spectrum`` (buffer or None, always
    recomputed from ``weight``), ``mixer`` and ``bias`` (parameters or None).

    Subclasses register ``weight``, ``spectrum``, ``mixer`` and ``bias``
    (:func:`~ckconv.nn._params.register_mixer_and_bias`) and implement :meth:`_spectrum_of`.
    """

    weight: torch.Tensor
    spectrum: torch.Tensor | None

    def _spectrum_of(self, weight: torch.Tensor) -> torch.Tensor:
        """The complex spectrum to store for ``weight`` (shape of ``spectrum`` minus its last
        (real, imag) dimension)."""
        raise TypeError(f"{type(self).__name__} has a spectrum buffer but no _spectrum_of")

    def reset_parameters(self) -> None:
        """Zero kernel and bias, unit-variance mixer (a deploy layer is normally filled by
        ``from_conv`` / :meth:`set_kernel_`)."""
        self.set_kernel_(torch.zeros_like(self.weight))
        if self.mixer is not None:
            nn.init.kaiming_uniform_(self.mixer, nonlinearity="linear")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @torch.no_grad()
    def set_kernel_(self, weight: torch.Tensor) -> None:
        """Replace the kernel (and recompute its spectrum, where the layer keeps one)."""
        if tuple(weight.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"weight must have shape {tuple(self.weight.shape)}, got {tuple(weight.shape)}"
            )
        self.weight.copy_(weight)
        if self.spectrum is not None:
            spec = self._spectrum_of(self.weight).resolve_conj().contiguous()
            self.spectrum.copy_(torch.view_as_real(spec))

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        # After .to(dtype) / .double() / device moves, recompute the spectrum from the kernel
        # so it has the precision of the new dtype (a converted complex64 spectrum would keep
        # float32 rounding, and the FFT path would disagree with the direct one in float64).
        out = super()._apply(fn, recurse)
        if self.spectrum is not None and self.weight.device.type != "meta":
            self.set_kernel_(self.weight)
        return out
