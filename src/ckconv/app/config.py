"""Run configuration: a YAML file plus command-line overrides, checked before anything runs.

A config has five sections (see ``ckconv train --help`` or :data:`SECTION_DOCS`)::

    name: ccnn_4_140_smnist
    seed: 0
    task:    {name: smnist, root: null, <options of the task's datasets>}
    model:   {name: ccnn, preset: ccnn_4_140, <keyword arguments of the model>}
    optim:   {optimizer: adamw, lr: 0.01, scheduler: cosine, warmup_epochs: 10, ...}
    trainer: {max_epochs: 210, batch_size: 100, ...}

``task`` and ``model`` take free keys (the task's options, listed by its table entry
``ckconv.data.registry.TaskInfo.options``, and the keyword arguments of the model class); they are
checked when the run is built, still before any training. Every other key is fixed: an unknown
key, a value of the wrong type or an impossible size fails here with a message that names the key
(as the user wrote it, with the close key it may be a typo of and the keys of its section).

The parser is written here rather than taken from a library: ``jsonargparse`` (measured on these
dataclasses) names the key of a wrong type but not the close key of an unknown one nor the
section's keys, reports types as ``<class 'float'>``, and has no notion of the two free sections.

Overrides use dotted keys, ``optim.lr=0.02`` or ``--optim.lr 0.02`` / ``--optim.lr=0.02``; values
are parsed as YAML (``1e-3``, ``true``, ``[16, 16]``, ``null``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ckconv._checks import InputError

__all__ = [
    "Config",
    "ConfigError",
    "ModelConfig",
    "OptimConfig",
    "TaskConfig",
    "TrainerConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "find_config",
    "list_configs",
    "load_config",
    "parse_overrides",
    "yaml_load",
]

CONFIG_DIR = Path(__file__).parent / "configs"


class ConfigError(InputError):
    """A config that cannot run; the message names the offending key."""


@dataclass
class TaskConfig:
    """The task (``ckconv data list`` shows them) and its dataset options.

    Keys other than ``name`` and ``root`` are keyword arguments of the task's dataset factory
    (e.g. ``length`` for ``copy_memory``, ``drop_rate`` for ``character_trajectories``).
    """

    name: str = "digits"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The network: one of ``ckconv.models.MODEL_NAMES`` and its keyword arguments.

    ``in_channels``, ``out_channels``, ``data_dim``, ``input_size`` and ``vocab_size`` come from
    the task and must not be set here. Other keys are keyword arguments of the model class.
    """

    name: str = "ccnn"
    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Optimiser, learning-rate schedule and regularisers.

    Attributes:
        optimizer: ``adam`` (CKCNN), ``adamw`` (CCNN) or ``sgd``.
        lr: learning rate of every parameter except the FlexConv masks.
        weight_decay: decoupled (adamw) or L2 (adam, sgd) decay of the ordinary parameters;
            never applied to kernel-network or mask parameters (SPEC 3.8).
        kernel_net_weight_decay: decay of the kernel-network parameters (default 0: their
            regulariser is ``kernel_l2`` on what they generate).
        kernel_l2: lambda of the L2 penalty ``lambda/2 sum ||k||^2`` on the generated kernels.
        mask_lr: learning rate of the FlexConv mask parameters (null: ``lr``).
        mask_weight_decay: decay of the mask parameters.
        betas: Adam / AdamW betas.
        momentum: SGD momentum.
        grad_clip: clip gradients to this value (0: off).
        grad_clip_algorithm: ``norm`` (global L2 norm) or ``value``.
        scheduler: ``none``, ``cosine`` (per step, with linear warm-up), ``plateau``
            (ReduceLROnPlateau on the validation metric, per epoch) or ``step``.
        warmup_epochs: linear warm-up length (cosine), in epochs (fractions allowed); a run too
            short for it (e.g. ``trainer.max_epochs`` overridden) warms up over half its steps.
        min_lr_ratio: cosine floor as a fraction of the peak lr.
        plateau_patience: epochs without improvement before the plateau scheduler decays.
        plateau_factor: plateau decay factor (CKConv Table 8's "decay 5" is 0.2).
        step_size: epochs between ``step`` decays; ``step_gamma``: their factor.
    """

    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    kernel_net_weight_decay: float = 0.0
    kernel_l2: float = 0.0
    mask_lr: float | None = None
    mask_weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    grad_clip: float = 0.0
    grad_clip_algorithm: Literal["norm", "value"] = "norm"
    scheduler: Literal["none", "cosine", "plateau", "step"] = "cosine"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    plateau_patience: int = 20
    plateau_factor: float = 0.2
    step_size: int = 30
    step_gamma: float = 0.1


@dataclass
class TrainerConfig:
    """The training loop (Lightning), data loading, checkpoints and logs.

    Attributes:
        max_epochs: epochs to train.
        max_steps: stop after this many optimiser steps (-1: no limit).
        batch_size: *global* batch size, split evenly over the processes of a torchrun job.
        eval_batch_size: batch size of validation / test (null: ``batch_size``).
        drop_last: drop the last incomplete training batch.
        limit_train_batches / limit_val_batches: use only this many batches per epoch (0: all).
        num_workers: data-loading worker processes per training process.
        accelerator: ``auto``, ``cpu``, ``gpu`` ...; ``devices``: ``auto`` or a count per node;
        num_nodes: nodes (under torchrun both are read from the environment).
        precision: Lightning precision, e.g. ``32-true``, ``bf16-mixed``.
        deterministic: ``torch.use_deterministic_algorithms(True)`` and deterministic cuDNN.
        sync_batchnorm: use synchronised BatchNorm when more than one process trains.
        accumulate_grad_batches: gradient accumulation.
        val_every_n_epochs: validate every n epochs.
        checkpoint_every_n_steps: also write ``last.ckpt`` every n optimiser steps (0: only at
            the end of each epoch); what ``--resume`` continues from after a crash.
        monitor: metric that selects ``best.ckpt`` (null: the task's main validation metric).
        monitor_mode: ``max`` or ``min`` for ``monitor``; ``auto``: the task metric's own
            direction, or ``min`` for a monitored loss / mse / bpc, else ``max``.
        log_every_n_steps: how often training metrics are written.
        progress_bar: show a progress bar.
        tensorboard: also write TensorBoard logs (needs the ``tensorboard`` package).
        out_dir: runs are written to ``<out_dir>/<name>/<version>/``.
        version: the run folder's name (null: a timestamp).
        test_after_fit: evaluate ``best.ckpt`` on the test split after training.
    """

    max_epochs: int = 10
    max_steps: int = -1
    batch_size: int = 32
    eval_batch_size: int | None = None
    drop_last: bool = False
    limit_train_batches: int = 0
    limit_val_batches: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    deterministic: bool = False
    sync_batchnorm: bool = True
    accumulate_grad_batches: int = 1
    val_every_n_epochs: int = 1
    checkpoint_every_n_steps: int = 0
    monitor: str | None = None
    monitor_mode: Literal["auto", "max", "min"] = "auto"
    log_every_n_steps: int = 10
    progress_bar: bool = True
    tensorboard: bool = False
    out_dir: str = "runs"
    version: str | None = None
    test_after_fit: bool = True


@dataclass
class Config:
    """A whole run. ``name`` names the run folder; ``seed`` seeds everything (plus the rank)."""

    name: str = "run"
    seed: int = 0
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


# Sections whose unknown keys are collected into ``options`` (checked later against signatures).
_OPEN_SECTIONS = {"task": TaskConfig, "model": ModelConfig}
_SECTIONS = {
    "task": TaskConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "trainer": TrainerConfig,
}
SECTION_DOCS = {name: (cls.__doc__ or "").strip() for name, cls in _SECTIONS.items()}


# ----------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked (and losslessly converted, int -> float) against the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise _type_error(key, tp, value)
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise _type_error(key, tp, value)
    if tp is type(None):
        if value is None:
            return None
        raise _type_error(key, tp, value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(key, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(f"{key}: expected a finite number, got {value!r}")
            return float(value)
        raise _type_error(key, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, tp, value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, tp, value)
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, tp, value)
        return dict(value)
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # a bug in this module


def _type_error(key: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _unknown_key(key: str, known: list[str]) -> ConfigError:
    section, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"; did you mean {(section + '.' if section else '') + close[0]!r}?" if close else ""
    where = f"section {section!r}" if section else "the config"
    return ConfigError(
        f"unknown config key {key!r}{hint} Keys of {where}: {', '.join(sorted(known))}"
    )


def _build_dataclass(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    open_section = cls in _OPEN_SECTIONS.values()
    kwargs: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"{prefix}: keys must be strings, got {key!r}")
        dotted = f"{prefix}.{key}" if prefix else key
        if open_section and key == "options":
            raise ConfigError(
                f"{dotted}: write the options directly under {prefix!r} (e.g. {prefix}.dropout: 0.1)"
            )
        if key not in fields:
            if open_section:
                options[key] = value
                continue
            raise _unknown_key(dotted, list(fields))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build_dataclass(tp, value, dotted)
        else:
            kwargs[key] = _coerce(value, tp, dotted)
    if open_section:
        kwargs["options"] = options
    return cls(**kwargs)


def _check_values(cfg: Config) -> None:
    """Ranges and cross-field constraints (sizes that cannot work)."""

    def positive(key: str, value: float | int | None, allow_zero: bool = False) -> None:
        if value is None:
            return
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(f"{key}: must be {bound}, got {value!r}")

    o, t = cfg.optim, cfg.trainer
    if not cfg.name or "/" in cfg.name or cfg.name in (".", ".."):
        raise ConfigError(f"name: must be a non-empty folder name without '/', got {cfg.name!r}")
    if cfg.seed < 0:
        raise ConfigError(f"seed: must be >= 0, got {cfg.seed}")
    positive("optim.lr", o.lr)
    positive("optim.mask_lr", o.mask_lr)
    for key in (
        "weight_decay",
        "kernel_net_weight_decay",
        "kernel_l2",
        "mask_weight_decay",
        "grad_clip",
        "warmup_epochs",
        "min_lr_ratio",
        "momentum",
    ):
        positive(f"optim.{key}", getattr(o, key), allow_zero=True)
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1), got {o.betas!r}")
    if o.min_lr_ratio > 1:
        raise ConfigError(f"optim.min_lr_ratio: must be in [0, 1], got {o.min_lr_ratio}")
    if not 0.0 < o.plateau_factor < 1.0:
        raise ConfigError(f"optim.plateau_factor: must be in (0, 1), got {o.plateau_factor}")
    positive("optim.plateau_patience", o.plateau_patience, allow_zero=True)
    positive("optim.step_size", o.step_size)
    positive("optim.step_gamma", o.step_gamma)
    positive("trainer.max_epochs", t.max_epochs)
    if t.max_steps == 0 or t.max_steps < -1:
        raise ConfigError(f"trainer.max_steps: must be -1 (no limit) or > 0, got {t.max_steps}")
    positive("trainer.batch_size", t.batch_size)
    positive("trainer.eval_batch_size", t.eval_batch_size)
    for key in (
        "limit_train_batches",
        "limit_val_batches",
        "num_workers",
        "checkpoint_every_n_steps",
    ):
        positive(f"trainer.{key}", getattr(t, key), allow_zero=True)
    positive("trainer.num_nodes", t.num_nodes)
    positive("trainer.accumulate_grad_batches", t.accumulate_grad_batches)
    positive("trainer.val_every_n_epochs", t.val_every_n_epochs)
    positive("trainer.log_every_n_steps", t.log_every_n_steps)
    if isinstance(t.devices, str) and t.devices != "auto":
        raise ConfigError(f"trainer.devices: expected 'auto' or a positive int, got {t.devices!r}")
    if isinstance(t.devices, int):
        positive("trainer.devices", t.devices)
    if t.version is not None and (not t.version or "/" in t.version):
        raise ConfigError(f"trainer.version: must be a folder name without '/', got {t.version!r}")
    for key in ("in_channels", "out_channels", "data_dim", "input_size", "vocab_size"):
        if key in cfg.model.options:
            raise ConfigError(
                f"model.{key}: set by the task ({cfg.task.name!r}), remove it from the config"
            )


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and check a :class:`Config` from nested plain data (a parsed YAML file)."""
    cfg = _build_dataclass(Config, copy.deepcopy(data), "")
    _check_values(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested data (the resolved config written next to a run); inverse of
    :func:`config_from_dict`."""
    out: dict[str, Any] = {"name": cfg.name, "seed": cfg.seed}
    for section in _SECTIONS:
        value = getattr(cfg, section)
        data = {f.name: copy.deepcopy(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if section in _OPEN_SECTIONS:
            data.update(data.pop("options"))
        out[section] = data
    return out


# ----------------------------------------------------------------------------- files, overrides


def list_configs() -> list[str]:
    """Names of the configs shipped with ckconv (one per paper experiment)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(path_or_name: str | Path) -> Path:
    """A config file: an existing path, else a shipped config of that name (``ccnn_4_140_smnist``,
    ``configs/ccnn_4_140_smnist.yaml`` and ``ccnn_4_140_smnist.yaml`` all find the same file)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (path.stem + ".yaml")
    if path.suffix in ("", ".yaml", ".yml") and shipped.is_file():
        return shipped
    close = difflib.get_close_matches(path.stem, list_configs(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `ckconv configs` lists them"
    raise ConfigError(f"--config: no file {str(path)!r} and no shipped config {path.stem!r}{hint}")


_FLOAT_12 = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as a float (YAML 1.2; PyYAML's YAML 1.1
    rules would make it the string ``"1e-3"``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_overrides(args: list[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=0.1", "--trainer.max_epochs", "3", "--seed=1"]`` -> ``[(key, value), ...]``.

    Values are parsed as YAML scalars / flow collections.
    """
    import yaml

    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            body = arg[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            else:
                if i + 1 >= len(args):
                    raise ConfigError(f"override {arg}: missing value")
                key, raw = body, args[i + 1]
                i += 1
        elif "=" in arg:
            key, raw = arg.split("=", 1)
        else:
            raise ConfigError(
                f"cannot read override {arg!r}: write key=value or --key value (e.g. optim.lr=0.01)"
            )
        if not _KEY.match(key):
            raise ConfigError(f"override {arg!r}: {key!r} is not a dotted config key")
        try:
            value = yaml_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override {key}: cannot parse value {raw!r} ({err})") from None
        out.append((key, value))
        i += 1
    return out


def apply_overrides(data: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted ``key`` set to its value (sections created as needed)."""
    data = copy.deepcopy(data)
    for key, value in overrides:
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {key}: {prefix!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (a path or a shipped config's name), apply overrides, check it all.

    Without a path the defaults of :class:`Config` are the base.
    """
    data = _read_yaml(find_config(path)) if path is not None else {}
    data = apply_overrides(data, parse_overrides(list(overrides or [])))
    return config_from_dict(data)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text (key order as in the dataclasses)."""
    import yaml

    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
