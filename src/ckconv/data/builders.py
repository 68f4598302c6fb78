"""The factory of each task: ``factory(root, **options)`` returns its ``train`` / ``val`` /
``test`` datasets (the table in :mod:`ckconv.data.registry` names them), and
``factory.options`` names the options it takes. An option it does not take raises ``TypeError``
naming the option; bad values raise ``ValueError`` naming it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ckconv._checks import positive_int
from ckconv.data import images, lra, modelnet, own, physionet, ptb, shapes, speech, synthetic, uea
from ckconv.data.transforms import DropSamples, MapDataset, Subsample

Splits = dict[str, Dataset]

#: the options of :func:`_post`: sampling-rate change (``seq[::n]``) and sample drops
RATE_OPTIONS = ("subsample", "test_subsample")
DROP_OPTIONS = ("drop_rate", "route", "drop_seed")


@dataclass(frozen=True)
class TaskFactory:
    """``factory(root, **options)`` -> the splits of a task; ``options`` are the names it takes."""

    build: Callable[..., Splits]
    options: frozenset[str]

    def __call__(self, root, **options) -> Splits:
        unknown = sorted(set(options) - self.options)
        if unknown:
            raise TypeError(
                f"{unknown[0]!r} is not an option of this task; its options: "
                f"{', '.join(sorted(self.options)) or '(none)'}"
            )
        return self.build(root, **options)


def _keywords(source: Callable) -> set[str]:
    params = inspect.signature(source).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def factory(
    build: Callable[..., Splits],
    *forwards_to: Callable,
    fixed: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> TaskFactory:
    """A :class:`TaskFactory` whose options are the keyword parameters of ``build`` and of the
    dataset classes it passes its other keywords to (``forwards_to``), without those it sets
    itself (``fixed``; ``root`` and ``split`` always), plus ``extra`` (e.g. :data:`RATE_OPTIONS`)."""
    names = set().union(_keywords(build), *(_keywords(f) for f in forwards_to), extra)
    return TaskFactory(build, frozenset(names - {"root", "split", *fixed}))


def takes(*forwards_to: Callable, fixed: Iterable[str] = (), extra: Iterable[str] = ()):
    """Decorator form of :func:`factory`."""
    return lambda build: factory(build, *forwards_to, fixed=fixed, extra=extra)


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


def generated(_root) -> Path | None:
    return Path("(generated)")


def no_files(_root) -> Path | None:
    """The finder of tasks on your own files (``task.path``): nothing to find under a root."""
    return None


# ----------------------------------------------------------------------------- factories


@takes()
def copy_memory_task(
    root, length: int = 1000, num_train: int = 10000, num_eval: int = 1000, seed: int = 0
) -> Splits:
    n = {"train": num_train, "val": num_eval, "test": num_eval}
    return _splits(lambda s: synthetic.CopyMemory(length, n[s], s, seed))


@takes()
def adding_task(
    root, length: int = 1000, num_train: int = 10000, num_eval: int = 1000, seed: int = 0
) -> Splits:
    n = {"train": num_train, "val": num_eval, "test": num_eval}
    return _splits(lambda s: synthetic.AddingProblem(length, n[s], s, seed))


@takes()
def associative_recall_task(
    root,
    length: int = 256,
    vocab_size: int = 20,
    num_train: int = 10000,
    num_eval: int = 1000,
    seed: int = 0,
) -> Splits:
    n = {"train": num_train, "val": num_eval, "test": num_eval}
    return _splits(lambda s: synthetic.AssociativeRecall(length, vocab_size, n[s], s, seed))


@takes()
def kernel_fitting_task(
    root, target: str = "sine_chirp", length: int = 1000, seed: int = 0
) -> Splits:
    ds = synthetic.KernelFitting(target, length, seed)
    return {"train": ds, "val": ds, "test": ds}


def mnist_task(permuted: bool):
    def make(root, layout: str = "sequence", **kw) -> Splits:
        post = {k: kw.pop(k) for k in ("subsample", "test_subsample") if k in kw}
        return _post(
            _splits(lambda s: images.MNIST(root, s, layout=layout, permuted=permuted, **kw)), **post
        )

    return factory(make, images.MNIST, fixed=["permuted"], extra=RATE_OPTIONS)


def cifar_task(cls, layout: str, grayscale: bool = False):
    def make(root, **kw) -> Splits:
        kw.setdefault("layout", layout)
        if grayscale:
            kw["grayscale"] = True
        return _splits(lambda s: cls(root, s, **kw))

    return factory(make, cls)


@takes(images.STL10)
def stl10_task(root, **kw) -> Splits:
    return _splits(lambda s: images.STL10(root, s, **kw))


def digits_task(layout: str, permuted: bool):
    def make(root=None, **kw) -> Splits:
        # sequences take the sampling-rate / drop options (seq[::n]); images do not
        kw, post = _split_kw(kw) if layout == "sequence" else (kw, {})
        return _post(
            _splits(lambda s: images.Digits(s, layout=layout, permuted=permuted, **kw)), **post
        )

    post = (*RATE_OPTIONS, *DROP_OPTIONS) if layout == "sequence" else ()
    return factory(make, images.Digits, fixed=["layout", "permuted"], extra=post)


_POST_KEYS = (*DROP_OPTIONS, *RATE_OPTIONS)


def _split_kw(kw):
    post = {k: kw.pop(k) for k in _POST_KEYS if k in kw}
    return kw, post


@takes(uea.UEADataset, fixed=["name"], extra=_POST_KEYS)
def character_trajectories_task(root, **kw) -> Splits:
    kw, post = _split_kw(kw)
    return _post(_splits(lambda s: uea.CharacterTrajectories(root, s, **kw)), **post)


def aeon_task(name: str):
    def make(root=None, **kw) -> Splits:
        kw, post = _split_kw(kw)
        if root is not None and uea.UEADataset.find(name, root) is None:
            root = None  # not under the user's root: the copy bundled in the aeon wheel
        return _post(_splits(lambda s: uea.UEADataset(name, root, s, **kw)), **post)

    return factory(make, uea.UEADataset, fixed=["name"], extra=_POST_KEYS)


def aeon_finder(name: str):
    def finder(root) -> Path | None:
        # The bundled copy is used when the user's root does not hold the files.
        return uea.UEADataset.find(name, root) or uea.UEADataset.find(name, None)

    return finder


# ----------------------------------------------------------------------------- your own data


def _path(path, what: str) -> Path:
    if path is None:
        raise ValueError(f"path: set task.path to {what}")
    if not isinstance(path, (str, Path)):
        raise ValueError(f"path: expected {what}, got {path!r}")
    return Path(path).expanduser()


@takes(uea.UEADataset, fixed=["name", "pad", "file_format"], extra=_POST_KEYS)
def uea_task(root=None, *, path: str | None = None, problem: str | None = None, **kw) -> Splits:
    """Any UEA/UCR classification problem: ``path`` is its folder (or its ``_TRAIN`` file) of
    ``.ts`` / ``.arff`` files, or ``problem`` names one bundled in the aeon wheel. Cases are
    padded to the longest with their last value; val is held out of the training file."""
    if (path is None) == (problem is None):
        raise ValueError(
            "set task.path (a folder or _TRAIN file of .ts/.arff files) or task.problem (a "
            f"problem bundled in aeon: {', '.join(uea.aeon_problems()) or 'aeon not installed'})"
            + (", not both" if path is not None else "")
        )
    kw, post = _split_kw(kw)
    if path is not None:
        name, directory, fmt = uea.locate_problem(_path(path, "a UEA/UCR problem"), "path")
    else:
        if problem not in uea.aeon_problems():
            raise ValueError(
                f"problem: {problem!r} is not bundled in the installed aeon wheel; bundled: "
                f"{', '.join(uea.aeon_problems()) or '(aeon not installed)'}"
            )
        name, directory, fmt = problem, None, None
    return _post(
        _splits(lambda s: uea.UEADataset(name, directory, s, pad="last", file_format=fmt, **kw)),
        **post,
    )


@takes()
def arrays_task(
    root=None, *, path: str | None = None, val_fraction: float = 0.15, seed: int = 0
) -> Splits:
    """The arrays of an ``.npz`` / ``.pt`` file (:func:`ckconv.data.own.array_splits`)."""
    return own.array_splits(
        _path(path, "an .npz or .pt file"), val_fraction=val_fraction, seed=seed
    )


def _missing_splits(train, present: Splits, val_fraction: float, seed: int, source: str) -> Splits:
    missing = [s for s in ("val", "test") if s not in present]
    if not missing:
        return {"train": train, **present}
    labels = own.folder_labels(train)
    parts = own.held_out_splits(
        train, labels, missing, fraction=val_fraction, seed=seed, source=source
    )
    return {**parts, **present}


@takes(own.ImageFolder)
def image_folder_task(
    root=None, *, path: str | None = None, val_fraction: float = 0.15, seed: int = 0, **kw
) -> Splits:
    """``path/train/<class>/*.png|jpg`` (+ ``val/``, ``test/``); a split without its folder is
    held out of ``train/`` (stratified, seeded)."""
    folder = _path(path, "a folder with train/<class>/ image folders")
    train = own.ImageFolder(folder, "train", **kw)
    if train.mean is not None:  # the training images' statistics, decoded once
        kw = {**kw, "stats": (train.mean, train.std)}
    present = {
        s: own.ImageFolder(folder, s, **kw) for s in ("val", "test") if (folder / s).is_dir()
    }
    return _missing_splits(train, present, val_fraction, seed, f"{folder.name}/train")


@takes(own.PointFolder)
def point_folder_task(
    root=None, *, path: str | None = None, val_fraction: float = 0.15, **kw
) -> Splits:
    """``path/<class>/{train,test}/*.off|ply|xyz|npy``; val is held out of the training files
    (stratified, seeded by ``seed``)."""
    folder = _path(path, "a folder of <class>/{train,test}/ point files")
    train = own.PointFolder(folder, "train", **kw)
    test = own.PointFolder(folder, "test", **kw)
    seed = kw.get("seed", 0)
    return _missing_splits(train, {"test": test}, val_fraction, seed, f"{folder.name}/*/train")


