"""Long Range Arena (Tay et al. 2021) tasks in their released formats.

- ListOps: ``listops-1000/basic_{train,val,test}.tsv`` (header ``Source<TAB>Target``). Tokens as in
  the S4 code base that CCNN builds on: parentheses removed, whitespace split; a fixed vocabulary
  (``<pad>``, operators ``[MAX [MIN [MED [SM``, ``]`` and the digits), padded to 2000. Labels 0..9.
- Text: IMDB reviews (``aclImdb/{train,test}/{pos,neg}/*.txt``) as UTF-8 bytes (id = byte + 1,
  0 = padding), truncated / padded to 4096. Labels neg = 0, pos = 1.
- Image: CIFAR-10 in grey (ITU-R 601 luma), as a 1024-step sequence or a 32x32 image
  (see :class:`LRAImage`).
- Pathfinder: ``pathfinder32/<difficulty>/metadata/<n>.npy`` text files whose lines are
  ``<img dir> <file name> <.> <label> ...`` and ``imgs/<n>/sample_<k>.png`` 32x32 grey PNGs; the
  examples in metadata order are split 80/10/10 (as LRA). As sequence (1, 1024) or image (1, 32, 32).

Token tasks return ``x`` int64 ``(max_length,)`` (feed an embedding layer; ``lengths`` gives the
unpadded lengths); image tasks return float32 tensors.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_split,
    find_dir,
    holdout_indices,
    missing_files,
    read_text,
)
from ckconv.data.images import CIFAR10

__all__ = [
    "LISTOPS_VOCAB",
    "LRAImage",
    "LRAText",
    "ListOps",
    "Pathfinder",
    "read_listops_tsv",
    "read_pathfinder_metadata",
]

#: ListOps token vocabulary: padding, the four operators, closing bracket and digits 0-9.
LISTOPS_VOCAB = ("<pad>", "[MAX", "[MIN", "[MED", "[SM", "]", *[str(d) for d in range(10)])
_LISTOPS_INDEX = {t: i for i, t in enumerate(LISTOPS_VOCAB)}


def read_listops_tsv(path: PathLike) -> tuple[list[list[int]], np.ndarray]:
    """Read a ListOps ``.tsv``: token-id lists (no padding) and int64 labels."""
    path = Path(path)
    lines = read_text(path, "ListOps").splitlines()
    if not lines:
        raise DataFileError(path, "empty ListOps file")
    header = lines[0].split("\t")
    if [h.strip() for h in header] != ["Source", "Target"]:
        raise DataFileError(path, f"header must be 'Source<TAB>Target', got {lines[0][:40]!r}", 1)
    seqs, labels = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFileError(path, f"expected 2 tab-separated fields, got {len(parts)}", lineno)
        src, tgt = parts
        try:
            label = int(tgt)
        except ValueError:
            raise DataFileError(path, f"target {tgt!r} is not an integer", lineno) from None
        if not 0 <= label <= 9:
            raise DataFileError(path, f"target {label} outside 0..9", lineno)
        tokens = src.replace("(", " ").replace(")", " ").split()
        try:
            seqs.append([_LISTOPS_INDEX[t] for t in tokens])
        except KeyError as err:
            raise DataFileError(path, f"unknown ListOps token {err}", lineno) from None
        labels.append(label)
    if not seqs:
        raise DataFileError(path, "no examples")
    return seqs, np.asarray(labels, dtype=np.int64)


def _pad_tokens(seqs: list[list[int]], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.zeros(len(seqs), max_length, dtype=torch.int64)
    lengths = torch.zeros(len(seqs), dtype=torch.int64)
    for i, s in enumerate(seqs):
        s = s[:max_length]
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.int64)
        lengths[i] = len(s)
    return out, lengths


class _TokenDataset(Dataset):
    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]


class ListOps(_TokenDataset):
    """LRA ListOps: items ``(tokens (max_length,), label)``; vocabulary ``LISTOPS_VOCAB``."""

    CANDIDATES = (
        "listops-1000",
        "lra_release/listops-1000",
        "lra_release/lra_release/listops-1000",
        "",
    )
    FILES = MappingProxyType(
        {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
    )
    num_classes = 10
    vocab_size = len(LISTOPS_VOCAB)

    def __init__(self, root: PathLike, split: str = "train", *, max_length: int = 2000) -> None:
        check_split(split)
        directory = self.find(root)
        if directory is None:
            raise missing_files(
                "ListOps",
                root,
                self.CANDIDATES,
                self.FILES.values(),
                "Download the LRA release (lra_release.gz) and extract listops-1000/.",
            )
        seqs, labels = read_listops_tsv(directory / self.FILES[split])
        self.inputs, self.lengths = _pad_tokens(seqs, max_length)
        self.targets = torch.as_tensor(labels)
        self.split = split

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.FILES.values())


class LRAText(_TokenDataset):
    """LRA Text: IMDB reviews as UTF-8 bytes (id = byte + 1; vocabulary 257), labels neg 0 / pos 1.

    ``val`` is a seeded 10% hold-out of the 25k training reviews; ``test`` is the 25k test reviews.
    """

    CANDIDATES = ("aclImdb", "", "imdb/aclImdb")
    REQUIRED = ("train/pos", "train/neg", "test/pos", "test/neg")
    num_classes = 2
    vocab_size = 257

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        max_length: int = 4096,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        check_split(split)
        directory = self.find(root)
        if directory is None:
            raise missing_files(
                "LRAText (IMDB)",
                root,
                self.CANDIDATES,
                self.REQUIRED,
                "Download aclImdb_v1.tar.gz (Maas et al. 2011) and extract it there.",
            )
        part = "test" if split == "test" else "train"
        files, labels = [], []
        for label, sub in enumerate(("neg", "pos")):
            for f in sorted((directory / part / sub).glob("*.txt")):
                files.append(f)
                labels.append(label)
        if not files:
            raise FileNotFoundError(f"{directory / part}: no review .txt files in pos/ and neg/")
        if split != "test":
            idx = holdout_indices(len(files), round(val_fraction * len(files)), split, seed)
            files = [files[i] for i in idx]
            labels = [labels[i] for i in idx]
        seqs = [[b + 1 for b in f.read_bytes()] for f in files]
        self.inputs, self.lengths = _pad_tokens(seqs, max_length)
        self.targets = torch.as_tensor(labels, dtype=torch.int64)
        self.split = split

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.REQUIRED)


class LRAImage(CIFAR10):
    """LRA Image: grey CIFAR-10; ``layout="sequence"`` ``(1, 1024)`` (LRA) or ``"image"``
    ``(1, 32, 32)`` (CCNN's 2D Image)."""

    def __init__(
        self, root: PathLike, split: str = "train", *, layout: str = "sequence", **kwargs
    ) -> None:
        super().__init__(root, split, layout=layout, grayscale=True, **kwargs)


def read_pathfinder_metadata(path: PathLike) -> list[tuple[str, str, int]]:
    """Read one Pathfinder metadata file (text, despite the ``.npy`` name): ``(img dir, file name,
    label)`` per line."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(read_text(path, "Pathfinder metadata").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 4:
            raise DataFileError(
                path, f"expected at least 4 space-separated fields, got {len(fields)}", lineno
            )
        try:
            label = int(fields[3])
        except ValueError:
            raise DataFileError(path, f"label {fields[3]!r} is not an integer", lineno) from None
        if label not in (0, 1):
            raise DataFileError(path, f"label must be 0 or 1, got {label}", lineno)
        out.append((fields[0], fields[1], label))
    return out


def _metadata_order(p: Path):
    return (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem)


class Pathfinder(Dataset):
    """LRA Pathfinder (default: 32x32, the hard ``curv_contour_length_14`` set).

    Items ``(x, y)``: ``x`` float32 ``(1, 1024)`` (``layout="sequence"``) or ``(1, 32, 32)``
    (``"image"``, CCNN's 2D Pathfinder), scaled to [0, 1] and, with ``normalize``, mapped to
    [-1, 1] (``(x - 0.5) / 0.5``); ``y`` int64 in {0, 1}. Images are decoded on access with
    Pillow (imported then). Empty image files are skipped, as LRA does.
    """

    CANDIDATES = (
        "pathfinder{res}",
        "lra_release/pathfinder{res}",
        "lra_release/lra_release/pathfinder{res}",
        "",
    )
    num_classes = 2

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        layout: str = "sequence",
        difficulty: str = "curv_contour_length_14",
        resolution: int = 32,
        normalize: bool = True,
    ) -> None:
        check_split(split)
        if layout not in ("sequence", "image"):
            raise ValueError(f"layout must be 'sequence' or 'image', got {layout!r}")
        directory = self.find(root, difficulty, resolution)
        if directory is None:
            cands = [c.format(res=resolution) for c in self.CANDIDATES]
            raise missing_files(
                "Pathfinder",
                root,
                [f"{c}/{difficulty}".lstrip("/") for c in cands],
                ["metadata/", "imgs/"],
                "Download the LRA release (lra_release.gz) and extract pathfinder32/.",
            )
        examples = []
        for meta in sorted((directory / "metadata").glob("*.npy"), key=_metadata_order):
            for sub, name, label in read_pathfinder_metadata(meta):
                path = directory / sub / name
                if path.exists() and path.stat().st_size == 0:
                    continue
                examples.append((path, label))
        if not examples:
            raise FileNotFoundError(f"{directory / 'metadata'}: no examples listed")
        n = len(examples)
        cut1, cut2 = int(0.8 * n), int(0.9 * n)
        sl = {"train": slice(0, cut1), "val": slice(cut1, cut2), "test": slice(cut2, n)}[split]
        self.examples = examples[sl]
        self.layout = layout
        self.resolution = resolution
        self.normalize = normalize
        self.split = split
        self.root = directory

    @classmethod
    def find(
        cls, root: PathLike, difficulty: str = "curv_contour_length_14", resolution: int = 32
    ) -> Path | None:
        cands = [f"{c.format(res=resolution)}/{difficulty}".lstrip("/") for c in cls.CANDIDATES]
        return find_dir(root, cands, ["metadata", "imgs"])

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int):
        path, label = self.examples[index]
        try:
            from PIL import Image
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Pathfinder decodes PNG files with Pillow: pip install pillow"
            ) from err
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("L"), dtype=np.float32)
        except (OSError, ValueError) as err:
            raise DataFileError(path, f"cannot decode image ({err})") from None
        if arr.shape != (self.resolution, self.resolution):
            raise DataFileError(
                path, f"expected {self.resolution}x{self.resolution}, got {arr.shape}"
            )
        x = torch.from_numpy(arr / 255.0).unsqueeze(0)
        if self.normalize:
            x = (x - 0.5) / 0.5
        if self.layout == "sequence":
            x = x.reshape(1, -1)
        return x, torch.tensor(label, dtype=torch.int64)
