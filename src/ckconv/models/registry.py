"""The one table of models built by name (app configs, checkpoints).

Each :class:`ModelEntry` says what a model is: its class, the arguments its name fixes (``gru``
and ``lstm`` are one :class:`~ckconv.models.RNN` class), its presets, the inputs it takes
(:data:`InputKind`) and the options it accepts, read off the class's constructor.
:func:`build_model` builds a model from a name and keyword arguments; an option the model does
not have raises :class:`ModelOptionError` naming it.

>>> entry = model_entry("ckcnn")
>>> entry.cls.__name__, entry.takes("tokens"), entry.takes("grid2d")
('CKCNN', True, False)
>>> build_model("tcn", in_channels=1, out_channels=2, levels=3)  # doctest: +ELLIPSIS
Traceback (most recent call last):
ckconv.models.registry.ModelOptionError: 'levels' is not an option of model 'tcn' (TCN) ...
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from torch import nn

from ckconv._checks import ArgumentValueError
from ckconv.models.baselines import RNN, TCN, ResNet
from ckconv.models.ccnn import CCNN, CCNN_PRESETS
from ckconv.models.ckcnn import CKCNN
from ckconv.models.hyena import HYENA_PRESETS, HyenaNet
from ckconv.models.point_ccnn import POINT_CCNN_PRESETS, PointCCNN

__all__ = [
    "INPUT_KINDS",
    "MODELS",
    "MODEL_NAMES",
    "InputKind",
    "ModelEntry",
    "ModelOptionError",
    "build_model",
    "model_entry",
]

#: What a model takes: a float grid ``(N, C, *spatial)`` of 1, 2 or 3 spatial dimensions, token
#: ids ``(N, L)``, point-cloud features ``(N, C, P)`` whose first channels are the positions, or
#: sampled values with their times (``model(values, times=..., mask=..., weighting=...)``).
InputKind = Literal["grid1d", "grid2d", "grid3d", "tokens", "points", "timestamps"]
#: Every :data:`InputKind`, in order.
INPUT_KINDS: tuple[InputKind, ...] = get_args(InputKind)

# constructor arguments that are not model options (where the model lives, not what it is)
_NOT_OPTIONS = ("self", "device", "dtype")


class ModelOptionError(ArgumentValueError):
    """A keyword argument the model does not accept (``option`` and ``argument`` name it)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message, option)

    @property
    def option(self) -> str:
        return self.argument


@dataclass(frozen=True)
class ModelEntry:
    """One buildable model.

    Args:
        name: the name configs and checkpoints use.
        cls: the ``nn.Module`` class; its constructor's keyword arguments are the options.
        inputs: the :data:`InputKind` values the model takes.
        presets: named option sets (``build_model(name, preset=..., ...)``; explicit options win).
        fixed: constructor arguments the name sets (not options).
    """

    name: str
    cls: type[nn.Module]
    inputs: frozenset[InputKind]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.inputs) - set(INPUT_KINDS)
        if unknown:
            raise ValueError(f"inputs: unknown input kinds {sorted(unknown)}; use {INPUT_KINDS}")

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The constructor's option parameters, by name."""
        params = inspect.signature(self.cls.__init__).parameters
        return {
            k: p
            for k, p in params.items()
            if k not in _NOT_OPTIONS
            and k not in self.fixed
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    @property
    def options(self) -> tuple[str, ...]:
        """Every keyword :meth:`build` accepts (``preset`` when the model has presets)."""
        return (*self.parameters, *(("preset",) if self.presets else ()))

    def default(self, option: str) -> Any:
        """The constructor's default of ``option`` (``inspect.Parameter.empty`` if required)."""
        return self.parameters[option].default

    def takes(self, kind: InputKind) -> bool:
        """Whether the model takes inputs of ``kind``."""
        return kind in self.inputs

    def check_options(self, names: Iterable[str]) -> None:
        """Raise :class:`ModelOptionError` for the first name that is not an option."""
        known = self.options
        for key in names:
            if key in known:
                continue
            if key in self.fixed:
                why = f"{key!r} is set by the model name {self.name!r} ({key}={self.fixed[key]!r})"
            else:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                why = (
                    f"{key!r} is not an option of model {self.name!r} ({self.cls.__name__}){hint}; "
                    f"its options: {', '.join(known)}"
                )
            raise ModelOptionError(why, key)

    def build(self, **kwargs: Any) -> nn.Module:
        """The model with these options (a ``preset`` fills the options not given)."""
        self.check_options(kwargs)
        preset = kwargs.pop("preset", None)
        if preset is not None:
            if preset not in self.presets:
                raise ModelOptionError(
                    f"unknown {self.name} preset {preset!r}; choose from {sorted(self.presets)}",
                    "preset",
                )
            kwargs = {**self.presets[preset], **kwargs}
        return self.cls(**self.fixed, **kwargs)


_GRIDS: frozenset[InputKind] = frozenset({"grid1d", "grid2d", "grid3d"})
_SEQUENCES: frozenset[InputKind] = frozenset({"grid1d", "tokens"})

#: Every model :func:`build_model` builds, by name.
MODELS: Mapping[str, ModelEntry] = MappingProxyType(
    {
        e.name: e
        for e in (
            ModelEntry("ccnn", CCNN, _GRIDS | {"tokens", "timestamps"}, CCNN_PRESETS),
            ModelEntry("ckcnn", CKCNN, _SEQUENCES | {"timestamps"}),
            ModelEntry("hyena", HyenaNet, _GRIDS | {"tokens"}, HYENA_PRESETS),
            ModelEntry("tcn", TCN, _SEQUENCES),
            ModelEntry("gru", RNN, _SEQUENCES, fixed={"kind": "gru"}),
            ModelEntry("lstm", RNN, _SEQUENCES, fixed={"kind": "lstm"}),
            ModelEntry("resnet", ResNet, _GRIDS),
            ModelEntry("point_ccnn", PointCCNN, frozenset({"points"}), POINT_CCNN_PRESETS),
        )
    }
)
#: Model names :func:`build_model` accepts.
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of ``name`` (case-insensitive); unknown names raise ValueError."""
    entry = MODELS.get(str(name).lower())
    if entry is None:
        close = difflib.get_close_matches(str(name).lower(), MODEL_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}; choose from {list(MODEL_NAMES)}")
    return entry


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build model ``name`` (one of :data:`MODEL_NAMES`) with its keyword arguments.

    ``preset="ccnn_4_140"`` (models with presets) fills the options not given. Unknown options
    raise :class:`ModelOptionError` naming the option.
    """
    return model_entry(name).build(**kwargs)
