"""From a task name to what training needs: datasets, the model's input/output sizes, the loss
and the metric.

The datasets come from :mod:`ckconv.data.registry`. What the model must look like is read off one
real training item (so options such as ``drop_rate`` that add a mask channel, or ``subsample``
that shortens sequences, are accounted for): a float ``x`` of shape ``(C, *spatial)`` gives
``in_channels = C``, ``data_dim = len(spatial)`` and ``input_size = spatial``; an int64 ``x`` of
shape ``(L,)`` is a sequence of token ids (the model gets ``vocab_size``); ``x = (values (C, K),
times (K,), mask (K,))`` (``task.route: timestamps``) is a timestamped sequence of ``C`` channels,
batched by ``timestamp_collate`` and given to the model as ``model(values, times=..., mask=...)``
(how the samples are weighted is the model's ``model.weighting``). Variable-length and timestamped sequences get kernels as long as the
longest training sequence before any sample was dropped (tasks whose table entry says
``variable_length`` are batched padded, with a mask). The table entry's ``objective`` decides the
loss and the metric, and the items' targets must be of its kind:

================  ==========================  ===================  ======================
objective         target ``y``                loss                 metric (selects best)
================  ==========================  ===================  ======================
classification    int64 scalar                cross-entropy        ``acc`` (max)
per_step          int64 ``(L,)``              cross-entropy/step   ``acc`` (max)
language_model    int64 ``(L,)`` + vocab      cross-entropy/step   ``bpc`` (min)
binary_auc        int64 scalar, 2 classes     cross-entropy        ``auroc`` (max)
regression        float ``(C,)``              mean squared error   ``mse`` (min)
per_step_regr.    float ``(C, L)``            mean squared error   ``mse`` (min)
================  ==========================  ===================  ======================

PhysioNet 2019 sepsis is scored by AUC (CKConv Table 4); char-level PTB by bits per character.
Task options are checked against the names the table entry lists (``TaskInfo.options``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from ckconv import ArgumentError
from ckconv.app.config import Config, ConfigError, ModelConfig
from ckconv.app.metrics import METRICS
from ckconv.data.registry import Objective as ObjectiveKind
from ckconv.models import MODELS, InputKind, ModelEntry, ModelOptionError, ModelSpec, model_entry

__all__ = [
    "AUTO_MODEL",
    "InputSpec",
    "Objective",
    "TaskBundle",
    "build_model_from_config",
    "build_task",
    "default_config",
    "default_model",
    "describe_input",
    "input_kind",
    "model_kwargs",
    "model_spec",
    "objective_for",
    "resolve_config",
]

#: the metric of each objective (:data:`ckconv.app.metrics.METRICS` knows its direction)
_METRIC_OF: dict[str, str] = {
    "classification": "acc",
    "per_step": "acc",
    "language_model": "bpc",
    "binary_auc": "auroc",
    "regression": "mse",
    "per_step_regression": "mse",
}


@dataclass(frozen=True)
class Objective:
    """Loss and metric of a task; ``metric`` is logged as ``val/<metric>`` and ``test/<metric>``."""

    kind: ObjectiveKind
    metric: Literal["acc", "bpc", "auroc", "mse"]
    num_classes: int | None
    #: per-step tasks: the metric counts only the last ``scored_steps`` steps (None: all)
    scored_steps: int | None = None

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: the direction in which :attr:`metric` is better."""
        return METRICS[self.metric].mode

    @property
    def per_step(self) -> bool:
        return self.kind in ("per_step", "language_model", "per_step_regression")

    @property
    def classification(self) -> bool:
        return self.kind in ("classification", "per_step", "language_model", "binary_auc")


@dataclass(frozen=True)
class InputSpec:
    """The model-facing shape of a task's items."""

    in_channels: int
    data_dim: int
    input_size: tuple[int, ...]
    tokens: bool
    target_shape: tuple[int, ...]
    target_is_int: bool
    #: items are ``((values, times, mask), y)`` (``route='timestamps'``): the model is called
    #: as ``model(values, times=..., mask=...)``
    timestamps: bool = False


