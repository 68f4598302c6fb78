"""Argument checks shared by every layer and model: one message format for bad input.

Each check names the user's argument (``name`` is what the caller of the public API typed,
e.g. ``mask_init_sigma`` rather than the inner module's ``init_sigma``), shows the value and
says what is expected.  It imports only the standard library and torch, so every layer of the
package may use it.

The errors are typed: :class:`ArgumentValueError` (a ``ValueError``) and
:class:`ArgumentTypeError` (a ``TypeError``) both derive from :class:`ArgumentError` and carry
the argument's name in ``.argument``, so a caller (e.g. the app mapping a model's argument to
its config key ``model.<argument>``) reads the name from a field, never from the message.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Collection, Sequence
from typing import Any, Literal

import torch

__all__ = [
    "PADDING_MODES",
    "WEIGHTINGS",
    "ArgumentError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "InputError",
    "Weighting",
    "bool_mask",
    "choice",
    "finite_tensor",
    "grid_input",
    "int_at_least",
    "open_unit",
    "padding_modes",
    "positive_int",
    "positive_number",
    "tensor",
    "unit_interval",
    "weighting",
]


class InputError(ValueError):
    """Base of the errors about what the user gave (a config key, a data file, a checkpoint, an
    argument's value): the message alone says what is wrong and where.

    The ``ckconv`` command prints any ``InputError`` (and any :class:`ArgumentError`) as one
    line on stderr and exits with code 2; every other exception is a bug and keeps its
    traceback. A ``ValueError`` subclass, so ``except ValueError`` still catches it.
    """


class ArgumentError(Exception):
    """Base of the argument errors: ``argument`` is the name the user passed the value as."""

    def __init__(self, message: str, argument: str) -> None:
        super().__init__(message)
        self.argument = argument


class ArgumentValueError(ArgumentError, InputError):
    """An argument of the right type with a value out of range (``.argument`` names it)."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type (``.argument`` names it)."""


def positive_int(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``int(value)`` if it is an integer ``>= 1`` (a Python or numpy int, not a bool;
    ``None`` too with ``allow_none``), else ValueError."""
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        extra = " or None" if allow_none else ""
        raise ArgumentValueError(f"{name} must be a positive int{extra}, got {value!r}", name)
    return int(value)


def int_at_least(name: str, value: Any, minimum: int) -> int:
    """``int(value)`` if it is an integer ``>= minimum`` (not a bool), else ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ArgumentValueError(f"{name} must be an int >= {minimum}, got {value!r}", name)
    return int(value)


def positive_number(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``float(value)`` if it is a finite real number ``> 0`` (or ``None`` with ``allow_none``).

    A non-number (a bool too) raises TypeError, a number out of range ValueError.
    """
    if value is None and allow_none:
        return None
    extra = " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(
            f"{name} must be a number{extra}, got {type(value).__name__} {value!r}", name
        )
    if not (math.isfinite(value) and value > 0):
        raise ArgumentValueError(f"{name} must be a finite number > 0{extra}, got {value!r}", name)
    return float(value)


def open_unit(name: str, value: Any) -> float:
    """``float(value)`` if it is a number strictly between 0 and 1 (e.g. a mask threshold)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ArgumentValueError(f"{name} must be a number in (0, 1), got {value!r}", name)
    return float(value)


def unit_interval(name: str, value: Any) -> float:
    """``float(value)`` if it is a number in ``[0, 1)`` (e.g. a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ArgumentValueError(f"{name} must be a number in [0, 1), got {value!r}", name)
    return float(value)


def choice(name: str, value: Any, options: Collection[Any]) -> Any:
    """``value`` if it is one of ``options``, else ValueError listing them."""
    try:
        ok = value in options
    except TypeError:  # unhashable values against a set
        ok = False
    if not ok:
        listed = ", ".join(repr(o) for o in options)
        raise ArgumentValueError(f"{name} must be one of {listed}, got {value!r}", name)
    return value


#: How a continuous convolution weights the samples it sums over (SPEC 3.7), one vocabulary for
#: every layer: ``"none"`` weight 1 (a plain sum, as on a grid), ``"mean"`` ``1/|samples|`` (Monte
#: Carlo mean; point layers), ``"density"`` inverse sampling density (local spacing on a time
#: axis, self-normalised inverse kernel density on a point cloud).
Weighting = Literal["none", "mean", "density"]
#: every :data:`Weighting`, in order
WEIGHTINGS: tuple[str, ...] = ("none", "mean", "density")
#: old names still read, with a DeprecationWarning
_WEIGHTING_ALIASES = {"sum": "none"}


def weighting(value: Any, allowed: Collection[str] = WEIGHTINGS, name: str = "weighting") -> str:
    """``value`` as one of :data:`WEIGHTINGS` that the caller ``allowed``; the old name
    ``"sum"`` (point layers) reads as ``"none"`` with a DeprecationWarning."""
    if isinstance(value, str) and value in _WEIGHTING_ALIASES:
        new = _WEIGHTING_ALIASES[value]
        warnings.warn(
            f"{name}={value!r} is deprecated; it is now called {name}={new!r}",
            DeprecationWarning,
            stacklevel=3,
        )
        value = new
    return choice(name, value, tuple(allowed))


#: Boundary conditions of the grid convolutions (``padding_mode``), as in ``torch.nn.Conv*d``.
PADDING_MODES: tuple[str, ...] = ("zeros", "circular")


def padding_modes(name: str, value: Any, data_dim: int, *, causal: bool = False) -> tuple[str, ...]:
    """One boundary condition per spatial axis from ``value``: a mode for every axis or a
    sequence of ``data_dim`` modes, each ``"zeros"`` or ``"circular"``.

    ``causal`` convolutions are zero-padded 1D convolutions: a circular axis is refused.
    """
    if isinstance(value, str):
        modes: tuple[Any, ...] = (value,) * data_dim
    elif isinstance(value, Sequence):
        modes = tuple(value)
        if len(modes) != data_dim:
            raise ArgumentValueError(
                f"{name} must be one of {', '.join(map(repr, PADDING_MODES))} or a sequence of "
                f"{data_dim} of them (one per spatial dimension), got {value!r}",
                name,
            )
    else:
        raise ArgumentTypeError(
            f"{name} must be a string or a sequence of {data_dim} strings, got "
            f"{type(value).__name__} {value!r}",
            name,
        )
    for m in modes:
        if not isinstance(m, str) or m not in PADDING_MODES:
            raise ArgumentValueError(
                f"{name} must be 'zeros' or 'circular' (one for every axis, or a sequence of "
                f"{data_dim}, one per spatial dimension), got {value!r}",
                name,
            )
    if causal and "circular" in modes:
        raise ArgumentValueError(
            f"{name}={value!r} with causal=True: causal convolutions are zero-padded (output t "
            "sees inputs <= t only, which a periodic axis would break); use causal=False for a "
            "circular axis",
            name,
        )
    return modes


# -- tensors -------------------------------------------------------------------------------
def _shape(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def tensor(name: str, value: Any, *, dims: int | None = None, floating: bool = False) -> Any:
    """``value`` if it is a tensor (with ``dims`` dimensions, floating point if asked), else
    TypeError (not a tensor, wrong dtype kind) or ValueError (wrong number of dimensions)."""
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {_shape(value)}", name)
    if floating and not value.is_floating_point():
        raise ArgumentTypeError(f"{name} must be floating point, got {_shape(value)}", name)
    if dims is not None and value.dim() != dims:
        raise ArgumentValueError(f"{name} must have {dims} dimensions, got {_shape(value)}", name)
    return value


def grid_input(name: str, value: Any, *, owner: str, channels: int, data_dim: int) -> Any:
    """A model's or layer's input on a grid: a floating tensor ``(N, channels, *data_dim
    sizes)``.  The message names the input, its shape and the expected layout, so a wrong input
    fails here instead of inside a normalisation or a matmul."""
    tensor(name, value)
    spatial = {1: "L", 2: "H, W", 3: "D, H, W"}.get(data_dim, f"*{data_dim} sizes")
    want = f"(N, {channels}, {spatial})"
    if value.dim() != data_dim + 2:
        raise ArgumentValueError(
            f"{owner} expects {name} of shape {want} ({data_dim} spatial dimension"
            f"{'s' if data_dim > 1 else ''}), got shape {tuple(value.shape)}",
            name,
        )
    if value.shape[1] != channels:
        raise ArgumentValueError(
            f"{owner} expects {name} of shape {want} with {channels} channel"
            f"{'s' if channels > 1 else ''} in dimension 1, got shape {tuple(value.shape)}",
            name,
        )
    if not value.is_floating_point():
        raise ArgumentTypeError(f"{owner} expects a floating-point {name}, got {value.dtype}", name)
    return value


def finite_tensor(name: str, value: torch.Tensor, *, where: torch.Tensor | None = None) -> None:
    """ValueError if ``value`` holds NaN or inf (only at ``where`` if given).  Skipped under
    ``torch.compile`` (a data-dependent check)."""
    if torch.compiler.is_compiling():
        return
    check = value if where is None else value[where]
    bad = ~torch.isfinite(check)
    if bool(bad.any()):
        count = int(bad.sum())
        raise ArgumentValueError(
            f"{name} contains {count} NaN or inf value{'s' if count > 1 else ''}; "
            "non-finite values cannot be convolved (set missing values to 0 and mask them)",
            name,
        )


def bool_mask(name: str, value: Any, shape: tuple[int, ...]) -> Any:
    """``value`` if it is a bool tensor of ``shape`` (e.g. observed samples ``(B, N)``)."""
    if not isinstance(value, torch.Tensor) or value.dtype != torch.bool:
        raise ArgumentTypeError(
            f"{name} must be a bool tensor of shape {shape}, got {_shape(value)}", name
        )
    if tuple(value.shape) != tuple(shape):
        raise ArgumentValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}", name)
    return value