def speech_task(features: str, default_subsample: int = 1):
    def make(root, **kw) -> Splits:
        kw, post = _split_kw(kw)
        post.setdefault("subsample", default_subsample)
        return _post(
            _splits(lambda s: speech.SpeechCommands(root, s, features=features, **kw)), **post
        )

    return factory(make, speech.SpeechCommands, fixed=["features"], extra=_POST_KEYS)


@takes(physionet.PhysioNet2019)
def physionet_task(root, **kw) -> Splits:
    return _splits(lambda s: physionet.PhysioNet2019(root, s, **kw))


@takes(ptb.CharPTB)
def ptb_task(root, **kw) -> Splits:
    return _splits(lambda s: ptb.CharPTB(root, s, **kw))


@takes(lra.ListOps)
def listops_task(root, **kw) -> Splits:
    return _splits(lambda s: lra.ListOps(root, s, **kw))


@takes(lra.LRAText)
def text_task(root, **kw) -> Splits:
    return _splits(lambda s: lra.LRAText(root, s, **kw))


def pathfinder_task(layout: str):
    def make(root, **kw) -> Splits:
        return _splits(lambda s: lra.Pathfinder(root, s, layout=layout, **kw))

    return factory(make, lra.Pathfinder, fixed=["layout"])


@takes(modelnet.ModelNet)
def modelnet_task(root, **kw) -> Splits:
    train = modelnet.ModelNet(root, "train", **kw)
    test = modelnet.ModelNet(root, "test", **kw)
    return {"train": train, "val": test, "test": test}