@dataclass
class TaskBundle:
    """Everything a run needs from its task."""

    name: str
    datasets: dict[str, Dataset]
    spec: InputSpec
    objective: Objective
    vocab_size: int | None
    out_channels: int
    collate: str  # "default", "pad" or "timestamps" (ckconv.app.datamodule.collate_fn)
    #: the deprecated ``task.weighting`` (now ``model.weighting``) if the config set it
    weighting: str | None = None
    #: ``task.causal``: the default model (``model.name: auto``) is causal
    causal: bool = False
    #: the items are point clouds ``(C, N)`` (positions first): the default model is a point CCNN
    points: bool = False
    #: splits held out of the training data (no data of their own): how, by split
    held_out: dict[str, str] = dataclasses.field(default_factory=dict)
    #: what the datasets say about how they read the data (their ``note``), once each
    notes: tuple[str, ...] = ()


def _first_item(ds: Dataset, task: str) -> tuple[Any, Any]:
    try:
        n = len(ds)  # type: ignore[arg-type]
    except TypeError:
        n = None
    if n == 0:
        raise ConfigError(f"task {task!r}: the training split is empty")
    item = ds[0]
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ConfigError(f"task {task!r}: items must be (x, y) pairs, got {type(item).__name__}")
    return item[0], item[1]


def describe_input(x: Any, y: Any, task: str = "task") -> InputSpec:
    """The :class:`InputSpec` of one ``(x, y)`` item.

    A timestamp-route input ``(values (C, K), times (K,), mask (K,))`` describes a sequence of
    ``C`` channels whose grid is at least ``max(times) + 1`` samples long
    (:func:`build_task` replaces that bound by the length of the undropped sequences).
    """
    y = torch.as_tensor(y)
    if isinstance(x, (tuple, list)):
        if len(x) != 3:
            raise ConfigError(
                f"task {task!r}: inputs with several parts must be (values, times, mask) "
                f"(route='timestamps'), got {len(x)} parts"
            )
        values, times, mask = (torch.as_tensor(v) for v in x)
        k = values.shape[-1] if values.dim() == 2 else -1
        if k < 1 or times.shape != (k,) or mask.shape != (k,) or mask.dtype != torch.bool:
            raise ConfigError(
                f"task {task!r}: timestamped inputs must be values (C, K), times (K,) and a bool "
                f"mask (K,) with K >= 1, got {tuple(values.shape)}, {tuple(times.shape)}, "
                f"{mask.dtype} {tuple(mask.shape)}"
            )
        observed = times[mask]
        span = int(observed.max().floor()) + 1 if observed.numel() else 1
        return InputSpec(
            int(values.shape[0]), 1, (max(span, 1),), False, tuple(y.shape),
            not y.is_floating_point(), timestamps=True,
        )  # fmt: skip
    x = torch.as_tensor(x)
    if x.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        if x.dim() != 1:
            raise ConfigError(f"task {task!r}: token inputs must be (L,), got {tuple(x.shape)}")
        return InputSpec(1, 1, (x.shape[0],), True, tuple(y.shape), not y.is_floating_point())
    if x.dim() < 2:
        raise ConfigError(f"task {task!r}: inputs must be (C, *spatial), got {tuple(x.shape)}")
    return InputSpec(
        int(x.shape[0]), x.dim() - 1, tuple(int(s) for s in x.shape[1:]), False,
        tuple(y.shape), not y.is_floating_point(),
    )  # fmt: skip


#: the targets each objective takes: (integer classes?, allowed numbers of target dimensions)
_TARGETS: dict[str, tuple[bool, tuple[int, ...], str]] = {
    "classification": (True, (0,), "an int64 class per item"),
    "binary_auc": (True, (0,), "an int64 class per item"),
    "per_step": (True, (1,), "int64 classes (L,)"),
    "language_model": (True, (1,), "int64 tokens (L,)"),
    "regression": (False, (0, 1), "float values (C,)"),
    "per_step_regression": (False, (2,), "float values (C, L)"),
}


