"""Image datasets in their published formats, as 2D images or as pixel sequences.

- MNIST: IDX files (``train-images-idx3-ubyte[.gz]`` ...), magic 2051 (images) / 2049 (labels),
  big-endian sizes, uint8. As sequences: sMNIST (784 steps) and pMNIST (a fixed, seeded
  permutation of the 784 steps).
- CIFAR-10 / CIFAR-100: python pickle batches (``data`` uint8 (N, 3072) as R, G, B planes of
  32x32, row-major; keys may be bytes). Read with an unpickler that only accepts numpy arrays.
  As sequences: sCIFAR10 (3 channels, 1024 steps).
- STL-10: ``stl10_binary/{train,test}_{X,y}.bin`` (uint8 images stored column-major per channel;
  labels 1..10).
- scikit-learn digits (ships inside scikit-learn, runs offline): 1797 8x8 images as 1D (64 steps),
  permuted 1D and 2D (1x8x8).

Items are ``(x, y)``: ``x`` float32 ``(C, H, W)`` (``layout="image"``) or ``(C, H*W)``
(``layout="sequence"``), scaled to [0, 1] and, with ``normalize=True``, standardised per channel
with statistics of the *training* split; ``y`` int64.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_labels,
    check_split,
    find_dir,
    first_existing,
    holdout_indices,
    missing_files,
    split_indices,
)

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "STL10",
    "Digits",
    "ImageClassification",
    "pixel_permutation",
    "read_cifar_batch",
    "read_idx",
    "read_stl10_images",
    "read_stl10_labels",
]

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped if the file starts with the gzip magic bytes."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataFileError(path, f"broken gzip stream ({err})") from err
    return raw


def read_idx(path: PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array in native byte order.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions, then
    one big-endian uint32 size per dimension. ``expected_magic`` (e.g. 2051 for MNIST images,
    2049 for labels) is checked when given.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataFileError(path, f"truncated IDX file ({len(data)} bytes, header needs 4)")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataFileError(path, f"not an IDX file (magic number {magic:#010x})")
    if expected_magic is not None and magic != expected_magic:
        raise DataFileError(path, f"IDX magic number is {magic}, expected {expected_magic}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(path, f"truncated IDX header (needs {header} bytes, has {len(data)})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[data[2]]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(data) - header
    if body != expected:
        raise DataFileError(
            path,
            f"IDX body has {body} bytes, header {shape} of {dtype} needs {expected}"
            + (" (truncated file)" if body < expected else ""),
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: only numpy array reconstruction is allowed, so a crafted file
    cannot run code."""

    _allowed = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # the published files name numpy.core (numpy 1); numpy 2 keeps it only as a
            # deprecated alias of numpy._core
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def _get(batch: dict, key: str):
    if key in batch:
        return batch[key]
    if key.encode() in batch:
        return batch[key.encode()]
    raise KeyError(key)


