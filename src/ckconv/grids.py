"""Coordinate grids on which continuous kernels are sampled, and sampling-rate arithmetic.

Conventions (SPEC §3.1):

* A kernel of ``K`` samples along a dimension is sampled at ``linspace(-1, 1, K)`` at the
  *training* sampling rate: the grid step is ``2 / (K - 1)`` (``K = 1`` gives the single
  position 0, or +1 when causal).
* N-D grids are the ``'ij'`` meshgrid of the per-dimension positions; the coordinate axis is
  last: a grid of sizes ``(K_1, ..., K_D)`` has shape ``(K_1, ..., K_D, D)``.
* Causal (1D): position +1 is the current sample, -1 the oldest.  Centred: offset 0 is the
  kernel tap at index ``(K - 1) // 2`` (the tap ``F.conv{1,2,3}d(..., padding="same")`` places
  on the output position).
* A change of sampling rate is a *rate ratio* ``r = sr_test / sr_train`` per dimension: the
  kernel is sampled at step ``2 / ((K - 1) r)``, aligned with the training grid (the anchor tap,
  +1 causal or the centre tap, stays on the grid), and multiplied by ``1 / r`` per dimension so
  that Riemann sums keep their value (CKConv eq. 5).
* A periodic (circular) axis: see :func:`circular_axis_positions` -- the kernel is sampled at
  one position per relative offset of one period.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import torch

from ckconv._checks import ArgumentTypeError, ArgumentValueError

__all__ = [
    "as_rates",
    "as_sizes",
    "axis_positions",
    "circular_axis_positions",
    "grid_step",
    "kernel_grid",
    "meshgrid",
    "rate_scale",
]

RateLike = float | int | Fraction | str | Sequence[float | int | Fraction | str]


def as_sizes(size: int | Sequence[int], data_dim: int, name: str = "size") -> tuple[int, ...]:
    """Broadcast an int or a sequence of ints to a ``data_dim``-tuple of positive ints."""
    if isinstance(size, bool):
        raise TypeError(f"{name} must be an int or a sequence of {data_dim} ints, got {size!r}")
    if isinstance(size, int):
        sizes = (size,) * data_dim
    else:
        try:
            sizes = tuple(int(s) for s in size)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a sequence of {data_dim} ints, got {size!r}"
            ) from None
        if any(not float(s).is_integer() for s in size):
            raise TypeError(f"{name} must contain integers, got {size!r}")
    if len(sizes) != data_dim:
        raise ValueError(f"{name} must have {data_dim} entries (one per dimension), got {size!r}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"{name} must be positive in every dimension, got {size!r}")
    return sizes


def _parse_rate(r: float | int | Fraction | str, name: str) -> float:
    if isinstance(r, bool) or (isinstance(r, torch.Tensor) and r.dtype == torch.bool):
        raise ArgumentTypeError(
            f"{name} must be a positive number or fraction like '1/2', got {r!r} (a bool is not "
            "a rate)",
            name,
        )
    try:
        value = float(Fraction(r)) if isinstance(r, str) else float(r)
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        raise ArgumentValueError(
            f"{name} must be a positive number or fraction like '1/2', got {r!r}", name
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ArgumentValueError(f"{name} must be a positive finite number, got {r!r}", name)
    return value


def as_rates(rate: RateLike | None, data_dim: int, name: str = "rate") -> tuple[float, ...]:
    """Broadcast a sampling-rate ratio (``sr_test / sr_train``) to one float per dimension.

    Accepts numbers, :class:`fractions.Fraction` and strings such as ``"1/2"``.
    ``None`` means 1 (the training rate).
    """
    if rate is None:
        return (1.0,) * data_dim
    if isinstance(rate, (int, float, Fraction, str)) or getattr(rate, "ndim", None) == 0:
        return (_parse_rate(rate, name),) * data_dim
    try:
        entries = list(rate)
    except TypeError:
        raise ArgumentTypeError(
            f"{name} must be a number, a fraction string like '1/2' or one per dimension, got "
            f"{type(rate).__name__} {rate!r}",
            name,
        ) from None
    rates = tuple(_parse_rate(r, name) for r in entries)
    if len(rates) != data_dim:
        raise ArgumentValueError(
            f"{name} must have {data_dim} entries (one per dimension), got {rate!r}", name
        )
    return rates


def grid_step(size: int) -> float:
    """Step of the training grid ``linspace(-1, 1, size)`` (2 for a single sample)."""
    return 2.0 / (size - 1) if size > 1 else 2.0


def axis_positions(
    size: int,
    *,
    causal: bool = False,
    rate: float = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Positions along one axis for a kernel of ``size`` training samples at rate ratio ``rate``.

    At ``rate == 1`` this is exactly ``torch.linspace(-1, 1, size)`` (causal with ``size == 1``:
    ``[1.]``; centred: ``[0.]``).  Otherwise the step is ``grid_step(size) / rate``, the anchor
    (+1 causal; the centre tap ``(size - 1) // 2`` centred) stays where it was, and every
    position inside ``[-1, 1]`` is kept.  For centred grids the result keeps the
    ``F.conv(padding="same")`` convention: the anchor is at index ``(len - 1) // 2``.

    Returns:
        1-D tensor of positions in increasing order.
    """
    dtype = dtype or torch.get_default_dtype()
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if rate == 1.0:
        if size == 1:
            return torch.full((1,), 1.0 if causal else 0.0, device=device, dtype=dtype)
        return torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    step = grid_step(size) / rate
    eps = 1e-9
    if causal:
        n_back = math.floor(2.0 / step + eps) if size > 1 else 0
        offsets = torch.arange(-n_back, 1, device=device, dtype=torch.float64)
        pos = 1.0 + offsets * step
    else:
        centre = (size - 1) // 2
        anchor = -1.0 + centre * grid_step(size) if size > 1 else 0.0
        n_left = math.floor((anchor + 1.0) / step + eps) if size > 1 else 0
        n_right = math.floor((1.0 - anchor) / step + eps) if size > 1 else 0
        # keep the 'same' convention: the anchor sits at index (len - 1) // 2
        n_right = min(n_right, n_left + 1)
        n_left = min(n_left, n_right)
        offsets = torch.arange(-n_left, n_right + 1, device=device, dtype=torch.float64)
        pos = anchor + offsets * step
    return pos.to(dtype)