def objective_for(
    kind: ObjectiveKind,
    spec: InputSpec,
    num_classes: int | None,
    task: str = "task",
    scored_steps: int | None = None,
) -> Objective:
    """The loss/metric of a task whose table entry says ``kind`` (see the module docstring);
    raises if its items' targets ``spec`` are not what ``kind`` trains on. ``scored_steps``: the
    metric of a per-step task counts only its last steps (:attr:`TaskInfo.scored_steps`)."""
    is_int, dims, what = _TARGETS[kind]
    if spec.target_is_int != is_int or len(spec.target_shape) not in dims:
        got = f"{'int' if spec.target_is_int else 'float'} {spec.target_shape}"
        raise ConfigError(f"task {task!r}: a {kind} task needs {what} targets, got {got}")
    if is_int and not num_classes:
        raise ConfigError(f"task {task!r}: a classification task needs num_classes")
    return Objective(kind, _METRIC_OF[kind], num_classes, scored_steps)  # type: ignore[arg-type]


#: ``model.weighting`` values of the timestamp models: sample weights of timestamped inputs
#: (SPEC 3.7; the vocabulary of every layer is ``ckconv._checks.WEIGHTINGS``)
WEIGHTINGS = ("none", "density")


#: ``task.<key>`` the app reads itself (not options of the task's datasets): ``weighting`` of
#: timestamped samples, ``causal`` (the default model, ``model.name: auto``, is causal)
APP_TASK_KEYS = ("weighting", "causal")
#: the keys of ``datasets={...}`` (``ckconv.app.train``): ``train`` is required
DATASET_KEYS = ("train", "val", "test")
#: the share of the training data held out as a missing val / test split of in-memory datasets
HELD_OUT_FRACTION = 0.15


def _app_keys(cfg: Config) -> tuple[dict[str, Any], str | None, bool]:
    """The task's own options, and the app's ``task.weighting`` (deprecated, now
    ``model.weighting``; None when not set) / ``task.causal``."""
    options = dict(cfg.task.options)
    weighting = options.pop("weighting", None)
    causal = options.pop("causal", False)
    if weighting is not None:
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"task.weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
        if weighting != "none" and options.get("route") != "timestamps":
            raise ConfigError(
                f"task.weighting: {weighting!r} weights timestamped samples; set task.route: "
                "timestamps (or remove task.weighting)"
            )
        warnings.warn(
            "task.weighting is deprecated: the weighting is part of the model, set "
            f"model.weighting: {weighting}",
            FutureWarning,
            stacklevel=3,
        )
    if not isinstance(causal, bool):
        raise ConfigError(f"task.causal: expected true or false, got {causal!r}")
    return options, weighting, causal


def _registry_datasets(cfg: Config, options: dict[str, Any]):
    """The table entry of ``task.name`` and the datasets its factory builds."""
    from ckconv.data.registry import TASKS, make_datasets

    name = cfg.task.name
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"task.name: unknown task {name!r}{hint}; `ckconv data list` shows the tasks"
        )
    info = TASKS[name]
    _check_options(options, info.options, name)
    try:
        datasets = make_datasets(name, cfg.task.root, **options)
    except TypeError as err:
        raise ConfigError(f"task {name!r}: bad options {cfg.task.options!r} ({err})") from None
    except FileNotFoundError as err:
        if info.own_data:
            raise ConfigError(f"task {name!r}: {err}") from None
        raise ConfigError(
            f"task {name!r}: data files not found ({err}). Put them under task.root "
            f"(now {cfg.task.root!r}; default $CKCONV_DATA or ./data); `ckconv data list` shows "
            "what is found"
        ) from None
    except ValueError as err:
        raise ConfigError(f"task {name!r}: {err}") from None
    missing = {"train", "val", "test"} - set(datasets)
    if missing:
        raise ConfigError(f"task {name!r}: the registry gave no {sorted(missing)} split")
    return info, datasets


def _class_count(ds: Dataset) -> int:
    return 1 + max(int(torch.as_tensor(ds[i][1])) for i in range(len(ds)))  # type: ignore[arg-type]