def read_cifar_batch(path: PathLike, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch: returns images uint8 ``(N, 3, 32, 32)`` and labels int64.

    ``label_key`` is ``"labels"`` (CIFAR-10), ``"fine_labels"`` or ``"coarse_labels"``
    (CIFAR-100). Keys may be ``bytes`` (the published files are Python 2 pickles).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise DataFileError(path, f"not a readable CIFAR pickle batch ({err})") from err
    if not isinstance(batch, dict):
        raise DataFileError(path, f"expected a dict batch, got {type(batch).__name__}")
    try:
        data = np.asarray(_get(batch, "data"))
        labels = np.asarray(_get(batch, label_key), dtype=np.int64)
    except KeyError as err:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in batch)
        raise DataFileError(path, f"missing key {err} in CIFAR batch (keys: {keys})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFileError(path, f"'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise DataFileError(path, f"{len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_stl10_images(path: PathLike) -> np.ndarray:
    """Read an STL-10 ``*_X.bin`` file: uint8 ``(N, 3, 96, 96)`` (row-major H, W)."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    size = 3 * 96 * 96
    if raw.size % size:
        raise DataFileError(path, f"{raw.size} bytes is not a whole number of 3x96x96 images")
    # Stored column-major per channel: swap the last two axes to get (H, W).
    return raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy()


def read_stl10_labels(path: PathLike) -> np.ndarray:
    """Read an STL-10 ``*_y.bin`` file: labels 1..10 shifted to 0..9 (int64)."""
    path = Path(path)
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise DataFileError(
            path, f"STL-10 labels must be in 1..10, got {labels.min()}..{labels.max()}"
        )
    return labels - 1


def pixel_permutation(num_pixels: int, seed: int = 0) -> torch.Tensor:
    """The fixed pixel order of permuted tasks (pMNIST): ``randperm`` seeded with ``seed``."""
    return torch.randperm(num_pixels, generator=torch.Generator().manual_seed(int(seed)))


class ImageClassification(Dataset):
    """uint8 images ``(N, C, H, W)`` in memory, served as float tensors.

    Args:
        images: uint8 array ``(N, C, H, W)``.
        labels: int64 array ``(N,)``.
        layout: ``"image"`` -> ``(C, H, W)``; ``"sequence"`` -> ``(C, H*W)`` (row-major pixels).
        permutation: optional ``(H*W,)`` order applied to the pixel sequence (``sequence`` only).
        mean, std: per-channel statistics (of [0, 1]-scaled values) to standardise with, or None.
        scale: divisor mapping the stored integers to [0, 1].
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        layout: str = "image",
        permutation: torch.Tensor | None = None,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        scale: float = 255.0,
    ) -> None:
        if layout not in ("image", "sequence"):
            raise ValueError(f"layout must be 'image' or 'sequence', got {layout!r}")
        if permutation is not None and layout != "sequence":
            raise ValueError("a pixel permutation needs layout='sequence'")
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.layout = layout
        self.permutation = permutation
        self.scale = float(scale)
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        c, h, w = self.images.shape[1:]
        return (c, h, w) if self.layout == "image" else (c, h * w)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x = self.images[index].to(torch.float32) / self.scale
        if self.mean is not None:
            x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        if self.layout == "sequence":
            x = x.reshape(x.shape[0], -1)
            if self.permutation is not None:
                x = x[:, self.permutation]
        return x, self.labels[index]


def channel_stats_uint8(
    images: np.ndarray, scale: float = 255.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (population) of ``images / scale``, computed in float64."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float64) / scale
    dims = (0, 2, 3)
    return x.mean(dim=dims).float(), x.std(dim=dims, unbiased=False).float()


def _labels_idx(path: Path, num_classes: int) -> np.ndarray:
    """An IDX label file (magic 2049) whose labels are all in ``0 .. num_classes - 1``."""
    labels = read_idx(path, 2049).astype(np.int64)
    check_labels(labels, num_classes, path)
    return labels


def _select(images, labels, split, n_val, seed):
    if split == "test":
        return images, labels
    idx = holdout_indices(len(labels), n_val, split, seed)
    return images[idx], labels[idx]


class MNIST(ImageClassification):
    """MNIST from the IDX files; sMNIST with ``layout="sequence"``, pMNIST with ``permuted=True``.

    Looks in ``root``, ``root/MNIST/raw`` (torchvision's layout) and ``root/mnist`` for
    ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
    ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``. The 60k training images are
    split 55k/5k into train/val (seeded); test is the 10k test set.

    Examples:
        >>> ds = MNIST("data", "test", layout="sequence", permuted=True)  # doctest: +SKIP
        >>> ds[0][0].shape  # doctest: +SKIP
        torch.Size([1, 784])
    """

    CANDIDATES = ("", "MNIST/raw", "mnist", "MNIST")
    REQUIRED = (
        "train-images-idx3-ubyte.gz|train-images-idx3-ubyte",
        "train-labels-idx1-ubyte.gz|train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte.gz|t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte.gz|t10k-labels-idx1-ubyte",
    )
    num_classes = 10

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.REQUIRED)

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        layout: str = "image",
        permuted: bool = False,
        permutation_seed: int = 0,
        normalize: bool = True,
        val_size: int = 5000,
        seed: int = 0,
        download: bool = False,
    ) -> None:
        check_split(split)
        directory = self.find(root)
        if directory is None and download:
            from ckconv.data.download import download_mnist

            download_mnist(Path(root) / "mnist")
            directory = self.find(root)
        if directory is None:
            raise missing_files(
                "MNIST",
                root,
                self.CANDIDATES,
                self.REQUIRED,
                "Download the four IDX files from the MNIST page (or pass download=True).",
            )
        req = self.REQUIRED
        train_x = read_idx(first_existing(directory, req[0]), 2051)
        train_y = _labels_idx(first_existing(directory, req[1]), self.num_classes)
        if len(train_x) != len(train_y):
            raise DataFileError(
                directory, f"{len(train_x)} training images but {len(train_y)} labels"
            )
        if split == "test":
            images = read_idx(first_existing(directory, req[2]), 2051)
            labels = _labels_idx(first_existing(directory, req[3]), self.num_classes)
            if len(images) != len(labels):
                raise DataFileError(
                    directory, f"{len(images)} test images but {len(labels)} labels"
                )
        else:
            images, labels = _select(train_x, train_y, split, val_size, seed)
        if permuted and layout != "sequence":
            raise ValueError("permuted=True needs layout='sequence' (pMNIST is a sequence task)")
        perm = (
            pixel_permutation(train_x.shape[1] * train_x.shape[2], permutation_seed)
            if permuted
            else None
        )
        mean = std = None
        if normalize:
            train_part = _select(train_x, train_y, "train", val_size, seed)[0]
            mean, std = channel_stats_uint8(train_part[:, None])
        super().__init__(
            images[:, None], labels, layout=layout, permutation=perm, mean=mean, std=std
        )
        self.root = directory
        self.split = split


