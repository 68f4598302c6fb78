"""Every task of the CKConv and CCNN papers (SPEC 6) plus the offline real-data tasks, with its
input shape, classes, data format and a factory that builds its splits.

``make_datasets(name, root, **options)`` returns ``{"train": ..., "val": ..., "test": ...}``;
``list_tasks(root)`` reports which tasks' files are present under ``root`` (``ckconv data list``
prints it). The factories live in :mod:`ckconv.data.builders`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from ckconv.data import (
    builders,
    images,
    lra,
    modelnet,
    physionet,
    ptb,
    shapes,
    speech,
    synthetic,
    uea,
)
from ckconv.data.builders import Splits, TaskFactory

__all__ = [
    "OBJECTIVES",
    "TASKS",
    "Objective",
    "Source",
    "TaskInfo",
    "TaskRow",
    "default_root",
    "list_tasks",
    "make_datasets",
    "objective_of_targets",
]


#: What a task asks of a model; the app picks the loss and the metric from it.
Objective = Literal[
    "classification",  # one class per item
    "per_step",  # one class per time step
    "language_model",  # the next token at every step (bits per character)
    "binary_auc",  # two classes, scored by the area under the ROC curve
    "regression",  # one value (or vector) per item
    "per_step_regression",  # one value per position
]
#: Every :data:`Objective`, in order.
OBJECTIVES: tuple[str, ...] = get_args(Objective)


@dataclass(frozen=True)
class TaskInfo:
    """What a task is and how to build it.

    ``shape`` is one input's shape at the default options: ``(channels, *spatial)`` for signals,
    ``(length,)`` int64 token ids for token tasks (which also give ``vocab_size``);
    ``num_classes`` is None for regression; ``objective`` is what the model is trained to do
    (None: read from the items' targets, for tasks on your own data, see
    :func:`objective_of_targets`); ``variable_length``: items of one split have different lengths (batches are padded, with a
    mask); ``factory(root, **options)`` returns the splits and ``options`` names the options it
    takes; ``finder(root)`` returns the directory holding the files or None; ``points``: items
    are point clouds ``(C, N)`` whose first channels are positions (they need a point model);
    ``scored_steps``: a per-step task's metric counts only its last ``scored_steps`` steps.
    Tasks that take a ``path`` option read your own files; their ``shape`` is ``()`` and
    ``num_classes`` None: both come from the data.
    """

    name: str
    paper: str
    shape: tuple
    num_classes: int | None
    data_format: str
    factory: TaskFactory
    finder: Callable[[Path], Path | None]
    vocab_size: int | None = None
    notes: str = ""
    objective: Objective | None = "classification"
    variable_length: bool = False
    points: bool = False
    #: per-step tasks whose answer is only the last ``scored_steps`` steps (copy memory's recalled
    #: digits): the metric counts those steps; the loss still covers every step
    scored_steps: int | None = None

    def __post_init__(self) -> None:
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ValueError(
                f"task {self.name!r}: objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.scored_steps is not None and (
            self.objective not in ("per_step", "per_step_regression") or self.scored_steps < 1
        ):
            raise ValueError(
                f"task {self.name!r}: scored_steps must be a positive int on a per-step task, "
                f"got {self.scored_steps!r} on objective {self.objective!r}"
            )

    @property
    def options(self) -> frozenset[str]:
        """The names of the options ``factory`` takes."""
        return self.factory.options

    @property
    def own_data(self) -> bool:
        """The task reads files the user names with the ``path`` option."""
        return "path" in self.options


def objective_of_targets(is_int: bool, dims: int) -> Objective:
    """The objective of a task on your own data, read from its targets: integer labels per item
    (``dims == 0``) or per step (1), float values per item (0 or 1) or per position (2)."""
    if is_int:
        return "classification" if dims == 0 else "per_step"
    return "per_step_regression" if dims == 2 else "regression"


# ----------------------------------------------------------------------------- the table

CK, CC = "CKConv", "CCNN"
_TASKS = [
    TaskInfo(
        "copy_memory",
        CK,
        (1, 1020),
        10,
        "generated (CKConv App. C)",
        builders.copy_memory_task,
        builders.generated,
        notes="length=T gives (1, T+20); per-step classes; acc scores the 10 recalled digits",
        objective="per_step",
        scored_steps=10,
    ),
    TaskInfo(
        "adding_problem",
        CK,
        (2, 1000),
        None,
        "generated (CKConv App. C)",
        builders.adding_task,
        builders.generated,
        notes="the sum of the two marked values (MSE)",
        objective="regression",
    ),
    TaskInfo(
        "associative_recall",
        "Hyena",
        (256,),
        10,
        "generated (H3 / Hyena papers)",
        builders.associative_recall_task,
        builders.generated,
        vocab_size=20,
        notes="key-value pairs then a query key; the class of its value (options length, "
        "vocab_size: half keys, half values)",
    ),
    TaskInfo(
        "kernel_fitting",
        CK,
        (1, 1000),
        None,
        "generated target functions",
        builders.kernel_fitting_task,
        builders.generated,
        notes=f"targets: {', '.join(synthetic.FITTING_TARGETS)}",
        objective="per_step_regression",
    ),
    TaskInfo(
        "smnist",
        f"{CK}, {CC}",
        (1, 784),
        10,
        "MNIST IDX (.gz)",
        builders.mnist_task(False),
        builders.finder(images.MNIST),
    ),
    TaskInfo(
        "pmnist",
        f"{CK}, {CC}",
        (1, 784),
        10,
        "MNIST IDX (.gz)",
        builders.mnist_task(True),
        builders.finder(images.MNIST),
    ),
    TaskInfo(
        "scifar10",
        f"{CK}, {CC}",
        (3, 1024),
        10,
        "CIFAR-10 pickle batches",
        builders.cifar_task(images.CIFAR10, "sequence"),
        builders.finder(images.CIFAR10),
    ),
    TaskInfo(
        "character_trajectories",
        CK,
        (3, 182),
        20,
        "UEA .ts / .arff",
        builders.character_trajectories_task,
        builders.finder(uea.UEADataset, "CharacterTrajectories"),
        notes="options drop_rate (0.3/0.5/0.7), route, subsample, test_subsample",
    ),
    TaskInfo(
        "speech_mfcc",
        f"{CK}, {CC}",
        (20, 161),
        10,
        "Speech Commands v0.02 WAV",
        builders.speech_task("mfcc"),
        builders.finder(speech.SpeechCommands),
    ),
    TaskInfo(
        "speech_raw",
        f"{CK}, {CC}",
        (1, 16000),
        10,
        "Speech Commands v0.02 WAV",
        builders.speech_task("raw"),
        builders.finder(speech.SpeechCommands),
        notes="options drop_rate, subsample, test_subsample",
    ),
    TaskInfo(
        "speech_raw_0.5x",
        CC,
        (1, 8000),
        10,
        "Speech Commands v0.02 WAV",
        builders.speech_task("raw", 2),
        builders.finder(speech.SpeechCommands),
        notes="raw audio subsampled by 2 (seq[::2]); zero-shot: speech_raw with test_subsample=2",
    ),
    TaskInfo(
        "physionet_sepsis",
        CK,
        (73, 72),
        2,
        "PhysioNet 2019 .psv",
        builders.physionet_task,
        builders.finder(physionet.PhysioNet2019),
        notes="binary; report AUC",
        objective="binary_auc",
    ),
    TaskInfo(
        "char_ptb",
        CK,
        (400,),
        50,
        "ptb.char.*.txt",
        builders.ptb_task,
        builders.finder(ptb.CharPTB),
        vocab_size=50,
        notes="token ids; next-character targets (bpc)",
        objective="language_model",
    ),
    TaskInfo(
        "lra_listops",
        CC,
        (2000,),
        10,
        "LRA listops-1000 .tsv",
        builders.listops_task,
        builders.finder(lra.ListOps),
        vocab_size=len(lra.LISTOPS_VOCAB),
        notes="token ids",
    ),
    TaskInfo(
        "lra_text",
        CC,
        (4096,),
        2,
        "IMDB aclImdb .txt (bytes)",
        builders.text_task,
        builders.finder(lra.LRAText),
        vocab_size=257,
        notes="token ids",
    ),
    TaskInfo(
        "lra_image",
        CC,
        (1, 1024),
        10,
        "CIFAR-10 pickle batches (grey)",
        builders.cifar_task(images.CIFAR10, "sequence", grayscale=True),
        builders.finder(images.CIFAR10),
    ),
    TaskInfo(
        "lra_pathfinder",
        CC,
        (1, 1024),
        2,
        "LRA pathfinder32 PNG + metadata",
        builders.pathfinder_task("sequence"),
        builders.finder(lra.Pathfinder),
    ),
    TaskInfo(
        "lra_image2d",
        CC,
        (1, 32, 32),
        10,
        "CIFAR-10 pickle batches (grey)",
        builders.cifar_task(images.CIFAR10, "image", grayscale=True),
        builders.finder(images.CIFAR10),
    ),
    TaskInfo(
        "lra_pathfinder2d",
        CC,
        (1, 32, 32),
        2,
        "LRA pathfinder32 PNG + metadata",
        builders.pathfinder_task("image"),
        builders.finder(lra.Pathfinder),
    ),
    TaskInfo(
        "cifar10",
        CC,
        (3, 32, 32),
        10,
        "CIFAR-10 pickle batches",
        builders.cifar_task(images.CIFAR10, "image"),
        builders.finder(images.CIFAR10),
    ),
    TaskInfo(
        "cifar100",
        CC,
        (3, 32, 32),
        100,
        "CIFAR-100 pickle batches",
        builders.cifar_task(images.CIFAR100, "image"),
        builders.finder(images.CIFAR100),
    ),
    TaskInfo(
        "stl10",
        CC,
        (3, 96, 96),
        10,
        "STL-10 binary .bin",
        builders.stl10_task,
        builders.finder(images.STL10),
    ),
    TaskInfo(
        "modelnet40",
        CC,
        (6, 512),
        40,
        "ModelNet40 OFF / resampled txt",
        builders.modelnet_task,
        builders.finder(modelnet.ModelNet),
        notes="points + normals; val = official test split",
        points=True,
    ),
    TaskInfo(
        "modelnet10_voxel",
        CC,
        (3, 512),
        10,
        "ModelNet10 OFF / resampled txt",
        builders.modelnet10_voxel_task,
        builders.finder(modelnet.ModelNet, "ModelNet10"),
        notes="centres of 512 occupied voxels of a 40^3 grid (CCNN §5); test_on='points' tests "
        "on raw points (voxel -> point transfer); options grid, num_points, raw_points, test_on",
        points=True,
    ),
    TaskInfo(
        "shapes",
        "offline",
        (6, 512),
        len(shapes.SHAPE_CLASSES),
        "generated (ckconv.data.shapes)",
        builders.shapes_task,
        builders.generated,
        notes="point clouds xyz + normals; options num_points, train_size, val_size, test_size, "
        "classes, rotation, noise, normals, seed",
        points=True,
    ),
    TaskInfo(
        "shapes_voxel",
        "offline",
        (3, 256),
        len(shapes.SHAPE_CLASSES),
        "generated (ckconv.data.shapes)",
        builders.shapes_voxel_task,
        builders.generated,
        notes="occupied voxel centres of the shapes; test_on='points' tests on raw points "
        "(voxel -> point transfer); options grid, num_points, raw_points, test_on, ...",
        points=True,
    ),
    TaskInfo(
        "digits",
        "offline",
        (1, 64),
        10,
        "scikit-learn digits",
        builders.digits_task("sequence", False),
        builders.digits_finder,
        notes="options subsample, test_subsample (seq[::n]), drop_rate, route",
    ),
    TaskInfo(
        "digits_permuted",
        "offline",
        (1, 64),
        10,
        "scikit-learn digits",
        builders.digits_task("sequence", True),
        builders.digits_finder,
    ),
    TaskInfo(
        "digits2d",
        "offline",
        (1, 8, 8),
        10,
        "scikit-learn digits",
        builders.digits_task("image", False),
        builders.digits_finder,
    ),
    TaskInfo(
        "japanese_vowels",
        "offline",
        (12, 29),
        9,
        "UEA .ts (aeon wheel)",
        builders.aeon_task("JapaneseVowels"),
        builders.aeon_finder("JapaneseVowels"),
        notes="variable length 7..29",
        variable_length=True,
    ),
    TaskInfo(
        "basic_motions",
        "offline",
        (6, 100),
        4,
        "UEA .ts (aeon wheel)",
        builders.aeon_task("BasicMotions"),
        builders.aeon_finder("BasicMotions"),
    ),
    TaskInfo(
        "uea",
        "your data",
        (),
        None,
        "UEA/UCR .ts / .arff (task.path) or aeon's copy (task.problem)",
        builders.uea_task,
        builders.no_files,
        notes="task.path: the problem's folder or _TRAIN file; task.problem: a problem bundled "
        "in aeon; val held out of the training file",
    ),
    TaskInfo(
        "arrays",
        "your data",
        (),
        None,
        ".npz / .pt arrays (task.path)",
        builders.arrays_task,
        builders.no_files,
        notes="x_/y_ train, test (val); (N,C,L), (N,C,H,W) or (N,C,D,H,W); int labels: "
        "classification, float targets: regression",
        objective=None,
    ),
    TaskInfo(
        "image_folder",
        "your data",
        (),
        None,
        "train/<class>/*.png|jpg (+ val, test) (task.path)",
        builders.image_folder_task,
        builders.no_files,
    ),
    TaskInfo(
        "point_folder",
        "your data",
        (),
        None,
        "<class>/{train,test}/*.off|ply|xyz|npy (task.path)",
        builders.point_folder_task,
        builders.no_files,
        points=True,
    ),
]
#: Every task of both papers plus the offline ones, by name (``ckconv data list`` shows them).
TASKS: dict[str, TaskInfo] = {t.name: t for t in _TASKS}


def default_root() -> Path:
    """``$CKCONV_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("CKCONV_DATA", "data"))