def _given_datasets(datasets: dict[str, Dataset], seed: int) -> dict[str, Dataset]:
    """In-memory datasets (``train(cfg, datasets=...)``), with a missing val / test split held
    out of ``train`` (stratified by class for integer labels, seeded by ``seed``)."""
    from ckconv.data.own import held_out_splits

    if not isinstance(datasets, dict) or "train" not in datasets:
        raise ConfigError(
            f"datasets: expected a dict with the keys {DATASET_KEYS} (train required), "
            f"got {type(datasets).__name__}"
        )
    unknown = sorted(set(datasets) - set(DATASET_KEYS))
    if unknown:
        raise ConfigError(f"datasets: unknown key {unknown[0]!r}; the keys are {DATASET_KEYS}")
    missing = [s for s in ("val", "test") if s not in datasets]
    if not missing:
        return dict(datasets)
    train = datasets["train"]
    _, y = _first_item(train, "datasets")
    labels = None
    if not torch.as_tensor(y).is_floating_point() and torch.as_tensor(y).dim() == 0:
        labels = [int(train[i][1]) for i in range(len(train))]  # type: ignore[arg-type]
    try:
        parts = held_out_splits(train, labels, missing, fraction=HELD_OUT_FRACTION, seed=seed,
                                source="datasets['train']")  # fmt: skip
    except ValueError as err:
        raise ConfigError(f"datasets: {err}") from None
    return {**datasets, **parts}


def build_task(cfg: Config, datasets: dict[str, Dataset] | None = None) -> TaskBundle:
    """Build the task's datasets and read its shapes; option errors name the config key.

    ``datasets`` (keys :data:`DATASET_KEYS`, ``train`` required) replaces the task table: the
    items are read as the table's datasets are, the objective comes from their targets and
    ``task.name`` only names the task.
    """
    from ckconv.data.registry import objective_of_targets

    name = cfg.task.name
    options, weighting, causal = _app_keys(cfg)
    if datasets is not None:
        info = None
        datasets = _given_datasets(datasets, cfg.seed)
    else:
        info, datasets = _registry_datasets(cfg, options)
    variable = info is not None and info.variable_length
    if options.get("route") == "timestamps":
        datasets = _timestamped(datasets, name, options.get("drop_seed", 0))
    x, y = _first_item(datasets["train"], name)
    spec = describe_input(x, y, name)
    if spec.timestamps or (variable and spec.data_dim == 1 and not spec.tokens):
        # the kernels cover the longest training sequence, whatever the route
        length = _grid_length(datasets["train"], variable)
        spec = dataclasses.replace(spec, input_size=(max(length, spec.input_size[0]),))
    # a dataset that knows its vocabulary (e.g. associative recall's vocab_size option) wins
    own_vocab = getattr(datasets["train"], "vocab_size", None)
    table_vocab = info.vocab_size if info is not None else None
    vocab = (own_vocab if isinstance(own_vocab, int) else table_vocab) if spec.tokens else None
    if spec.tokens and vocab is None:
        raise ConfigError(f"task {name!r}: token inputs but the task has no vocab_size")
    kind = info.objective if info is not None else None
    if kind is None:  # your own data: read from the targets
        kind = objective_of_targets(spec.target_is_int, len(spec.target_shape))
    # a dataset that knows its class count (e.g. shapes with task.classes=3) overrides the table
    own = getattr(datasets["train"], "num_classes", None)
    num_classes = own if isinstance(own, int) and own > 0 else info.num_classes if info else None
    if num_classes is None and spec.target_is_int and kind == "classification":
        num_classes = _class_count(datasets["train"])
    scored = info.scored_steps if info is not None else None
    objective = objective_for(kind, spec, num_classes, name, scored)
    if objective.classification:
        out_channels = int(objective.num_classes or 0)
    else:
        out_channels = int(spec.target_shape[0]) if spec.target_shape else 1
    collate = "timestamps" if spec.timestamps else "pad" if variable else "default"
    held_out = {s: ds.held_out for s, ds in datasets.items() if getattr(ds, "held_out", "")}
    notes = tuple(dict.fromkeys(n for ds in datasets.values() if (n := getattr(ds, "note", ""))))
    return TaskBundle(name, datasets, spec, objective, vocab, out_channels, collate, weighting,
                      causal=causal, points=info is not None and info.points,
                      held_out=held_out, notes=notes)  # fmt: skip