class _CIFAR(ImageClassification):
    CANDIDATES: tuple[str, ...] = ()
    TRAIN_FILES: tuple[str, ...] = ()
    TEST_FILES: tuple[str, ...] = ()
    LABEL_KEY = "labels"
    #: number of classes of each label key
    CLASSES: ClassVar[Mapping[str, int]] = MappingProxyType({})
    NAME = ""
    ARCHIVE = ""

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.TRAIN_FILES + cls.TEST_FILES)

    @classmethod
    def _read(cls, directory: Path, files, label_key):
        parts = [read_cifar_batch(directory / f, label_key) for f in files]
        classes = cls.CLASSES.get(label_key)
        for f, (_, labels) in zip(files, parts, strict=True):
            if classes is not None:
                check_labels(labels, classes, directory / f)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        layout: str = "image",
        grayscale: bool = False,
        normalize: bool = True,
        val_size: int = 5000,
        seed: int = 0,
        label_key: str | None = None,
        download: bool = False,
    ) -> None:
        check_split(split)
        directory = self.find(root)
        if directory is None and download:
            from ckconv.data import download as dl

            dl.download_dataset(self.NAME, root)
            directory = self.find(root)
        if directory is None:
            raise missing_files(
                self.NAME,
                root,
                self.CANDIDATES,
                self.TRAIN_FILES + self.TEST_FILES,
                f"Download and extract {self.ARCHIVE} (or pass download=True).",
            )
        key = label_key or self.LABEL_KEY
        train_x, train_y = self._read(directory, self.TRAIN_FILES, key)
        if split == "test":
            images, labels = self._read(directory, self.TEST_FILES, key)
        else:
            images, labels = _select(train_x, train_y, split, val_size, seed)
        if grayscale:
            images = to_grayscale_uint8(images)
        mean = std = None
        if normalize:
            train_part = _select(train_x, train_y, "train", val_size, seed)[0]
            if grayscale:
                train_part = to_grayscale_uint8(train_part)
            mean, std = channel_stats_uint8(train_part)
        super().__init__(images, labels, layout=layout, mean=mean, std=std)
        self.root = directory
        self.split = split


