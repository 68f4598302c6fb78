"""Checkpoints that describe their model, and the one loader that rebuilds it.

A checkpoint is a ``torch.save``'d dict with

* ``"model_spec"``: ``{"format_version": 1, "name": <MODEL_NAMES entry>, "kwargs": {...}}``, the
  :func:`~ckconv.models.build_model` call that rebuilds the network (:class:`ModelSpec`), and
* ``"state_dict"``: the weights. Keys may carry the prefixes wrappers add: Lightning's
  ``model.`` (``ckconv train``), DDP's ``module.``, ``torch.compile``'s ``_orig_mod.``.

Everything else in the file (optimiser state, the app's run config) is ignored here.
:func:`load_checkpoint` needs torch and ``ckconv.models`` only: no training app, no datasets.
Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only).
Files written before checkpoints described their model: ``ckconv train`` checkpoints carry the
run config instead, which the training app still rebuilds from (``ckconv eval``); model
files of the old ``ckconv.deploy.save_model`` (``"model_config"`` = ``{"name", **kwargs}`` and
``"model_state"``) are read as a spec.

>>> import tempfile, torch
>>> spec = ModelSpec("ckcnn", {"in_channels": 1, "out_channels": 2, "input_size": 16})
>>> model = spec.build().eval()
>>> path = save_checkpoint(f"{tempfile.mkdtemp()}/m.ckpt", model, spec)
>>> x = torch.randn(3, 1, 16)
>>> torch.equal(load_checkpoint(path)(x), model(x))
True
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from ckconv._checks import InputError
from ckconv.models.registry import build_model, model_entry

__all__ = [
    "SPEC_FORMAT_VERSION",
    "SPEC_KEY",
    "CheckpointError",
    "ModelSpec",
    "atomic_torch_save",
    "atomic_write",
    "load_checkpoint",
    "load_weights",
    "model_from_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

#: Version of the ``"model_spec"`` entry this ckconv writes (and the newest it reads).
SPEC_FORMAT_VERSION = 1
#: The checkpoint entry that holds the :class:`ModelSpec` (:meth:`ModelSpec.to_dict`).
SPEC_KEY = "model_spec"
# prefixes wrappers put in front of a model's own state-dict keys
_WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.")


class CheckpointError(InputError):
    """A file that is not a readable ckconv checkpoint (truncated, corrupt, not ours)."""


def _check_plain(value: Any, where: str) -> None:
    """Spec arguments are plain data (they are stored and read with ``weights_only=True``)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str, got {k!r}")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(
        f"{where}: a model spec stores plain values (None, bool, int, float, str, lists, tuples, "
        f"dicts), got {type(value).__name__}"
    )


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild a model: ``build_model(name, **kwargs)``.

    Args:
        name: a :data:`~ckconv.models.MODEL_NAMES` entry (stored in its canonical spelling).
        kwargs: the model's keyword arguments, plain values only; unknown options raise
            :class:`~ckconv.models.ModelOptionError` here, not when the file is read back.
    """

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entry = model_entry(self.name)
        kwargs = dict(self.kwargs)
        _check_plain(kwargs, "kwargs")
        entry.check_options(kwargs)
        object.__setattr__(self, "name", entry.name)
        object.__setattr__(self, "kwargs", kwargs)

    def build(self) -> nn.Module:
        """A fresh model (random weights) of this spec."""
        return build_model(self.name, **self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint entry: ``{"format_version", "name", "kwargs"}``."""
        return {
            "format_version": SPEC_FORMAT_VERSION,
            "name": self.name,
            "kwargs": dict(self.kwargs),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "model_spec") -> ModelSpec:
        """Read :meth:`to_dict`'s output; a malformed entry raises :class:`CheckpointError`."""
        if not isinstance(data, Mapping) or not {"format_version", "name", "kwargs"} <= set(data):
            raise CheckpointError(
                f"{source}: a model_spec needs format_version, name and kwargs, got "
                f"{sorted(data) if isinstance(data, Mapping) else type(data).__name__}"
            )
        version = data["format_version"]
        if not isinstance(version, int) or not 1 <= version <= SPEC_FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: model_spec format_version {version!r} is not one this ckconv reads "
                f"(1..{SPEC_FORMAT_VERSION}); a newer ckconv wrote it"
            )
        if not isinstance(data["kwargs"], Mapping):
            raise CheckpointError(f"{source}: model_spec kwargs must be a dict")
        try:
            return cls(str(data["name"]), data["kwargs"])
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{source}: bad model_spec: {err}") from None

    def _with_run_weighting(self, contents: Mapping[str, Any]) -> ModelSpec:
        """Migration: ``ckconv train`` checkpoints written while ``weighting`` was a task key
        (``task.weighting``, read at each forward) store model kwargs without it; the run
        config they also carry (plain data under ``"ckconv"``) says which weighting trained
        the kernels, and without it a ``density`` model would be rebuilt as ``none``."""
        if "weighting" in self.kwargs or "weighting" not in model_entry(self.name).options:
            return self
        run = contents.get("ckconv")
        config = run.get("config") if isinstance(run, Mapping) else None
        task = config.get("task") if isinstance(config, Mapping) else None
        weighting = task.get("weighting") if isinstance(task, Mapping) else None
        if not isinstance(weighting, str):
            return self
        return type(self)(self.name, {**self.kwargs, "weighting": weighting})

    @classmethod
    def of(cls, contents: Mapping[str, Any], source: str = "checkpoint") -> ModelSpec | None:
        """The spec a checkpoint's contents carry, or None (written before specs were stored)."""
        if SPEC_KEY in contents:
            spec = cls.from_dict(contents[SPEC_KEY], source)
            return spec._with_run_weighting(contents)
        legacy = contents.get("model_config")
        if isinstance(legacy, Mapping) and "model_state" in contents:
            # files of the old ckconv.deploy.save_model: {"name": ..., **kwargs}
            kwargs = {k: v for k, v in legacy.items() if k != "name"}
            if isinstance(kwargs.get("input_size"), list):
                kwargs["input_size"] = tuple(kwargs["input_size"])
            data = {"format_version": 1, "name": legacy.get("name"), "kwargs": kwargs}
            return cls.from_dict(data, source)
        return None