def _check_options(options: dict[str, Any], accepted: frozenset[str], task: str) -> None:
    """Every ``task.<key>`` of the config is an option of the task (a close name is suggested)."""
    import difflib

    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f" (did you mean task.{close[0]}?)" if close else ""
            raise ConfigError(
                f"task.{key}: not an option of task {task!r}{hint}; its options: "
                f"{', '.join(sorted(accepted)) or '(none)'}"
            )


def _timestamped(datasets: dict[str, Dataset], task: str, seed: int) -> dict[str, Dataset]:
    """``route='timestamps'`` items for every split, also when no sample is dropped (the
    registry leaves the splits unwrapped when ``drop_rate`` is 0)."""
    from ckconv.data.transforms import DropSamples

    out = {}
    for i, (split, ds) in enumerate(datasets.items()):
        if not isinstance(ds, DropSamples):
            ds = DropSamples(ds, 0.0, route="timestamps", seed=int(seed) + i)
        out[split] = ds
    return out


def _grid_length(ds: Dataset, variable: bool) -> int:
    """Length of the training sequences before any sample was dropped: the first one's, or the
    longest one's for variable-length tasks (their training splits are small)."""
    from ckconv.data.transforms import DropSamples

    source = ds.dataset if isinstance(ds, DropSamples) else ds
    n = len(source) if variable else 1  # type: ignore[arg-type]

    def length(x) -> int:  # a timestamped item (values, times, mask) has its values first
        return int(torch.as_tensor(x[0] if isinstance(x, (tuple, list)) else x).shape[-1])

    return max(length(source[i][0]) for i in range(n))


# ----------------------------------------------------------------------------- models

# how the input kinds are named in messages
_KIND_WORDS: dict[str, str] = {
    "grid1d": "sequences (C, L)", "grid2d": "2-D inputs", "grid3d": "3-D inputs",
    "tokens": "token inputs", "points": "point clouds", "timestamps": "sample times",
}  # fmt: skip


#: ``model.name: auto`` (what ``ckconv train`` uses without ``--config``): the model is chosen
#: and sized from the task's data by :func:`default_model`
AUTO_MODEL = "auto"
#: what a run without a config file starts from (``ckconv train`` without ``--config``,
#: ``ckconv.app.train(datasets=...)`` without a config), before the user's overrides: the model
#: sized from the data and a schedule for small sets. Measured on three UEA problems bundled in
#: aeon (test accuracy, 1 CPU thread): GunPoint 84.7 %, BasicMotions 95.0 %, ItalyPowerDemand
#: 96.6 %; the bare defaults (lr 1e-3, batch 32, 10 epochs) left GunPoint at chance (50.7 %).
NO_CONFIG = ("model.name=auto", "optim.lr=0.01", "trainer.batch_size=16", "trainer.max_epochs=30")


def default_config(overrides: list[str] | None = None) -> Config:
    """The config of a run without a config file: :data:`NO_CONFIG`, then ``overrides``
    (``key=value`` strings, as on the command line)."""
    from ckconv.app.config import load_config

    return load_config(None, [*NO_CONFIG, *(overrides or [])])


#: the width of the default models: up to this many training items 32 channels, above 64
_SMALL_DATA = 5000