def to_grayscale_uint8(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of uint8 RGB images ``(N, 3, H, W)``, rounded to uint8 ``(N, 1, H, W)``
    (the grey CIFAR-10 of the LRA Image task)."""
    w = np.array([0.2989, 0.5870, 0.1140], dtype=np.float64)
    grey = np.tensordot(images.astype(np.float64), w, axes=([1], [0]))
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]


class CIFAR10(_CIFAR):
    """CIFAR-10 from ``cifar-10-batches-py/{data_batch_1..5,test_batch}``; 45k/5k/10k splits.

    ``layout="sequence"`` gives sCIFAR10 ``(3, 1024)``; ``grayscale=True`` gives the LRA Image
    task's grey images.
    """

    CANDIDATES = ("cifar-10-batches-py", "", "cifar10/cifar-10-batches-py")
    TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
    TEST_FILES = ("test_batch",)
    NAME = "cifar10"
    ARCHIVE = "cifar-10-python.tar.gz"
    CLASSES = MappingProxyType({"labels": 10})
    num_classes = 10


class CIFAR100(_CIFAR):
    """CIFAR-100 from ``cifar-100-python/{train,test}`` (fine labels by default); 45k/5k/10k."""

    CANDIDATES = ("cifar-100-python", "", "cifar100/cifar-100-python")
    TRAIN_FILES = ("train",)
    TEST_FILES = ("test",)
    LABEL_KEY = "fine_labels"
    NAME = "cifar100"
    ARCHIVE = "cifar-100-python.tar.gz"
    CLASSES = MappingProxyType({"fine_labels": 100, "coarse_labels": 20})
    num_classes = 100


class STL10(ImageClassification):
    """STL-10 from ``stl10_binary/{train,test}_{X,y}.bin``; train 4.5k / val 500 / test 8k."""

    CANDIDATES = ("stl10_binary", "", "stl10/stl10_binary")
    REQUIRED = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
    num_classes = 10

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.REQUIRED)

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        layout: str = "image",
        normalize: bool = True,
        val_size: int = 500,
        seed: int = 0,
        download: bool = False,
    ) -> None:
        check_split(split)
        directory = self.find(root)
        if directory is None and download:
            from ckconv.data import download as dl

            dl.download_dataset("stl10", root)
            directory = self.find(root)
        if directory is None:
            raise missing_files(
                "STL10",
                root,
                self.CANDIDATES,
                self.REQUIRED,
                "Download and extract stl10_binary.tar.gz (or pass download=True).",
            )
        train_x = read_stl10_images(directory / "train_X.bin")
        train_y = read_stl10_labels(directory / "train_y.bin")
        if len(train_x) != len(train_y):
            raise DataFileError(
                directory, f"{len(train_x)} training images but {len(train_y)} labels"
            )
        if split == "test":
            images = read_stl10_images(directory / "test_X.bin")
            labels = read_stl10_labels(directory / "test_y.bin")
            if len(images) != len(labels):
                raise DataFileError(
                    directory, f"{len(images)} test images but {len(labels)} labels"
                )
        else:
            images, labels = _select(train_x, train_y, split, val_size, seed)
        mean = std = None
        if normalize:
            train_part = _select(train_x, train_y, "train", val_size, seed)[0]
            mean, std = channel_stats_uint8(train_part)
        super().__init__(images, labels, layout=layout, mean=mean, std=std)
        self.root = directory
        self.split = split


class Digits(ImageClassification):
    """scikit-learn's 1797 8x8 handwritten digits: real data that runs offline.

    ``layout="sequence"`` gives 64-step sequences (1 channel), ``permuted=True`` a fixed seeded
    permutation of them, ``layout="image"`` ``(1, 8, 8)`` images. Split 70/15/15, stratified and
    seeded. Values are scaled from 0..16 to [0, 1] and standardised with training statistics.

    Examples:
        >>> ds = Digits("train", layout="sequence")
        >>> x, y = ds[0]
        >>> x.shape, y.dtype
        (torch.Size([1, 64]), torch.int64)
    """

    num_classes = 10

    @staticmethod
    def find(root: PathLike | None = None) -> Path | None:
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        if spec is None or spec.origin is None:
            return None
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        return path if path.exists() else None

    def __init__(
        self,
        split: str = "train",
        *,
        root: PathLike | None = None,
        layout: str = "sequence",
        permuted: bool = False,
        permutation_seed: int = 0,
        normalize: bool = True,
        seed: int = 0,
    ) -> None:
        check_split(split)
        try:
            from sklearn.datasets import load_digits
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("Digits needs scikit-learn: pip install scikit-learn") from err
        bunch = load_digits()
        images = bunch.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
        labels = bunch.target.astype(np.int64)
        fractions = (0.7, 0.15, 0.15)
        idx = split_indices(split, labels, fractions, seed)
        train_idx = split_indices("train", labels, fractions, seed)
        if permuted and layout != "sequence":
            raise ValueError("permuted=True needs layout='sequence'")
        perm = pixel_permutation(64, permutation_seed) if permuted else None
        mean, std = channel_stats_uint8(images[train_idx], 16.0) if normalize else (None, None)
        super().__init__(
            images[idx],
            labels[idx],
            layout=layout,
            permutation=perm,
            mean=mean,
            std=std,
            scale=16.0,
        )
        self.split = split
