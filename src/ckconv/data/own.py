"""Your own data: arrays in one file, a folder of images, a folder of point clouds.

- :func:`load_arrays`: an ``.npz`` (or a ``.pt`` dict of tensors, read with
  ``weights_only=True``) holding ``x_train, y_train, x_test, y_test`` and optionally
  ``x_val, y_val``, ``times_<split>`` and ``mask_<split>``. Inputs are ``(N, C, L)`` sequences,
  ``(N, C, H, W)`` images or ``(N, C, D, H, W)`` volumes; integer labels ``(N,)`` make a
  classification task, float targets ``(N,)`` or ``(N, K)`` a regression task.
  :class:`ArrayDataset` items are ``(x, y)``; with ``times_*`` / ``mask_*`` (sequences only,
  ``(N, L)``: sample times in steps of the grid and a bool mask of observed samples) they are
  ``((values (C, L), times (L,), mask (L,)), y)``.
- :class:`ImageFolder`: ``<path>/train/<class>/*.png|jpg`` (and optionally ``val/``, ``test/``
  of the same classes), decoded with Pillow to ``(C, H, W)`` floats in [0, 1].
- :class:`PointFolder`: ``<path>/<class>/{train,test}/*.off|ply|xyz|npy`` (the ModelNet layout):
  meshes (``.off``, ``.ply`` with faces) are sampled on their surface with face normals, point
  files (``.ply`` vertices, ``.xyz``, ``.npy``: ``x y z`` or ``x y z nx ny nz`` per point) are
  subsampled; items are ``(x (3 or 6, num_points), y)``, positions centred in the unit ball
  (per cloud, :func:`read_points`; ``normalize=False`` keeps the files' coordinates).

A split that has no data of its own is held out of the training data by :func:`held_out_splits`
(stratified by class, seeded); its dataset says so in ``held_out`` (``""`` for splits read from
files), which ``ckconv train`` prints.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv._checks import InputError
from ckconv.data._common import PathLike, stratified_split
from ckconv.data.modelnet import normalize_points, read_off, sample_surface

__all__ = [
    "ARRAY_KEYS",
    "IMAGE_SUFFIXES",
    "POINT_SUFFIXES",
    "ArrayDataset",
    "ImageFolder",
    "PointFolder",
    "array_splits",
    "folder_labels",
    "has_normals",
    "held_out_splits",
    "load_arrays",
    "read_ply",
    "read_points",
    "read_xyz",
]

SPLITS = ("train", "val", "test")
#: the arrays :func:`load_arrays` reads: ``<kind>_<split>``
ARRAY_KEYS = tuple(f"{k}_{s}" for s in SPLITS for k in ("x", "y", "times", "mask"))
#: the image files :class:`ImageFolder` reads (Pillow decodes them)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: the point and mesh files :class:`PointFolder` reads
POINT_SUFFIXES = (".off", ".ply", ".xyz", ".npy")


# ----------------------------------------------------------------------------- held-out splits


class _Part(Dataset):
    """Items ``indices`` of ``dataset``; ``held_out`` says how the part was made; ``note`` is
    the dataset's (what ``ckconv train`` prints about it)."""

    def __init__(self, dataset: Dataset, indices: np.ndarray, held_out: str = "") -> None:
        self.dataset, self.indices, self.held_out = dataset, np.asarray(indices), held_out
        self.num_classes = getattr(dataset, "num_classes", None)
        self.note = getattr(dataset, "note", "")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]


