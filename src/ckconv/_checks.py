"""Argument checks shared by every layer and model: one message format for bad input.

Each check names the user's argument (``name`` is what the caller of the public API typed,
e.g. ``mask_init_sigma`` rather than the inner module's ``init_sigma``), shows the value and
says what is expected.  Dependency-free so every layer of the package may use it.

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

__all__ = [
    "PADDING_MODES",
    "WEIGHTINGS",
    "ArgumentError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "InputError",
    "Weighting",
    "choice",
    "int_at_least",
    "open_unit",
    "padding_modes",
    "positive_int",
    "positive_number",
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