def default_model(bundle: TaskBundle) -> ModelConfig:
    """The model ``model.name: auto`` stands for, from the task's data:

    - point clouds (the table says ``points``): a point CCNN-4,32 (preset ``ccnn_4_32``, 16
      neighbours), the size of the shipped shapes config;
    - ``task.causal: true`` on sequences: a CKCNN (its own defaults, CKConv's 2 blocks of 30
      channels; causal, reads out the last step);
    - any other grid of 1 to 3 dimensions, or token ids: a CCNN of 4 blocks, 32 channels up to
      5,000 training items and 64 above; inputs of at most 64 samples a side get FlexConv masks
      that start wide (``mask_init_sigma: 0.5``, as the 8x8 demo), longer ones the paper's 0.075.

    The task's sizes (channels, classes, input size) are filled in as for any model.
    """
    spec = bundle.spec
    if bundle.points:
        return ModelConfig("point_ccnn", "ccnn_4_32", {"num_neighbors": 16})
    if bundle.causal:
        if spec.data_dim != 1:
            raise ConfigError(
                f"task.causal: a causal model reads sequences; task {bundle.name!r} gives "
                f"{spec.data_dim}-D inputs {(spec.in_channels, *spec.input_size)}"
            )
        return ModelConfig("ckcnn", None, {})
    width = 32 if len(bundle.datasets["train"]) <= _SMALL_DATA else 64  # type: ignore[arg-type]
    options: dict[str, Any] = {"hidden_channels": width, "num_blocks": 4}
    if max(spec.input_size) <= 64:
        options["mask_init_sigma"] = 0.5
    return ModelConfig("ccnn", None, options)


def resolve_config(cfg: Config, bundle: TaskBundle) -> Config:
    """``cfg`` as the run records it: ``model.name: auto`` replaced by :func:`default_model`
    (the config's own ``model.*`` keys win) and ``task.path`` made absolute, so the checkpoint
    names the model and the data wherever it is evaluated."""
    import copy
    from pathlib import Path

    out = copy.deepcopy(cfg)
    if bundle.causal and cfg.model.name != AUTO_MODEL:
        raise ConfigError(
            f"task.causal: picks the default model (model.name: auto); with model.name "
            f"{cfg.model.name!r} set the model's own option (e.g. model.causal: true for ccnn) "
            "and remove task.causal"
        )
    if cfg.model.name == AUTO_MODEL:
        chosen = default_model(bundle)
        out.model = ModelConfig(
            chosen.name, cfg.model.preset or chosen.preset, {**chosen.options, **cfg.model.options}
        )
    path = out.task.options.get("path")
    if isinstance(path, str):
        out.task.options["path"] = str(Path(path).expanduser().resolve())
    return out


def _entry(cfg: Config) -> ModelEntry:
    if cfg.model.name == AUTO_MODEL:
        raise ConfigError(
            "model.name: 'auto' is resolved from the task's data (resolve_config) before a model "
            "is built"
        )
    try:
        return model_entry(cfg.model.name)
    except ValueError as err:
        raise ConfigError(f"model.name: {err}") from None


def input_kind(spec: InputSpec) -> InputKind:
    """The :data:`ckconv.models.InputKind` of a task's inputs (grids of 1 to 3 dimensions,
    token ids or timestamped samples; point clouds arrive as ``(C, N)`` grids)."""
    if spec.timestamps:
        return "timestamps"
    if spec.tokens:
        return "tokens"
    kinds: dict[int, InputKind] = {1: "grid1d", 2: "grid2d", 3: "grid3d"}
    if spec.data_dim not in kinds:
        raise ConfigError(f"task: {spec.data_dim}-D inputs {spec.input_size}; models take 1 to 3")
    return kinds[spec.data_dim]


def _refuse(entry: ModelEntry, kind: InputKind, bundle: TaskBundle, hint: str = "") -> ConfigError:
    takers = [n for n, e in MODELS.items() if e.takes(kind)]
    return ConfigError(
        f"model.name: {entry.name} ({entry.cls.__name__}) cannot take {_KIND_WORDS[kind]}; task "
        f"{bundle.name!r} gives them {(bundle.spec.in_channels, *bundle.spec.input_size)}{hint}. "
        f"Models that take them: {', '.join(takers) or 'none'}"
    )