@takes(modelnet.ModelNet, fixed=["name"])
def modelnet10_voxel_task(
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
        s: shapes.VoxelCentreClouds(
            ds, s, grid=grid, num_points=num_points, seed=seed, task="modelnet10_voxel",
            as_points=(s == "test" and test_on == "points"), fill="repeat",
        )
        for s, ds in (("train", train), ("val", test), ("test", test))
    }  # fmt: skip


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
    return positive_int(name, value)


class _Positions:
    """Keep rows 0-2 (positions) of a cloud ``(C, N)``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[:3].contiguous()


@takes()
def shapes_task(
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


@takes()
def shapes_voxel_task(
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
    base = shapes_task(
        None,
        num_points=raw_points, train_size=train_size, val_size=val_size, test_size=test_size,
        classes=classes, rotation=rotation, noise=noise, seed=seed,
    )  # fmt: skip
    return {
        s: shapes.VoxelCentreClouds(
            ds, s, grid=grid, num_points=num_points, seed=seed, task="shapes_voxel",
            as_points=(s == "test" and test_on == "points"), fill="error",
        )
        for s, ds in base.items()
    }  # fmt: skip


def finder(obj, *args):
    def finder(root) -> Path | None:
        try:
            found = obj.find(root, *args)
        except OSError:
            return None
        if isinstance(found, tuple):
            return found[1]
        return found

    return finder


def digits_finder(root) -> Path | None:
    return images.Digits.find()
