"""Argument checks shared by every layer and model: one message format for bad input.

Each check names the user's argument (``name`` is what the caller of the public API typed,
e.g. ``mask_init_sigma`` rather than the inner module's ``init_sigma``), shows the value and
says what is expected.  Dependency-free so every layer of the package may use it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

__all__ = ["choice", "open_unit", "positive_int", "positive_number"]


def positive_int(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``value`` if it is an int ``>= 1`` (``None`` too with ``allow_none``), else ValueError."""
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive int{extra}, got {value!r}")
    return value


def positive_number(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``float(value)`` if it is a finite real number ``> 0`` (or ``None`` with ``allow_none``).

    A non-number raises TypeError, a number out of range ValueError.
    """
    if value is None and allow_none:
        return None
    extra = " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number{extra}, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0{extra}, got {value!r}")
    return float(value)


def open_unit(name: str, value: Any) -> float:
    """``float(value)`` if it is a number strictly between 0 and 1 (e.g. a mask threshold)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def choice(name: str, value: Any, options: Collection[Any]) -> Any:
    """``value`` if it is one of ``options``, else ValueError listing them."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value