# ----------------------------------------------------------------------------- files
def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes to a binary file, so that
    ``path`` is either the old or the complete new file.

    The bytes go to a temporary file in the destination folder, are fsync'ed, then
    ``os.replace``d over ``path`` (atomic on POSIX and Windows) and the folder is fsync'ed; a
    killed writer never leaves a truncated ``path`` (only, at worst, a ``.<name>.*.tmp`` file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The contents of a checkpoint file, read with ``weights_only=True``.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (one line naming
    the file) for a truncated, corrupt or foreign one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        contents = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        first = str(err).split(". ")[0].splitlines()[0] if str(err) else ""
        raise CheckpointError(
            f"{path}: not a loadable checkpoint with weights_only=True "
            f"({type(err).__name__}: {first})"
        ) from None
    if not isinstance(contents, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(contents).__name__}, not a dict)")
    return contents


def save_checkpoint(path: str | os.PathLike, model: nn.Module, spec: ModelSpec) -> Path:
    """Write ``model``'s weights with ``spec`` (atomically) so that :func:`load_checkpoint`
    rebuilds it; the spec is checked first by building it and loading the weights into it."""
    load_weights(spec.build(), model.state_dict(), f"model_spec {spec.name!r}")
    path = Path(path)
    atomic_torch_save({SPEC_KEY: spec.to_dict(), "state_dict": model.state_dict()}, path)
    return path


# ----------------------------------------------------------------------------- weights
def _strip_wrappers(state: Mapping[str, Any], expected: set[str]) -> dict[str, Any]:
    """The entries of ``state`` under the wrapper prefix whose keys are ``expected`` (or, when
    none matches exactly, the one that covers most of them: the strict load then says what is
    missing or unexpected)."""
    best: dict[str, Any] = dict(state)
    best_hits = len(expected & set(best))
    if set(best) == expected:
        return best
    for n in range(1, len(_WRAPPER_PREFIXES) + 1):
        for parts in itertools.permutations(_WRAPPER_PREFIXES, n):
            prefix = "".join(parts)
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if set(sub) == expected:
                return sub
            hits = len(expected & set(sub))
            if hits > best_hits:
                best, best_hits = sub, hits
    return best


def load_weights(
    model: nn.Module,
    state: Mapping[str, Any],
    source: str,
    target: str = "the model built from its spec",
) -> None:
    """``model.load_state_dict`` (strict) after removing wrapper prefixes (``model.``,
    ``module.``, ``_orig_mod.``); a mismatch raises :class:`CheckpointError` naming ``source``
    (and ``target``, what the model was built from)."""
    weights = _strip_wrappers(state, set(model.state_dict()))
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        lines = str(err).splitlines()
        detail = "; ".join(line.strip() for line in lines[1:4]) or lines[0]
        raise CheckpointError(f"{source}: the weights do not fit {target}: {detail}") from None


def model_from_checkpoint(contents: Mapping[str, Any], source: str = "checkpoint") -> nn.Module:
    """Rebuild the model of a checkpoint's contents (:func:`read_checkpoint`), in eval mode."""
    spec = ModelSpec.of(contents, source)
    if spec is None:
        raise CheckpointError(
            f"{source}: no model_spec inside (written before ckconv stored one); the training "
            "app rebuilds it from its run config (`ckconv eval/export/plot`)"
        )
    state = contents.get("state_dict", contents.get("model_state"))
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: no state_dict of weights next to its model_spec")
    try:
        model = spec.build()
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: its model_spec does not build a model: {err}") from None
    load_weights(model, state, source)
    return model.eval()


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> nn.Module:
    """The model a checkpoint describes, with its weights, in eval mode.

    Needs only torch and ``ckconv.models`` (see the module docstring for the format).
    """
    return model_from_checkpoint(read_checkpoint(path, map_location), str(path))
