"""Every task of the CKConv and CCNN papers (SPEC 6) plus the offline real-data tasks, with its
input shape, classes, data format and a factory that builds its splits.

``make_datasets(name, root, **options)`` returns ``{"train": ..., "val": ..., "test": ...}``;
``list_tasks(root)`` reports which tasks' files are present under ``root``; ``main_data_list`` is
the ``ckconv data list`` command.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data import images, lra, modelnet, physionet, ptb, shapes, speech, synthetic, uea
from ckconv.data.transforms import DropSamples, MapDataset, Subsample

__all__ = [
    "TASKS",
    "TaskInfo",
    "TaskRow",
    "default_root",
    "format_task_table",
    "list_tasks",
    "main_data_list",
    "make_datasets",
]

Splits = dict[str, Dataset]


@dataclass(frozen=True)
class TaskInfo:
    """What a task is and how to build it.

    ``shape`` is one input's shape at the default options: ``(channels, *spatial)`` for signals,
    ``(length,)`` int64 token ids for token tasks (which also give ``vocab_size``); ``num_classes`` is None for
    regression; ``factory(root, **options)`` returns the splits; ``finder(root)`` returns the
    directory holding the files or None.
    """

    name: str
    paper: str
    shape: tuple
    num_classes: int | None
    data_format: str
    factory: Callable[..., Splits]
    finder: Callable[[Path], Path | None]
    vocab_size: int | None = None
    notes: str = ""
    options: dict = field(default_factory=dict)


def _splits(build: Callable[[str], Dataset], names=("train", "val", "test")) -> Splits:
    return {s: build(s) for s in names}


def _post(
    sets: Splits,
    *,
    drop_rate: float = 0.0,
    route: str = "mask",
    drop_seed: int = 0,
    subsample: int = 1,
    test_subsample: int | None = None,
) -> Splits:
    """Sampling-rate change (``seq[::n]``, test may differ) then sample drops (mask/timestamps)."""
    out = {}
    for split, ds in sets.items():
        n = test_subsample if (split == "test" and test_subsample is not None) else subsample
        if n != 1:
            ds = MapDataset(ds, Subsample(n))
        if drop_rate:
            ds = DropSamples(
                ds, drop_rate, route=route, seed=drop_seed + ("train", "val", "test").index(split)
            )
        out[split] = ds
    return out


def _generated(_root) -> Path | None:
    return Path("(generated)")


# ----------------------------------------------------------------------------- factories


def _copy_memory(
    root, length: int = 1000, num_train: int = 10000, num_eval: int = 1000, seed: int = 0
) -> Splits:
    n = {"train": num_train, "val": num_eval, "test": num_eval}
    return _splits(lambda s: synthetic.CopyMemory(length, n[s], s, seed))


def _adding(
    root, length: int = 1000, num_train: int = 10000, num_eval: int = 1000, seed: int = 0
) -> Splits:
    n = {"train": num_train, "val": num_eval, "test": num_eval}
    return _splits(lambda s: synthetic.AddingProblem(length, n[s], s, seed))


class _FittingTarget(Dataset):
    def __init__(self, target: str, length: int, seed: int) -> None:
        y = synthetic.kernel_fitting_target(target, length, seed)
        import torch

        self.x = torch.linspace(-1, 1, length).unsqueeze(0)
        self.y = y.unsqueeze(0)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        if index not in (0, -1):
            raise IndexError(index)
        return self.x, self.y


def _kernel_fitting(root, target: str = "sine_chirp", length: int = 1000, seed: int = 0) -> Splits:
    ds = _FittingTarget(target, length, seed)
    return {"train": ds, "val": ds, "test": ds}


def _mnist(permuted: bool):
    def make(root, layout: str = "sequence", **kw) -> Splits:
        post = {k: kw.pop(k) for k in ("subsample", "test_subsample") if k in kw}
        return _post(
            _splits(lambda s: images.MNIST(root, s, layout=layout, permuted=permuted, **kw)), **post
        )

    return make


def _cifar(cls, layout: str, grayscale: bool = False):
    def make(root, **kw) -> Splits:
        kw.setdefault("layout", layout)
        if grayscale:
            kw["grayscale"] = True
        return _splits(lambda s: cls(root, s, **kw))

    return make


def _stl10(root, **kw) -> Splits:
    return _splits(lambda s: images.STL10(root, s, **kw))


def _digits(layout: str, permuted: bool):
    def make(root=None, **kw) -> Splits:
        # sequences take the sampling-rate / drop options (seq[::n]); images do not
        kw, post = _split_kw(kw) if layout == "sequence" else (kw, {})
        return _post(
            _splits(lambda s: images.Digits(s, layout=layout, permuted=permuted, **kw)), **post
        )

    return make


_POST_KEYS = ("drop_rate", "route", "drop_seed", "subsample", "test_subsample")


def _split_kw(kw):
    post = {k: kw.pop(k) for k in _POST_KEYS if k in kw}
    return kw, post


def _character_trajectories(root, **kw) -> Splits:
    kw, post = _split_kw(kw)
    return _post(_splits(lambda s: uea.CharacterTrajectories(root, s, **kw)), **post)


def _aeon(name: str):
    def make(root=None, **kw) -> Splits:
        kw, post = _split_kw(kw)
        if root is not None and uea.UEADataset.find(name, root) is None:
            root = None  # not under the user's root: the copy bundled in the aeon wheel
        return _post(_splits(lambda s: uea.UEADataset(name, root, s, **kw)), **post)

    return make


def _aeon_finder(name: str):
    def finder(root) -> Path | None:
        # The bundled copy is used when the user's root does not hold the files.
        return uea.UEADataset.find(name, root) or uea.UEADataset.find(name, None)

    return finder


def _speech(features: str, default_subsample: int = 1):
    def make(root, **kw) -> Splits:
        kw, post = _split_kw(kw)
        post.setdefault("subsample", default_subsample)
        return _post(
            _splits(lambda s: speech.SpeechCommands(root, s, features=features, **kw)), **post
        )

    return make


def _physionet(root, **kw) -> Splits:
    return _splits(lambda s: physionet.PhysioNet2019(root, s, **kw))


def _ptb(root, **kw) -> Splits:
    return _splits(lambda s: ptb.CharPTB(root, s, **kw))


def _listops(root, **kw) -> Splits:
    return _splits(lambda s: lra.ListOps(root, s, **kw))


def _text(root, **kw) -> Splits:
    return _splits(lambda s: lra.LRAText(root, s, **kw))


def _pathfinder(layout: str):
    def make(root, **kw) -> Splits:
        return _splits(lambda s: lra.Pathfinder(root, s, layout=layout, **kw))

    return make


def _modelnet(root, **kw) -> Splits:
    train = modelnet.ModelNet(root, "train", **kw)
    test = modelnet.ModelNet(root, "test", **kw)
    return {"train": train, "val": test, "test": test}


def _modelnet10_voxel(
    root,
    *,
    grid: int = 40,
    num_points: int = 512,
    raw_points: int = 4096,
    test_on: str = "voxels",
    seed: int = 0,
    **kw,
) -> Splits:
    """CCNN §5's voxelised ModelNet10: ``raw_points`` points per mesh binned into a ``grid^3``
    grid, ``num_points`` of the occupied voxels' centres kept ``(3, num_points)``; the point CCNN
    convolves at those locations only.  ``test_on="points"``: the test split is ``num_points``
    raw points of the same objects in the same frame (the regular -> irregular transfer)."""
    _check_voxel_options(grid, num_points, raw_points, test_on)
    train = modelnet.ModelNet(
        root, "train", name="ModelNet10", num_points=raw_points, seed=seed, **kw
    )
    test = modelnet.ModelNet(
        root, "test", name="ModelNet10", num_points=raw_points, seed=seed, **kw
    )
    return {
        s: _VoxelCentres(
            ds, s, grid=grid, num_points=num_points, seed=seed, task="modelnet10_voxel",
            as_points=(s == "test" and test_on == "points"), fill="repeat",
        )
        for s, ds in (("train", train), ("val", test), ("test", test))
    }  # fmt: skip


# The synthetic shapes tasks (offline point clouds; items depend only on (seed, split, index)).
_SHAPE_SPLITS = ("train", "val", "test")


def _shape_classes(classes) -> tuple[str, ...]:
    """``None`` (all 8), an int ``k`` (the first ``k`` of ``SHAPE_CLASSES``) or a list of names."""
    names = shapes.SHAPE_CLASSES
    if classes is None:
        return names
    if isinstance(classes, bool) or not isinstance(classes, (int, list, tuple)):
        raise ValueError(
            f"classes must be an int (the first k of {list(names)}) or a list of those names, "
            f"got {classes!r}"
        )
    if isinstance(classes, int):
        if not 2 <= classes <= len(names):
            raise ValueError(f"classes must be between 2 and {len(names)}, got {classes}")
        return names[:classes]
    return tuple(classes)  # names are checked by SyntheticShapes


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class _Positions:
    """Keep rows 0-2 (positions) of a cloud ``(C, N)``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[:3].contiguous()