def held_out_splits(
    train: Dataset,
    labels: Sequence | np.ndarray | None,
    missing: Sequence[str],
    *,
    fraction: float,
    seed: int,
    source: str,
) -> dict[str, Dataset]:
    """Cut the splits in ``missing`` (``"val"`` and/or ``"test"``) out of ``train``:
    ``fraction`` of it each, stratified by ``labels`` (None: not stratified, e.g. regression),
    seeded. Returns ``{"train": rest, <missing split>: part, ...}``."""
    if not 0.0 < fraction < 0.5:
        raise ValueError(f"val_fraction: must be in (0, 0.5), got {fraction!r}")
    n = len(train)  # type: ignore[arg-type]
    keys = (
        np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels).reshape(n, -1)[:, 0]
    )
    fractions = [1.0 - fraction * len(missing), *([fraction] * len(missing))]
    parts = stratified_split(keys, fractions, seed)
    how = "stratified, " if labels is not None else ""
    out: dict[str, Dataset] = {"train": _Part(train, parts[0])}
    for split, idx in zip(missing, parts[1:]):
        if len(idx) == 0 or len(parts[0]) == 0:
            raise ValueError(
                f"{source}: too few training items ({n}) to hold out a {split} split of "
                f"{fraction:g}; give a {split} split of your own"
            )
        out[split] = _Part(train, idx, f"{fraction:g} of {source} ({how}seed {seed})")
    return out


# ----------------------------------------------------------------------------- arrays


