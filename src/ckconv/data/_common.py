"""Shared pieces of the dataset classes: the split argument, locating files, a small
tensor-backed dataset and a deterministic stratified split.

Only torch and numpy are imported here (``ckconv.data`` stands apart from the model code).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv._checks import InputError

SPLITS = ("train", "val", "test")

PathLike = str | os.PathLike


class DataFileError(InputError):
    """A data file that contradicts its format, its own header or the task's classes.

    The message starts with the file and, for text files, the 1-based line of the first problem
    (``path:line: ...``); ``path`` and ``line`` (None for binary files) hold them.
    """

    def __init__(self, path: PathLike, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


def read_text(path: PathLike, kind: str) -> str:
    """The UTF-8 text of ``path``; a file that is not UTF-8 raises :class:`DataFileError` naming
    the line of the first bad byte."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataFileError(
            path,
            f"not a UTF-8 {kind} file (byte {raw[err.start]:#04x} at offset {err.start})",
            line,
        ) from None


def check_finite(
    values: np.ndarray, path: PathLike, what: str, line: int | None = None, hint: str = ""
) -> None:
    """Refuse ``inf`` / ``-inf`` in ``values`` (NaN marks a missing value and passes)."""
    bad = np.isinf(values)
    if bad.any():
        first = values[bad].flat[0]
        raise DataFileError(path, f"{what} holds a non-finite value ({first}){hint}", line)


def check_labels(labels: np.ndarray, num_classes: int, path: PathLike) -> None:
    """Integer class labels in ``0 .. num_classes - 1``; the first one outside names its item."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DataFileError(
            path,
            f"label {int(labels[i])} of item {i} is outside the {num_classes} classes "
            f"(0..{num_classes - 1}); {bad.size} such labels",
        )


def check_split(split: str, allowed: Sequence[str] = SPLITS) -> str:
    """Return ``split`` if it is one of ``allowed``, else raise a clear ``ValueError``."""
    if split not in allowed:
        raise ValueError(f"split must be one of {tuple(allowed)}, got {split!r}")
    return split


def check_rate(name: str, value: float, *, allow_one: bool = False) -> float:
    """Check a fraction in [0, 1) (or [0, 1] with ``allow_one``)."""
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (0.0 <= float(value) and upper_ok):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return float(value)


def find_dir(root: PathLike, candidates: Iterable[str], required: Iterable[str]) -> Path | None:
    """First directory ``root/<candidate>`` that holds every path in ``required``.

    ``candidates`` are sub-directories relative to ``root``; ``""`` means ``root`` itself. A
    required entry may list alternatives separated by ``|`` (e.g. ``"a.gz|a"``).
    """
    root = Path(root).expanduser()
    required = list(required)
    for candidate in candidates:
        directory = root / candidate if candidate else root
        if not directory.is_dir():
            continue
        if all(any((directory / alt).exists() for alt in req.split("|")) for req in required):
            return directory
    return None


def first_existing(directory: Path, alternatives: str) -> Path:
    """The first of the ``|``-separated file names that exists in ``directory``."""
    for alt in alternatives.split("|"):
        if (directory / alt).exists():
            return directory / alt
    raise FileNotFoundError(f"none of {alternatives.split('|')} found in {directory}")


def missing_files(
    dataset: str,
    root: PathLike,
    candidates: Iterable[str],
    required: Iterable[str],
    how: str,
) -> FileNotFoundError:
    """A ``FileNotFoundError`` naming where the files were looked for and how to obtain them."""
    root = Path(root).expanduser()
    places = ", ".join(str(root / c) if c else str(root) for c in candidates)
    names = ", ".join(r.replace("|", " or ") for r in required)
    return FileNotFoundError(f"{dataset}: expected files [{names}] in one of: {places}. {how}")


class ArrayDataset(Dataset):
    """Inputs and labels held in memory, with an optional per-sample transform.

    ``inputs`` is one tensor whose first dimension indexes samples, or a list of tensors of
    different shapes (variable-length sequences). ``targets`` is a tensor with one entry (or row)
    per sample.
    """

    def __init__(
        self,
        inputs: torch.Tensor | Sequence[torch.Tensor],
        targets: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError(
                f"inputs and targets must have the same length, got {len(inputs)} and {len(targets)}"
            )
        self.inputs = inputs
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        x = self.inputs[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]


def stratified_split(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> list[np.ndarray]:
    """Deterministic stratified split of ``range(len(labels))``.

    Each class is shuffled with a generator seeded by ``seed`` and cut by ``fractions`` (which must
    sum to 1); the parts are returned as sorted index arrays, one per fraction. Within a class the
    rounding puts any remainder into the last part.
    """
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    cum = np.cumsum(fractions)[:-1]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        cuts = np.round(cum * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=int) for p in parts]


def split_indices(
    split: str,
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    fractions: Sequence[float],
    seed: int,
) -> np.ndarray:
    """Indices of ``split`` ("train", "val" or "test") in a 3-way stratified split."""
    check_split(split)
    return stratified_split(labels, fractions, seed)[SPLITS.index(split)]


def holdout_indices(n: int, n_val: int, split: str, seed: int) -> np.ndarray:
    """Split ``range(n)`` into train and a random validation part of ``n_val`` samples."""
    check_split(split, ("train", "val"))
    if not 0 <= n_val < n:
        raise ValueError(
            f"the validation hold-out ({n_val}) must be smaller than the {n} training samples"
        )
    perm = np.random.default_rng(seed).permutation(n)
    val = np.sort(perm[:n_val])
    train = np.sort(perm[n_val:])
    return train if split == "train" else val