def _task_kwargs(entry: ModelEntry, bundle: TaskBundle, options: dict[str, Any]) -> dict[str, Any]:
    spec = bundle.spec
    if entry.takes("points"):
        # features (C, N) of a point cloud whose first channels are the positions; its data_dim
        # is the dimension of the positions, not of the feature array
        if spec.tokens or spec.timestamps or spec.data_dim != 1:
            raise ConfigError(
                f"model.name: {entry.name} takes point features (C, N), task {bundle.name!r} "
                f"gives {'token ids ' if spec.tokens else ''}{(spec.in_channels, *spec.input_size)}"
            )
        dim = options.get("data_dim", entry.default("data_dim"))
        if spec.in_channels < dim:
            raise ConfigError(
                f"model.name: {entry.name} reads {dim}-D positions from input channels "
                f"0..{dim - 1}, but task {bundle.name!r} gives {spec.in_channels} channel(s) per point"
            )
        return {"in_channels": spec.in_channels, "out_channels": bundle.out_channels}
    kind = input_kind(spec)
    if not entry.takes(kind):
        hint = " (task.route: timestamps)" if kind == "timestamps" else ""
        raise _refuse(entry, kind, bundle, hint)
    offered: dict[str, Any] = {
        "in_channels": spec.in_channels,
        "out_channels": bundle.out_channels,
        "data_dim": spec.data_dim,
        "input_size": spec.input_size[0] if spec.data_dim == 1 else spec.input_size,
    }
    if spec.tokens:
        offered["vocab_size"] = bundle.vocab_size
    return {k: v for k, v in offered.items() if k in entry.options}


def model_kwargs(cfg: Config, bundle: TaskBundle) -> dict[str, Any]:
    """The keyword arguments ``build_model(cfg.model.name, ...)`` gets: the task's sizes plus the
    config's options, checked against the model's registry entry (unknown names fail here)."""
    if cfg.model.name == AUTO_MODEL:
        cfg = resolve_config(cfg, bundle)
    entry = _entry(cfg)
    options = dict(cfg.model.options)
    try:
        entry.check_options(options)
    except ModelOptionError as err:
        raise ConfigError(f"model.{err.option}: {err}") from None
    if bundle.objective.per_step and "head" in entry.options and "head" not in options:
        options["head"] = "none"
    _weighting_option(entry, bundle, options)
    kwargs = {**_task_kwargs(entry, bundle, options), **options}
    if cfg.model.preset is not None:
        if not entry.presets:
            with_presets = [n for n, e in MODELS.items() if e.presets]
            raise ConfigError(
                f"model.preset: {entry.name!r} has no presets ({', '.join(with_presets)} do)"
            )
        kwargs["preset"] = cfg.model.preset
    return kwargs


def _weighting_option(entry: ModelEntry, bundle: TaskBundle, options: dict[str, Any]) -> None:
    """Move the deprecated ``task.weighting`` into ``options`` (it overrides
    ``model.weighting``, as it did before it moved there) and check ``model.weighting`` against
    the route (it weights timestamped samples only)."""
    if bundle.weighting is not None:
        options["weighting"] = bundle.weighting
        if "weighting" not in entry.options:
            del options["weighting"]
            if bundle.weighting != "none":
                raise ConfigError(
                    f"task.weighting: model {entry.name!r} takes no weighting (timestamped "
                    "inputs go to ckcnn or ccnn)"
                )
    if options.get("weighting", "none") != "none" and not bundle.spec.timestamps:
        raise ConfigError(
            f"model.weighting: {options['weighting']!r} weights timestamped samples; set "
            "task.route: timestamps (or remove model.weighting)"
        )


def model_spec(cfg: Config, bundle: TaskBundle) -> ModelSpec:
    """What checkpoints store to rebuild the run's model: its registry name and
    :func:`model_kwargs`."""
    if cfg.model.name == AUTO_MODEL:
        cfg = resolve_config(cfg, bundle)
    return ModelSpec(_entry(cfg).name, model_kwargs(cfg, bundle))


def build_model_from_config(cfg: Config, bundle: TaskBundle) -> nn.Module:
    """The model of :func:`model_spec`; errors (unknown names, unknown or invalid arguments)
    are reported against ``model.<key>``."""
    spec = model_spec(cfg, bundle)
    try:
        return spec.build()
    except ArgumentError as err:
        # the model (or a layer it builds) names the argument it refused in a field: a model
        # argument is the config key model.<argument>; an inner layer's is reported on model
        key = f"model.{err.argument}" if err.argument in spec.kwargs else "model"
        raise ConfigError(f"{key}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model: {err}") from None
