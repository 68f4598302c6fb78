"""Gaussian kernel masks (FlexConv) and the crops they allow.

The mask is ``m(x) = exp(-1/2 sum_d (x_d - mu_d)^2 / (sigma_d^2 + 1e-8))`` (SPEC §3.4); the
``1e-8`` keeps gradients finite as ``sigma -> 0``.  It falls below a threshold ``tau`` beyond
``mu_d +- w_d`` with ``w_d = sigma_d sqrt(-2 ln tau)``.

Crop rule (the one the CCNN reference implements, which the papers' figures use):

* centred: keep offsets ``|j| <= floor(w / step)`` around the centre tap — an odd size
  ``2 i - 1`` with ``i = floor(w / step) + 1``; every kept tap has mask value ``>= tau``;
* causal: keep ``ceil(w / step) + 1`` taps ending at the current sample — the tail from the
  grid point at or just before the root, so the whole interval ``[1 - w, 1]`` is covered.

Examples: ``K = 33``, ``sigma = 0.075``, ``tau = 0.1`` -> 5 taps centred;
``K = 784`` causal -> 65 taps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["SIGMA_EPS", "crop_counts", "cropped_gaussian_mask", "gaussian_mask", "mask_extent"]

#: Added to ``sigma**2`` in the mask: keeps gradients finite as ``sigma -> 0``.
SIGMA_EPS = 1e-8
_ROUND_EPS = 1e-9


def gaussian_mask(positions: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Evaluate the (anisotropic) Gaussian mask.

    Shape:
        - positions: ``(..., D)``
        - mu, sigma: ``(D,)``
        - Output: ``(...)``
    """
    if positions.shape[-1] != mu.shape[-1] or mu.shape != sigma.shape:
        raise ValueError(
            f"positions (..., D) and mu, sigma (D,) disagree: positions {tuple(positions.shape)}, "
            f"mu {tuple(mu.shape)}, sigma {tuple(sigma.shape)}"
        )
    z = (positions - mu) ** 2 / (sigma**2 + SIGMA_EPS)
    return torch.exp(-0.5 * z.sum(-1))


def cropped_gaussian_mask(
    positions: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, threshold: float
) -> torch.Tensor:
    """The Gaussian mask times its crop indicator: 0 where the mask falls below ``threshold``.

    With ``sigma`` of shape ``(D,)`` the crop is the box ``|x_d - mu_d| <= w_d`` (anisotropic);
    with one ``sigma`` (shape ``(1,)``) for ``D`` dimensions the mask is isotropic and the crop
    is the ball ``|x - mu| <= w``, ``w = sqrt(sigma^2 + 1e-8) sqrt(-2 ln threshold)``.  The crop
    is a selection (no gradient flows through it).  Used on scattered offsets (point FlexConv);
    grid layers crop by choosing their sample positions (:func:`crop_counts`).

    Shape:
        - positions: ``(..., D)``; mu, sigma: ``(D,)`` or ``(1,)``
        - Output: ``(...)``
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    d = positions.shape[-1]
    mu, sigma = mu.to(positions.dtype).expand(d), sigma.to(positions.dtype)
    width = (sigma.detach().square() + SIGMA_EPS).sqrt() * math.sqrt(-2.0 * math.log(threshold))
    value = gaussian_mask(positions, mu, sigma.expand(d))
    if sigma.shape[-1] == 1 and d > 1:
        inside = (positions - mu).square().sum(-1) <= width[0].square()
    else:
        inside = ((positions - mu).abs() <= width.expand(d)).all(-1)
    return value * inside


def mask_extent(sigma: float, threshold: float) -> float:
    """Distance from the mask centre at which the mask falls to ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return math.sqrt(sigma * sigma + SIGMA_EPS) * math.sqrt(-2.0 * math.log(threshold))


def crop_counts(
    steps: Sequence[float],
    sigmas: Sequence[float],
    threshold: float,
    *,
    causal: bool,
) -> tuple[int, ...]:
    """Taps to keep per dimension: offsets ``0..n`` (causal) or ``-n..n`` (centred).

    Returns ``n`` per dimension (causal: ``ceil(w/step)``; centred: ``floor(w/step)``);
    the caller clips it to the taps the grid has.  A NaN or infinite ``sigma`` has no crop
    (ValueError).
    """
    out = []
    for step, sigma in zip(steps, sigmas):
        if not math.isfinite(float(sigma)):
            raise ValueError(
                f"mask_sigma must be finite, got {float(sigma)} (a FlexConv whose mask width "
                "became NaN/inf, e.g. after a diverged step, has no crop; reset or reload it)"
            )
        ratio = mask_extent(abs(float(sigma)), threshold) / step
        n = math.ceil(ratio - _ROUND_EPS) if causal else math.floor(ratio + _ROUND_EPS)
        out.append(max(n, 0))
    return tuple(out)