def make_datasets(name: str, root=None, **options) -> Splits:
    """Build the ``train`` / ``val`` / ``test`` datasets of task ``name`` (see ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    root = default_root() if root is None else root
    return TASKS[name].factory(root, **options)


#: where :func:`list_tasks` found a task's data
Source = Literal["root", "installed", "generated", "task.path", ""]


class TaskRow(NamedTuple):
    name: str
    shape: tuple
    classes: int | None
    found: bool
    path: str
    #: ``"root"`` (under the root asked about), ``"installed"`` (a copy inside an installed
    #: package: aeon, scikit-learn), ``"generated"``, ``"task.path"`` (your files, named when
    #: training) or ``""`` (not found)
    source: Source = ""


def _source(path: Path, root: Path) -> Source:
    if path == builders.generated(root):
        return "generated"
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    return "root" if inside else "installed"


def list_tasks(root=None) -> list[TaskRow]:
    """One row per task: name, input shape, classes (None = regression or read from the data),
    whether its data is available and where: under ``root``, in an installed package's copy, or
    generated (``source``)."""
    root = default_root() if root is None else Path(root)
    rows = []
    for t in TASKS.values():
        if t.own_data:
            rows.append(TaskRow(t.name, t.shape, t.num_classes, False, "", "task.path"))
            continue
        try:
            path = t.finder(root)
        except (OSError, ValueError):
            path = None
        if path is None:
            rows.append(TaskRow(t.name, t.shape, t.num_classes, False, ""))
        else:
            rows.append(
                TaskRow(t.name, t.shape, t.num_classes, True, str(path), _source(path, root))
            )
    return rows