def load_arrays(path: PathLike, argument: str = "path") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (``allow_pickle=False``) or a ``.pt`` dict of tensors
    (``torch.load(weights_only=True)``), by name; unknown names are refused."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no file {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable .npz of numeric arrays ({err})") from None
    elif suffix in (".pt", ".pth"):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several unrelated types for a bad file
            raise ValueError(f"{path}: not a readable .pt file of tensors ({err})") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, torch.Tensor) for v in data.values()
        ):
            raise ValueError(f"{path}: a .pt file must hold a dict of tensors (x_train, ...)")
        arrays = {str(k): v.numpy() for k, v in data.items()}
    else:
        raise ValueError(f"{argument}: {str(path)!r} must be an .npz or .pt file")
    unknown = sorted(set(arrays) - set(ARRAY_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown array {unknown[0]!r}; the names are x_<split>, y_<split>, "
            "times_<split>, mask_<split> with split train, val or test"
        )
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if key not in arrays:
            raise ValueError(f"{path}: no {key!r} array (it holds {', '.join(sorted(arrays))})")
    return arrays


class ArrayDataset(Dataset):
    """One split of :func:`load_arrays`: items ``(x, y)`` or ``((x, times, mask), y)``."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        times: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.x, self.y, self.times, self.mask = x, y, times, mask
        self.num_classes = num_classes
        self.held_out = ""

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: int):
        if self.times is None:
            return self.x[index], self.y[index]
        return (self.x[index], self.times[index], self.mask[index]), self.y[index]


def _check_split_arrays(path: Path, split: str, a: dict[str, np.ndarray], ndim: int | None):
    x, y = a[f"x_{split}"], a[f"y_{split}"]
    if not np.issubdtype(x.dtype, np.number) or x.ndim not in (3, 4, 5):
        raise ValueError(
            f"{path}: x_{split} must be numeric (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
            f"got {x.dtype} {x.shape}"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{path}: x_{split} has {x.ndim} dimensions, x_train {ndim}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{path}: y_{split} must be (N,) or (N, K) with N = {x.shape[0]} (x_{split}), "
            f"got {y.shape}"
        )
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(
            f"{path}: y_{split} must hold integer labels or float targets, got {y.dtype}"
        )
    for kind in ("times", "mask"):
        t = a.get(f"{kind}_{split}")
        if t is not None and (x.ndim != 3 or t.shape != (x.shape[0], x.shape[2])):
            raise ValueError(
                f"{path}: {kind}_{split} must be (N, L) = {(x.shape[0], x.shape[-1])} next to "
                f"sequences x_{split} (N, C, L), got {t.shape} next to {x.shape}"
            )


def _labels_are_classes(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    kinds = {s: np.issubdtype(arrays[f"y_{s}"].dtype, np.integer)
             for s in SPLITS if f"y_{s}" in arrays}  # fmt: skip
    if len(set(kinds.values())) != 1:
        raise ValueError(f"{path}: y arrays mix integer labels and float targets: {kinds}")
    classes = kinds["train"]
    if classes:
        for s in kinds:
            y = arrays[f"y_{s}"]
            if y.ndim != 1 or (y.size and y.min() < 0):
                raise ValueError(f"{path}: integer labels y_{s} must be (N,) and >= 0")
    return classes


def array_splits(
    path: PathLike, *, val_fraction: float = 0.15, seed: int = 0, argument: str = "path"
) -> dict[str, Dataset]:
    """The train / val / test datasets of an arrays file (see the module docstring); without
    ``x_val`` the validation split is held out of the training arrays."""
    arrays = load_arrays(path, argument)
    path = Path(path).expanduser()
    present = [s for s in SPLITS if f"x_{s}" in arrays or f"y_{s}" in arrays]
    ndim = None
    for split in present:
        if f"x_{split}" not in arrays or f"y_{split}" not in arrays:
            raise ValueError(f"{path}: x_{split} and y_{split} go together")
        _check_split_arrays(path, split, arrays, ndim)
        ndim = arrays[f"x_{split}"].ndim
    classes = _labels_are_classes(path, arrays)
    num_classes = (
        int(max(arrays[f"y_{s}"].max(initial=0) for s in present)) + 1 if classes else None
    )
    if classes and num_classes < 2:
        raise ValueError(f"{path}: the labels name {num_classes} class; classification needs 2+")
    sets: dict[str, Dataset] = {}
    for split in present:
        x = torch.as_tensor(arrays[f"x_{split}"], dtype=torch.float32)
        y = torch.as_tensor(arrays[f"y_{split}"])
        y = y.long() if classes else y.float()
        times, mask = arrays.get(f"times_{split}"), arrays.get(f"mask_{split}")
        if times is not None or mask is not None:
            n, length = x.shape[0], x.shape[-1]
            times = (torch.as_tensor(times, dtype=torch.float32) if times is not None
                     else torch.arange(length, dtype=torch.float32).expand(n, length))  # fmt: skip
            mask = (torch.as_tensor(mask).bool() if mask is not None
                    else torch.ones(n, length, dtype=torch.bool))  # fmt: skip
        sets[split] = ArrayDataset(x, y, times, mask, num_classes)
    if "val" not in sets:
        labels = sets["train"].y.numpy() if classes else None  # type: ignore[attr-defined]
        sets.update(
            held_out_splits(
                sets["train"],
                labels,
                ["val"],
                fraction=val_fraction,
                seed=seed,
                source=f"{path.name} x_train",
            )
        )
    return sets


# ----------------------------------------------------------------------------- images


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


class ImageFolder(Dataset):
    """The images of ``root/<split>/<class>/`` (classes: the sub-folders of ``root/train``,
    sorted; their position is the label).

    Args:
        root: the folder holding ``train/`` (and optionally ``val/``, ``test/``).
        split: ``"train"``, ``"val"`` or ``"test"`` (a folder of that name).
        size: ``[H, W]`` every image is resized to (Pillow, bilinear); None: images must all
            have the size of the first training image.
        grayscale: one channel (True), three RGB channels (False) or, None, one channel when the
            first training image is grey.
        normalize: standardise each channel with the training images' mean and std.
        stats: those ``(mean, std)`` (``(C,)`` each) when already known, e.g. ``(train.mean,
            train.std)`` of the training split's dataset, so the training images are not
            decoded again; None: computed here by decoding every training image once.

    Items: ``x`` float32 ``(C, H, W)``, ``y`` int64.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        size: Sequence[int] | None = None,
        grayscale: bool | None = None,
        normalize: bool = True,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        train_dir = self.root / "train"
        if not train_dir.is_dir():
            raise FileNotFoundError(
                f"path: {str(self.root)!r} has no train/ folder (expected train/<class>/*.png)"
            )
        self.classes = _class_dirs(train_dir)
        if len(self.classes) < 2:
            raise ValueError(f"{train_dir}: needs 2 or more class folders, found {self.classes}")
        directory = self.root / split
        extra = (
            sorted(set(_class_dirs(directory)) - set(self.classes)) if directory.is_dir() else []
        )
        if extra:
            raise ValueError(f"{directory}: class folders {extra} are not in {train_dir}")
        self.items = [
            (f, i)
            for i, c in enumerate(self.classes)
            if (directory / c).is_dir()
            for f in sorted((directory / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.items:
            raise FileNotFoundError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
        first = next(f for c in self.classes for f in sorted((train_dir / c).iterdir())
                     if f.suffix.lower() in IMAGE_SUFFIXES)  # fmt: skip
        with _open_image(first) as im:
            if grayscale is None:
                grayscale = im.mode in ("1", "L", "LA", "I", "I;16", "F")
            first_size = (im.height, im.width)
        self.mode = "L" if grayscale else "RGB"
        if size is not None:
            if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
                raise ValueError(f"size: expected [H, W] of positive ints, got {size!r}")
        self.size = tuple(size) if size is not None else first_size
        self.num_classes = len(self.classes)
        self.held_out = ""
        self.mean = self.std = None
        if normalize and stats is not None:
            self.mean, self.std = (torch.as_tensor(t, dtype=torch.float32) for t in stats)
            if self.mean.shape != (len(self.mode),) or self.std.shape != self.mean.shape:
                raise ValueError(
                    f"stats: expected (mean, std) of {len(self.mode)} channel(s) each, got "
                    f"shapes {tuple(self.mean.shape)} and {tuple(self.std.shape)}"
                )
        elif normalize:
            from ckconv.data.transforms import channel_stats

            train = self if split == "train" else ImageFolder(
                root, "train", size=self.size, grayscale=grayscale, normalize=False
            )  # fmt: skip
            self.mean, self.std = channel_stats(train._raw(i) for i in range(len(train)))

    def _raw(self, index: int) -> torch.Tensor:
        path = self.items[index][0]
        with _open_image(path) as im:
            im = im.convert(self.mode)
            if (im.height, im.width) != self.size:
                from PIL import Image

                im = im.resize((self.size[1], self.size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
        x = torch.from_numpy(arr.copy())
        return x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1).contiguous()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        x = self._raw(index)
        if self.mean is not None:
            x = (x - self.mean[:, None, None]) / (self.std[:, None, None] + 1e-5)
        return x, torch.tensor(self.items[index][1], dtype=torch.int64)


def _open_image(path: Path):
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow comes with the app extra
        raise ImportError("image folders are decoded with Pillow: pip install pillow") from err
    try:
        return Image.open(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot decode image ({err})") from None


# ----------------------------------------------------------------------------- point clouds

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def _ply_header(path: Path, raw: bytes) -> tuple[str, list, int]:
    """(format, elements [(name, count, [(prop, type) or (prop, (count type, item type))])],
    offset of the body)."""
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise ValueError(f"{path}: not a PLY file (no 'ply' magic or no end_header)")
    body = raw.index(b"\n", end) + 1
    fmt, elements = "", []
    for lineno, line in enumerate(raw[:end].decode("ascii", "replace").splitlines(), start=1):
        words = line.split()
        if not words or words[0] in ("ply", "comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1] if len(words) > 1 else ""
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            if words[1] == "list" and len(words) == 5:
                types = (words[2], words[3])
                if not all(t in _PLY_TYPES for t in types):
                    raise ValueError(f"{path}:{lineno}: unknown PLY type in {line!r}")
                elements[-1][2].append((words[4], types))
            elif len(words) == 3 and words[1] in _PLY_TYPES:
                elements[-1][2].append((words[2], words[1]))
            else:
                raise ValueError(f"{path}:{lineno}: cannot read PLY property {line!r}")
        else:
            raise ValueError(f"{path}:{lineno}: cannot read PLY header line {line!r}")
    if fmt not in ("ascii", "binary_little_endian"):
        raise ValueError(
            f"{path}: PLY format {fmt!r} is not read (ascii and binary_little_endian are)"
        )
    return fmt, elements, body


def read_ply(path: PathLike) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A PLY file (``ascii`` or ``binary_little_endian``): vertices ``(V, 3)``, triangles
    ``(F, 3)`` (fan-triangulated polygons; None without a face element) and vertex normals
    ``(V, 3)`` (None without ``nx ny nz``)."""
    path = Path(path)
    raw = path.read_bytes()
    fmt, elements, offset = _ply_header(path, raw)
    values: dict[str, dict[str, np.ndarray]] = {}
    faces: list[list[int]] = []
    tokens = raw[offset:].decode("ascii", "replace").split() if fmt == "ascii" else None
    pos = 0
    for name, count, props in elements:
        if all(isinstance(t, str) for _, t in props):
            dtype = np.dtype([(p, "<" + _PLY_TYPES[t]) for p, t in props])
            if tokens is not None:
                need = count * len(props)
                if pos + need > len(tokens):
                    raise ValueError(f"{path}: the {name} element is truncated")
                rows = np.asarray(tokens[pos : pos + need], dtype=np.float64).reshape(count, -1)
                pos += need
                values[name] = {p: rows[:, i] for i, (p, _) in enumerate(props)}
            else:
                if pos + count * dtype.itemsize > len(raw) - offset:
                    raise ValueError(f"{path}: the {name} element is truncated")
                table = np.frombuffer(raw, dtype, count, offset + pos)
                pos += count * dtype.itemsize
                values[name] = {p: table[p].astype(np.float64) for p, _ in props}
            continue
        for _ in range(count):  # elements with list properties (faces), one row at a time
            for prop, t in props:
                if isinstance(t, str):
                    _, pos = _ply_scalar(tokens, raw, offset, pos, t, path)
                    continue
                n, pos = _ply_scalar(tokens, raw, offset, pos, t[0], path)
                items = []
                for _ in range(int(n)):
                    v, pos = _ply_scalar(tokens, raw, offset, pos, t[1], path)
                    items.append(int(v))
                if name == "face" and prop in ("vertex_indices", "vertex_index"):
                    faces.append(items)
    vertex = values.get("vertex")
    if vertex is None or not all(k in vertex for k in "xyz"):
        raise ValueError(f"{path}: no vertex element with x, y, z properties")
    verts = np.stack([vertex[k] for k in "xyz"], axis=1)
    normals = (np.stack([vertex[k] for k in ("nx", "ny", "nz")], axis=1)
               if all(k in vertex for k in ("nx", "ny", "nz")) else None)  # fmt: skip
    tris = None
    if faces:
        for k, f in enumerate(faces):
            if len(f) < 3 or min(f) < 0 or max(f) >= len(verts):
                raise ValueError(
                    f"{path}: face {k}: needs 3+ vertex indices in 0..{len(verts) - 1}"
                )
        tris = np.asarray([(f[0], f[j], f[j + 1]) for f in faces for j in range(1, len(f) - 1)],
                          dtype=np.int64)  # fmt: skip
    return verts, tris, normals


def _ply_scalar(tokens, raw: bytes, offset: int, pos: int, typ: str, path: Path):
    if tokens is not None:
        if pos >= len(tokens):
            raise ValueError(f"{path}: the PLY body is truncated")
        return float(tokens[pos]), pos + 1
    fmt = "<" + {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "f4": "f",
                 "f8": "d"}[_PLY_TYPES[typ]]  # fmt: skip
    size = struct.calcsize(fmt)
    if offset + pos + size > len(raw):
        raise ValueError(f"{path}: the PLY body is truncated")
    return struct.unpack_from(fmt, raw, offset + pos)[0], pos + size


def read_xyz(path: PathLike) -> np.ndarray:
    """A text point file: one point per line, ``x y z`` or ``x y z nx ny nz`` (spaces or commas;
    ``#`` comments): float64 ``(N, 3)`` or ``(N, 6)``."""
    path = Path(path)
    rows: list[list[float]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").split()
        if len(fields) not in (3, 6) or (rows and len(fields) != len(rows[0])):
            raise ValueError(
                f"{path}:{lineno}: expected 3 or 6 values per point, got {len(fields)}"
            )
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric value in {line[:40]!r}") from None
    if not rows:
        raise ValueError(f"{path}: no points")
    return np.asarray(rows, dtype=np.float64)


def read_points(
    path: PathLike, num_points: int, generator: np.random.Generator, *, normalize: bool = True
) -> np.ndarray:
    """``num_points`` points of a point or mesh file, ``(num_points, 3 or 6)``: positions
    centred in the unit ball (:func:`~ckconv.data.modelnet.normalize_points`, over the
    ``num_points`` points kept), then unit normals when the file has them (meshes always do).
    ``normalize=False`` keeps the file's coordinates and normals as they are."""
    path = Path(path)
    suffix = path.suffix.lower()
    normals = None
    if suffix == ".off":
        verts, faces = read_off(path)
        cloud = None
    elif suffix == ".ply":
        verts, faces, normals = read_ply(path)
        cloud = None if faces is not None and len(faces) else verts
    elif suffix == ".xyz":
        cloud = read_xyz(path)
    elif suffix == ".npy":
        try:
            cloud = np.load(path, allow_pickle=False).astype(np.float64)
        except ValueError as err:
            raise ValueError(f"{path}: not a numeric .npy array ({err})") from None
        if cloud.ndim != 2 or cloud.shape[1] not in (3, 6) or len(cloud) == 0:
            raise ValueError(f"{path}: expected points (N, 3) or (N, 6), got {cloud.shape}")
    else:
        raise ValueError(f"{path}: unknown point format (expected {', '.join(POINT_SUFFIXES)})")
    if cloud is None:  # a mesh: sample its surface
        if len(faces) == 0:
            raise ValueError(f"{path}: mesh has no faces")
        try:
            points, face_normals = sample_surface(verts, faces, num_points, generator)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        cloud = np.concatenate([points, face_normals], axis=1)
    elif normals is not None:
        cloud = np.concatenate([cloud, normals], axis=1)
    if not np.isfinite(cloud).all():
        raise ValueError(f"{path}: non-finite coordinates")
    pick = generator.choice(len(cloud), num_points, replace=len(cloud) < num_points)
    cloud = cloud[np.sort(pick)]
    if not normalize:
        return cloud
    cloud[:, :3] = normalize_points(cloud[:, :3])
    if cloud.shape[1] == 6:
        norm = np.linalg.norm(cloud[:, 3:], axis=1, keepdims=True)
        cloud[:, 3:] = cloud[:, 3:] / np.where(norm > 0, norm, 1.0)
    return cloud


def has_normals(path: PathLike) -> bool:
    """Whether :func:`read_points` gives ``path`` normals, read off its header only: meshes
    (``.off``, ``.ply`` with faces) always, ``.ply`` vertices with ``nx ny nz``, ``.xyz`` and
    ``.npy`` files of 6 columns."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".off":
        return True
    if suffix == ".ply":
        with path.open("rb") as f:
            raw = f.read(1 << 16)
            while b"end_header" not in raw and (more := f.read(1 << 16)):
                raw += more
        _, elements, _ = _ply_header(path, raw)
        names = {name: (count, [p for p, _ in props]) for name, count, props in elements}
        faces = names.get("face", (0, []))[0] > 0
        return faces or {"nx", "ny", "nz"} <= set(names.get("vertex", (0, []))[1])
    if suffix == ".npy":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except ValueError as err:
            raise ValueError(f"{path}: not a numeric .npy array ({err})") from None
        return len(shape) == 2 and shape[1] == 6
    if suffix == ".xyz":
        with path.open(encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    return len(line.replace(",", " ").split()) == 6
        return False
    raise ValueError(f"{path}: unknown point format (expected {', '.join(POINT_SUFFIXES)})")


class PointFolder(Dataset):
    """Point clouds in the ModelNet layout ``root/<class>/{train,test}/<file>`` (``.off``,
    ``.ply``, ``.xyz``, ``.npy``; classes: the sorted folders holding a ``train/`` folder).

    Args:
        root: the folder of class folders.
        split: ``"train"`` or ``"test"``.
        num_points: points per cloud (meshes are sampled, point files subsampled; seeded by
            ``(seed, index)``, so an item is the same every epoch).
        normals: keep normals (6 channels; every file must give them: meshes, or point files of
            6 columns), drop them (3 channels) or, None, keep them when every file of the
            folder (train and test) has them (:func:`has_normals`, read off the headers).
        normalize: centre each cloud in the unit ball and scale its normals to unit length
            (:func:`read_points`); False keeps the files' coordinates.
        seed: seed of the sampling.

    Items: ``x`` float32 ``(3 or 6, num_points)`` (rows 0-2 positions), ``y`` int64.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        num_points: int = 512,
        normals: bool | None = None,
        normalize: bool = True,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"num_points must be a positive int, got {num_points!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"path: no folder {str(self.root)!r}")
        self.classes = sorted(d.name for d in self.root.iterdir() if (d / "train").is_dir())
        if len(self.classes) < 2:
            raise FileNotFoundError(
                f"path: {str(self.root)!r} needs 2 or more <class>/train/ folders, found "
                f"{self.classes}"
            )
        untrained = sorted(d.name for d in self.root.iterdir()
                           if (d / "test").is_dir() and not (d / "train").is_dir())  # fmt: skip
        if untrained:  # their test files would be left out without a word
            raise ValueError(
                f"{self.root}: class folder(s) {untrained} have test/ but no train/ folder; "
                f"the classes are the folders with train/: {self.classes}"
            )
        self.items = [
            (f, i)
            for i, c in enumerate(self.classes)
            if (self.root / c / split).is_dir()
            for f in sorted((self.root / c / split).iterdir())
            if f.suffix.lower() in POINT_SUFFIXES
        ]
        if not self.items:
            raise FileNotFoundError(
                f"{self.root}: no {split} files (<class>/{split}/*{'|*'.join(POINT_SUFFIXES)})"
            )
        self.num_points, self.seed, self.split = num_points, int(seed), split
        self.num_classes = len(self.classes)
        self.held_out = ""
        #: what ``ckconv train`` prints about the data (normals left out of a mixed folder)
        self.note = ""
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be true or false, got {normalize!r}")
        self.normalize = normalize
        if normals not in (None, True, False):
            raise ValueError(f"normals must be true, false or unset, got {normals!r}")
        # both splits decide alike: from the headers of every file of the folder
        files = [f for c in self.classes for s in ("train", "test") if (self.root / c / s).is_dir()
                 for f in sorted((self.root / c / s).iterdir())
                 if f.suffix.lower() in POINT_SUFFIXES]  # fmt: skip
        if normals is not False:
            without = [f for f in files if not has_normals(f)]
            if normals and without:
                raise ValueError(
                    f"normals: true, but {len(without)} of the {len(files)} files have none "
                    f"(e.g. {without[0]}); set task.normals: false, or leave it unset to keep "
                    "normals only when every file has them"
                )
            normals = not without
            if without and len(without) < len(files):
                self.note = (
                    f"normals left out: {len(without)} of the {len(files)} files of "
                    f"{self.root.name} have none (e.g. {without[0].name}); positions only"
                )
        self.normals = bool(normals)

    def _load(self, path: Path, index: int) -> np.ndarray:
        return read_points(path, self.num_points, np.random.default_rng([self.seed, index]),
                           normalize=self.normalize)  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        try:
            cloud = self._load(path, index)
        except InputError:
            raise
        except ValueError as err:  # a broken file met while training or testing: one line
            raise InputError(str(err)) from None
        if self.normals and cloud.shape[1] != 6:  # a file changed since the folder was read
            raise ValueError(f"{path}: has no normals, the others do")
        x = cloud[:, :6] if self.normals else cloud[:, :3]
        return torch.as_tensor(np.ascontiguousarray(x.T), dtype=torch.float32), torch.tensor(
            label, dtype=torch.int64
        )


def folder_labels(dataset: ImageFolder | PointFolder) -> np.ndarray:
    """The class of every item of a folder dataset (read off the folder names, no decoding)."""
    return np.asarray([label for _, label in dataset.items], dtype=np.int64)