def _shapes(
    root=None,
    *,
    num_points: int = 512,
    train_size: int = 2000,
    val_size: int = 400,
    test_size: int = 400,
    classes=None,
    rotation: str = "z",
    noise: float = 0.01,
    normals: bool = True,
    seed: int = 0,
) -> Splits:
    """:class:`~ckconv.data.shapes.SyntheticShapes` splits: ``x (6, num_points)`` (positions +
    normals; ``normals=False``: ``(3, num_points)``), three independent streams of one seed."""
    names = _shape_classes(classes)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for split, n in sizes.items():
        _positive(f"{split}_size", n)
    if not isinstance(normals, bool):
        raise ValueError(f"normals must be true or false, got {normals!r}")
    transform = None if normals else _Positions()
    return _splits(
        lambda s: shapes.SyntheticShapes(
            s, size=sizes[s], num_points=num_points, classes=names, rotation=rotation,
            noise=noise, seed=seed, transform=transform,
        )
    )  # fmt: skip


def _occupied_voxel_centres(points: torch.Tensor, grid: int) -> torch.Tensor:
    """The centres ``(3, n)`` of the voxels of a ``grid^3`` grid that hold at least one of the
    points ``(3, N)``, in row-major voxel order and in the frame of
    :class:`~ckconv.data.shapes.CubeNormalize` -- what :class:`~ckconv.data.shapes.VoxelCentres`
    (without ``max_points``) returns, found from the occupied cells only (no dense grid)."""
    lo = points.min(dim=1, keepdim=True).values
    hi = points.max(dim=1, keepdim=True).values
    span = (hi - lo).max().clamp_min(1e-12)
    unit = (points - (lo + hi) / 2) / (span / 2)
    cell = ((unit + 1) / 2 * grid).floor().clamp(0, grid - 1).long()
    flat = torch.unique((cell[0] * grid + cell[1]) * grid + cell[2])  # sorted: row-major order
    index = torch.stack([flat // (grid * grid), (flat // grid) % grid, flat % grid])
    return (index.to(points.dtype) + 0.5) / grid * 2 - 1


class _VoxelCentres(Dataset):
    """Point clouds for the regular -> irregular transfer (CCNN §5): each item's cloud
    (``x[:3]`` of ``base``) is voxelised on a ``grid^3`` grid and ``num_points`` of the occupied
    voxels' centres are kept (``as_points=False``), or ``num_points`` of the raw points
    themselves are kept in the same frame (``as_points=True``); ``x (3, num_points)``.

    A cloud occupying fewer than ``num_points`` voxels raises (``fill="error"``) or repeats
    some of its voxels (``fill="repeat"``, for real data where a few small objects do).
    """

    def __init__(self, base, split, *, grid, num_points, as_points, seed, task, fill) -> None:
        self.base, self.split, self.grid = base, split, grid
        self.num_points, self.as_points, self.seed = num_points, as_points, seed
        self.task, self.fill = task, fill
        self.num_classes = base.num_classes

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        if self.as_points:
            cloud = shapes.CubeNormalize()(x[:3])
        else:
            cloud = _occupied_voxel_centres(x[:3], self.grid)
        # a fixed subset per item: the same (seed, split, index) always gives the same cloud
        rng = np.random.default_rng([self.seed, _SHAPE_SPLITS.index(self.split), index, 1])
        n = cloud.shape[1]
        if n >= self.num_points:
            keep = np.sort(rng.choice(n, self.num_points, replace=False))
        elif self.fill == "repeat":
            extra = rng.choice(n, self.num_points - n, replace=True)
            keep = np.sort(np.concatenate([np.arange(n), extra]))
        else:
            raise ValueError(
                f"{self.task}: {self.split} item {index} occupies {n} voxels of the "
                f"{self.grid}^3 grid, fewer than num_points={self.num_points}; lower "
                "num_points or raise grid / raw_points"
            )
        return cloud[:, torch.from_numpy(keep)], y


def _check_voxel_options(grid, num_points, raw_points, test_on) -> None:
    _positive("grid", grid)
    _positive("num_points", num_points)
    _positive("raw_points", raw_points)
    if num_points > raw_points:
        raise ValueError(
            f"num_points={num_points} must be at most raw_points={raw_points} (the points "
            "sampled before voxelising)"
        )
    if test_on not in ("voxels", "points"):
        raise ValueError(f"test_on must be 'voxels' or 'points', got {test_on!r}")


def _shapes_voxel(
    root=None,
    *,
    grid: int = 32,
    num_points: int = 256,
    raw_points: int = 1024,
    test_on: str = "voxels",
    train_size: int = 2000,
    val_size: int = 400,
    test_size: int = 400,
    classes=None,
    rotation: str = "z",
    noise: float = 0.01,
    seed: int = 0,
) -> Splits:
    """Train (and validate) on occupied-voxel centres; ``test_on="points"`` tests on raw points."""
    _check_voxel_options(grid, num_points, raw_points, test_on)
    base = _shapes(
        num_points=raw_points, train_size=train_size, val_size=val_size, test_size=test_size,
        classes=classes, rotation=rotation, noise=noise, seed=seed,
    )  # fmt: skip
    return {
        s: _VoxelCentres(
            ds, s, grid=grid, num_points=num_points, seed=seed, task="shapes_voxel",
            as_points=(s == "test" and test_on == "points"), fill="error",
        )
        for s, ds in base.items()
    }  # fmt: skip


def _finder(obj, *args):
    def finder(root) -> Path | None:
        try:
            found = obj.find(root, *args)
        except OSError:
            return None
        if isinstance(found, tuple):
            return found[1]
        return found

    return finder


def _digits_finder(root) -> Path | None:
    return images.Digits.find()


# ----------------------------------------------------------------------------- the table

CK, CC = "CKConv", "CCNN"
_TASKS = [
    TaskInfo(
        "copy_memory",
        CK,
        (1, 1020),
        10,
        "generated (CKConv App. C)",
        _copy_memory,
        _generated,
        notes="length=T gives (1, T+20); per-step classes",
    ),
    TaskInfo(
        "adding_problem",
        CK,
        (2, 1000),
        None,
        "generated (CKConv App. C)",
        _adding,
        _generated,
        notes="regression (MSE)",
    ),
    TaskInfo(
        "kernel_fitting",
        CK,
        (1, 1000),
        None,
        "generated target functions",
        _kernel_fitting,
        _generated,
        notes=f"targets: {', '.join(synthetic.FITTING_TARGETS)}",
    ),
    TaskInfo(
        "smnist",
        f"{CK}, {CC}",
        (1, 784),
        10,
        "MNIST IDX (.gz)",
        _mnist(False),
        _finder(images.MNIST),
    ),
    TaskInfo(
        "pmnist",
        f"{CK}, {CC}",
        (1, 784),
        10,
        "MNIST IDX (.gz)",
        _mnist(True),
        _finder(images.MNIST),
    ),
    TaskInfo(
        "scifar10",
        f"{CK}, {CC}",
        (3, 1024),
        10,
        "CIFAR-10 pickle batches",
        _cifar(images.CIFAR10, "sequence"),
        _finder(images.CIFAR10),
    ),
    TaskInfo(
        "character_trajectories",
        CK,
        (3, 182),
        20,
        "UEA .ts / .arff",
        _character_trajectories,
        _finder(uea.UEADataset, "CharacterTrajectories"),
        notes="options drop_rate (0.3/0.5/0.7), route, subsample, test_subsample",
    ),
    TaskInfo(
        "speech_mfcc",
        f"{CK}, {CC}",
        (20, 161),
        10,
        "Speech Commands v0.02 WAV",
        _speech("mfcc"),
        _finder(speech.SpeechCommands),
    ),
    TaskInfo(
        "speech_raw",
        f"{CK}, {CC}",
        (1, 16000),
        10,
        "Speech Commands v0.02 WAV",
        _speech("raw"),
        _finder(speech.SpeechCommands),
        notes="options drop_rate, subsample, test_subsample",
    ),
    TaskInfo(
        "speech_raw_0.5x",
        CC,
        (1, 8000),
        10,
        "Speech Commands v0.02 WAV",
        _speech("raw", 2),
        _finder(speech.SpeechCommands),
        notes="raw audio subsampled by 2 (seq[::2]); zero-shot: speech_raw with test_subsample=2",
    ),
    TaskInfo(
        "physionet_sepsis",
        CK,
        (73, 72),
        2,
        "PhysioNet 2019 .psv",
        _physionet,
        _finder(physionet.PhysioNet2019),
        notes="binary; report AUC",
    ),
    TaskInfo(
        "char_ptb",
        CK,
        (400,),
        50,
        "ptb.char.*.txt",
        _ptb,
        _finder(ptb.CharPTB),
        vocab_size=50,
        notes="token ids; next-character targets (bpc)",
    ),
    TaskInfo(
        "lra_listops",
        CC,
        (2000,),
        10,
        "LRA listops-1000 .tsv",
        _listops,
        _finder(lra.ListOps),
        vocab_size=len(lra.LISTOPS_VOCAB),
        notes="token ids",
    ),
    TaskInfo(
        "lra_text",
        CC,
        (4096,),
        2,
        "IMDB aclImdb .txt (bytes)",
        _text,
        _finder(lra.LRAText),
        vocab_size=257,
        notes="token ids",
    ),
    TaskInfo(
        "lra_image",
        CC,
        (1, 1024),
        10,
        "CIFAR-10 pickle batches (grey)",
        _cifar(images.CIFAR10, "sequence", grayscale=True),
        _finder(images.CIFAR10),
    ),
    TaskInfo(
        "lra_pathfinder",
        CC,
        (1, 1024),
        2,
        "LRA pathfinder32 PNG + metadata",
        _pathfinder("sequence"),
        _finder(lra.Pathfinder),
    ),
    TaskInfo(
        "lra_image2d",
        CC,
        (1, 32, 32),
        10,
        "CIFAR-10 pickle batches (grey)",
        _cifar(images.CIFAR10, "image", grayscale=True),
        _finder(images.CIFAR10),
    ),
    TaskInfo(
        "lra_pathfinder2d",
        CC,
        (1, 32, 32),
        2,
        "LRA pathfinder32 PNG + metadata",
        _pathfinder("image"),
        _finder(lra.Pathfinder),
    ),
    TaskInfo(
        "cifar10",
        CC,
        (3, 32, 32),
        10,
        "CIFAR-10 pickle batches",
        _cifar(images.CIFAR10, "image"),
        _finder(images.CIFAR10),
    ),
    TaskInfo(
        "cifar100",
        CC,
        (3, 32, 32),
        100,
        "CIFAR-100 pickle batches",
        _cifar(images.CIFAR100, "image"),
        _finder(images.CIFAR100),
    ),
    TaskInfo("stl10", CC, (3, 96, 96), 10, "STL-10 binary .bin", _stl10, _finder(images.STL10)),
    TaskInfo(
        "modelnet40",
        CC,
        (6, 512),
        40,
        "ModelNet40 OFF / resampled txt",
        _modelnet,
        _finder(modelnet.ModelNet),
        notes="points + normals; val = official test split",
    ),
    TaskInfo(
        "modelnet10_voxel",
        CC,
        (3, 512),
        10,
        "ModelNet10 OFF / resampled txt",
        _modelnet10_voxel,
        _finder(modelnet.ModelNet, "ModelNet10"),
        notes="centres of 512 occupied voxels of a 40^3 grid (CCNN §5); test_on='points' tests "
        "on raw points (voxel -> point transfer); options grid, num_points, raw_points, test_on",
    ),
    TaskInfo(
        "shapes",
        "offline",
        (6, 512),
        len(shapes.SHAPE_CLASSES),
        "generated (ckconv.data.shapes)",
        _shapes,
        _generated,
        notes="point clouds xyz + normals; options num_points, train_size, val_size, test_size, "
        "classes, rotation, noise, normals, seed",
    ),
    TaskInfo(
        "shapes_voxel",
        "offline",
        (3, 256),
        len(shapes.SHAPE_CLASSES),
        "generated (ckconv.data.shapes)",
        _shapes_voxel,
        _generated,
        notes="occupied voxel centres of the shapes; test_on='points' tests on raw points "
        "(voxel -> point transfer); options grid, num_points, raw_points, test_on, ...",
    ),
    TaskInfo(
        "digits",
        "offline",
        (1, 64),
        10,
        "scikit-learn digits",
        _digits("sequence", False),
        _digits_finder,
        notes="options subsample, test_subsample (seq[::n]), drop_rate, route",
    ),
    TaskInfo(
        "digits_permuted",
        "offline",
        (1, 64),
        10,
        "scikit-learn digits",
        _digits("sequence", True),
        _digits_finder,
    ),
    TaskInfo(
        "digits2d",
        "offline",
        (1, 8, 8),
        10,
        "scikit-learn digits",
        _digits("image", False),
        _digits_finder,
    ),
    TaskInfo(
        "japanese_vowels",
        "offline",
        (12, 29),
        9,
        "UEA .ts (aeon wheel)",
        _aeon("JapaneseVowels"),
        _aeon_finder("JapaneseVowels"),
        notes="variable length 7..29: use pad_collate",
    ),
    TaskInfo(
        "basic_motions",
        "offline",
        (6, 100),
        4,
        "UEA .ts (aeon wheel)",
        _aeon("BasicMotions"),
        _aeon_finder("BasicMotions"),
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


class TaskRow(NamedTuple):
    name: str
    shape: tuple
    classes: int | None
    found: bool
    path: str


def list_tasks(root=None) -> list[TaskRow]:
    """One row per task: name, input shape, classes (None = regression), whether its files were
    found under ``root`` (generated and bundled tasks count as found when available) and where."""
    root = default_root() if root is None else Path(root)
    rows = []
    for t in TASKS.values():
        try:
            path = t.finder(root)
        except (OSError, ValueError):
            path = None
        rows.append(
            TaskRow(
                t.name, t.shape, t.num_classes, path is not None, "" if path is None else str(path)
            )
        )
    return rows


def format_task_table(rows: list[TaskRow]) -> str:
    """Aligned text table of :func:`list_tasks` rows."""
    header = ("task", "shape", "classes", "found", "path")
    body = [
        (
            r.name,
            "x".join(str(s) for s in r.shape),
            "regression" if r.classes is None else str(r.classes),
            "yes" if r.found else "no",
            r.path,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(v.ljust(w) for v, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)).rstrip() for b in body]
    return "\n".join(lines)


def main_data_list(argv: list[str] | None = None) -> int:
    """``ckconv data list [--root DIR]``: print every task, its shape and whether its files exist."""
    parser = argparse.ArgumentParser(prog="ckconv data list", description=main_data_list.__doc__)
    parser.add_argument(
        "--root", type=Path, default=None, help="data directory (default: $CKCONV_DATA or ./data)"
    )
    args = parser.parse_args(argv)
    rows = list_tasks(args.root)
    print(format_task_table(rows))
    found = sum(r.found for r in rows)
    print(f"\n{found} of {len(rows)} tasks have their data (root: {args.root or default_root()})")
    return 0