def circular_axis_positions(
    size: int,
    *,
    rate: float = 1.0,
    period: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Kernel positions along a periodic axis: one per relative offset of one period.

    The kernel's ``size`` training taps sit at ``linspace(-1, 1, size)`` (step ``h``); each
    stands for a cell one step wide, so the kernel covers the window
    ``[-1 - h/2, 1 + h/2]`` -- ``size`` steps, one whole period when ``size`` is the training
    period (``kernel_size="same"``).  An input of ``period`` samples at rate ratio ``rate``
    has ``period`` relative offsets ``o`` (modulo ``period``), ``-((period - 1) // 2) .. period
    // 2`` around the anchor (the tap ``(size - 1) // 2``, offset 0, as for
    ``padding="same"``), at positions ``anchor + o h / rate``.  An offset whose position falls
    outside the window is represented by its periodic image ``+- period * h / rate`` when that
    lies inside (the seam of the period: at ``rate > 1`` the samples within ``h/2`` beyond
    ``+1`` or ``-1``); offsets with no position in the window get no tap.  The kept offsets
    form the largest run around 0 with the ``padding="same"`` layout (anchor at index
    ``(len - 1) // 2``).

    Even and odd periods: for odd ``size`` offset 0 is position 0 and the offsets are
    symmetric; for even ``size`` the offsets run ``-(size/2 - 1) .. size/2`` (the half-period
    offset ``size/2``, which equals ``-size/2``, is sampled once, at ``+1``) and offset 0 sits
    at ``-1/(size - 1)``, as in a zero-padded kernel of even size.

    At ``rate == 1`` with ``period >= size`` (or no period) the result is exactly
    ``torch.linspace(-1, 1, size)``.  Without ``period`` the window's grid at ``rate`` is
    returned (every grid position inside the window, ``padding="same"`` layout).

    Returns:
        1-D tensor of positions, in offset order (a wrapped seam position may break the
        increasing order).
    """
    dtype = dtype or torch.get_default_dtype()
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if period is not None and period < 1:
        raise ValueError(f"period must be positive, got {period}")
    h = grid_step(size)
    centre = (size - 1) // 2
    anchor = -1.0 + centre * h if size > 1 else 0.0
    lo, hi = anchor - (centre + 0.5) * h, anchor + (size - 1 - centre + 0.5) * h
    eps = 1e-9
    if rate == 1.0 and (period is None or period >= size):
        return (
            torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
            if size > 1
            else (torch.zeros(1, device=device, dtype=dtype))
        )
    step = h / rate
    if period is None:
        n_left = math.floor((anchor - lo) / step + eps)
        n_right = math.floor((hi - anchor) / step + eps)
        positions = {o: anchor + o * step for o in range(-n_left, n_right + 1)}
    else:
        span = period * step
        positions = {}
        for o in range(-((period - 1) // 2), period // 2 + 1):
            for p in (anchor + o * step, anchor + o * step - span, anchor + o * step + span):
                if lo - eps <= p <= hi + eps:
                    positions[o] = p
                    break
    left = 0
    while -(left + 1) in positions:
        left += 1
    right = 0
    while right + 1 in positions:
        right += 1
    right = min(right, left + 1)
    left = min(left, right)
    pos = torch.tensor(
        [positions[o] for o in range(-left, right + 1)], device=device, dtype=torch.float64
    )
    return pos.to(dtype)


def kernel_grid(
    sizes: int | Sequence[int],
    *,
    data_dim: int | None = None,
    causal: bool = False,
    rate: RateLike | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The N-D grid of kernel positions, coordinate axis last.

    Args:
        sizes: kernel samples per dimension at the training rate (int or one per dimension).
        data_dim: number of dimensions (inferred from ``sizes`` when it is a sequence).
        causal: causal convention (only meaningful for ``data_dim == 1``).
        rate: sampling-rate ratio ``sr_test / sr_train`` (per dimension or one for all).

    Shape:
        Output: ``(K_1, ..., K_D, D)`` with ``K_d = len(axis_positions(sizes[d], rate=rate[d]))``.

    Examples:
        >>> kernel_grid((3, 5)).shape
        torch.Size([3, 5, 2])
        >>> kernel_grid(5)[..., 0].tolist()
        [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    if data_dim is None:
        data_dim = 1 if isinstance(sizes, int) else len(sizes)
    if causal and data_dim != 1:
        raise ValueError(f"causal grids are 1-D only, got data_dim={data_dim}")
    ks = as_sizes(sizes, data_dim, "sizes")
    rs = as_rates(rate, data_dim)
    return meshgrid(
        [
            axis_positions(k, causal=causal, rate=r, device=device, dtype=dtype)
            for k, r in zip(ks, rs)
        ]
    )


def meshgrid(axes: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ``'ij'`` meshgrid of per-dimension positions, coordinate axis last: ``(*K, D)``.

    The one place positions become a grid: :func:`kernel_grid` (the full training grid) and
    every layer's :meth:`~ckconv.nn.ContinuousConv.kernel` (its possibly cropped axes) use it.
    """
    if len(axes) == 1:
        return axes[0].unsqueeze(-1)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def rate_scale(rate: RateLike | None, data_dim: int) -> float:
    """Kernel multiplier ``prod_d sr_train / sr_test`` that keeps responses equal (CKConv eq. 5)."""
    scale = 1.0
    for r in as_rates(rate, data_dim):  # a loop, not a generator: torch.compile traces it
        scale *= 1.0 / r
    return scale
