"""PhysioNet / Computing in Cardiology Challenge 2019 (sepsis) with Kidger et al.'s preprocessing.

Files: one ``p<id>.psv`` per ICU stay (``training_setA`` / ``training`` and ``training_setB``
folders of the challenge's zips), pipe-separated, a header line and 41 columns: 34 hourly
measurements (HR ... Platelets), 5 static values (Age, Gender, Unit1, Unit2, HospAdmTime), ICULOS
(hours since ICU admission) and SepsisLabel; ``NaN`` marks a missing value.

Preprocessing (Kidger et al. 2020, used by CKConv): keep rows with ICULOS <= 72; each hour is one
step at index ``ICULOS - 1`` (hours without a row are all-missing); stays with fewer than 3 steps
are dropped; the label is the maximum SepsisLabel over the kept rows (``label_window="72h"``, what
their code does) or over the whole stay (``"stay"``, what the papers' text says); Unit1, Unit2 and
HospAdmTime missing -> 0; every channel is standardised with training-split statistics (NaN
ignored); split 70/15/15, stratified by label.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_split,
    missing_files,
    read_text,
    stratified_split,
)

__all__ = ["PSV_COLUMNS", "PhysioNet2019", "read_psv"]

#: The 41 columns of a PhysioNet 2019 ``.psv`` file, in file order (last: ``SepsisLabel``).
PSV_COLUMNS = (
    "HR",
    "O2Sat",
    "Temp",
    "SBP",
    "MAP",
    "DBP",
    "Resp",
    "EtCO2",
    "BaseExcess",
    "HCO3",
    "FiO2",
    "pH",
    "PaCO2",
    "SaO2",
    "AST",
    "BUN",
    "Alkalinephos",
    "Calcium",
    "Chloride",
    "Creatinine",
    "Bilirubin_direct",
    "Glucose",
    "Lactate",
    "Magnesium",
    "Phosphate",
    "Potassium",
    "Bilirubin_total",
    "TroponinI",
    "Hct",
    "Hgb",
    "PTT",
    "WBC",
    "Fibrinogen",
    "Platelets",
    "Age",
    "Gender",
    "Unit1",
    "Unit2",
    "HospAdmTime",
    "ICULOS",
    "SepsisLabel",
)
N_TIME = 34
N_STATIC = 5
HOURS = 72


def read_psv(path: PathLike) -> np.ndarray:
    """Read one ``.psv`` file: float64 ``(rows, 41)`` with NaN for missing values.

    Raises ``ValueError`` naming the file (and line) for a wrong header, a row without 41 fields or
    a value that is not a number.
    """
    path = Path(path)
    lines = read_text(path, ".psv").splitlines()
    if not lines:
        raise DataFileError(path, "empty .psv file")
    header = tuple(h.strip() for h in lines[0].split("|"))
    if header != PSV_COLUMNS:
        raise DataFileError(
            path,
            f"header has {len(header)} columns {header[:3]}..., expected the 41 PhysioNet 2019 "
            "columns",
            1,
        )
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 41:
            raise DataFileError(
                path, f"expected 41 fields, got {len(fields)} (truncated file?)", lineno
            )
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise DataFileError(path, f"non-numeric value in {line[:60]!r}", lineno) from None
        _check_psv_row(rows[-1], path, lineno)
    if not rows:
        raise DataFileError(path, "no data rows")
    return np.asarray(rows, dtype=np.float64)


def _check_psv_row(row: list[float], path: Path, lineno: int) -> None:
    """No ``inf`` (NaN is a missing measurement) and a SepsisLabel of 0 or 1."""
    bad = [PSV_COLUMNS[j] for j, v in enumerate(row) if math.isinf(v)]
    if bad:
        raise DataFileError(path, f"non-finite value in column {bad[0]}", lineno)
    label = row[40]
    if not math.isnan(label) and label not in (0.0, 1.0):
        raise DataFileError(path, f"SepsisLabel must be 0 or 1, got {label:g}", lineno)


def _process(table: np.ndarray, label_window: str, path: Path):
    """(time values (72, 34) with NaN, static (5,), label, number of steps) or None if too short."""
    iculos = table[:, 39]
    if np.isnan(iculos).any() or (iculos < 1).any() or (iculos != np.round(iculos)).any():
        raise DataFileError(path, "ICULOS must be whole hours >= 1")
    keep = iculos <= HOURS
    kept = table[keep]
    if len(kept) == 0:
        return None
    steps = int(kept[:, 39].max())
    if steps <= 2:
        return None
    values = np.full((HOURS, N_TIME), np.nan)
    values[kept[:, 39].astype(int) - 1] = kept[:, :N_TIME]
    static = table[0, N_TIME : N_TIME + N_STATIC].copy()
    for j in (2, 3, 4):  # Unit1, Unit2, HospAdmTime: missing -> 0
        if math.isnan(static[j]):
            static[j] = 0.0
    source = kept if label_window == "72h" else table
    label = int(np.nanmax(source[:, 40])) if len(source) else 0
    return values, static, label, steps


_CACHE: dict[tuple, tuple] = {}


class PhysioNet2019(Dataset):
    """Sepsis prediction from the first 72 hours of an ICU stay (binary; report AUC).

    Items are ``(x, y)`` with ``x`` float32 ``(C, 72)`` and ``y`` int64 in {0, 1}. Channels:
    the 34 standardised measurements (missing -> 0), then (``observed="mask"``) 34 channels that
    are 1 where a value was measured, or (``"intensity"``) the cumulative count of measurements per
    channel (Kidger et al.'s observational intensity), then (``static=True``) the 5 standardised
    static values repeated over time. ``lengths`` holds the number of hours of each stay (<= 72).

    Looks for ``.psv`` files in ``root`` and its sub-folders ``training``, ``training_setA``,
    ``training_setB`` (also under ``root/physionet2019`` and ``root/sepsis``).
    """

    CANDIDATES = ("", "physionet2019", "sepsis", "challenge-2019/training")
    SUBDIRS = ("", "training", "training_setA", "training_setB")
    num_classes = 2

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        observed: str = "mask",
        static: bool = True,
        label_window: str = "72h",
        seed: int = 0,
    ) -> None:
        check_split(split)
        if observed not in ("mask", "intensity", "none"):
            raise ValueError(f"observed must be 'mask', 'intensity' or 'none', got {observed!r}")
        if label_window not in ("72h", "stay"):
            raise ValueError(f"label_window must be '72h' or 'stay', got {label_window!r}")
        files = self.files(root)
        if not files:
            raise missing_files(
                "PhysioNet2019",
                root,
                self.CANDIDATES,
                ["*.psv (in training_setA/, training_setB/)"],
                "Download training_setA.zip and training_setB.zip of the PhysioNet 2019 challenge "
                "and extract them there.",
            )
        key = (tuple(str(f) for f in files), label_window)
        if key not in _CACHE:
            records = [
                r for r in (_process(read_psv(f), label_window, f) for f in files) if r is not None
            ]
            if not records:
                raise DataFileError(root, "no stay has more than 2 hours of data")
            _CACHE[key] = (
                np.stack([r[0] for r in records]),
                np.stack([r[1] for r in records]),
                np.array([r[2] for r in records], dtype=np.int64),
                np.array([r[3] for r in records], dtype=np.int64),
            )
        values, statics, labels, lengths = _CACHE[key]
        parts = stratified_split(labels, (0.7, 0.15, 0.15), seed)
        train = parts[0]
        tv = values[train].reshape(-1, N_TIME)
        with warnings.catch_warnings():  # channels never measured in training: mean 0, std 1
            warnings.simplefilter("ignore", RuntimeWarning)
            t_mean = np.nanmean(tv, axis=0)
            t_std = np.nanstd(tv, axis=0)
        t_mean = np.where(np.isnan(t_mean), 0.0, t_mean)
        t_std = np.where(np.isnan(t_std), 1.0, t_std)
        s_mean = statics[train].mean(axis=0)
        s_std = statics[train].std(axis=0)
        idx = parts[("train", "val", "test").index(split)]
        v = (values[idx] - t_mean) / (t_std + 1e-5)  # (N, 72, 34)
        obs = ~np.isnan(v)
        chans = [np.where(obs, v, 0.0)]
        if observed == "mask":
            chans.append(obs.astype(np.float64))
        elif observed == "intensity":
            chans.append(np.cumsum(obs, axis=1).astype(np.float64))
        if static:
            s = (statics[idx] - s_mean) / (s_std + 1e-5)
            chans.append(np.repeat(s[:, None, :], HOURS, axis=1))
        x = np.concatenate(chans, axis=2).transpose(0, 2, 1)  # (N, C, 72)
        self.inputs = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        self.targets = torch.as_tensor(labels[idx], dtype=torch.int64)
        self.lengths = torch.as_tensor(lengths[idx], dtype=torch.int64)
        self.split = split

    @classmethod
    def files(cls, root: PathLike) -> list[Path]:
        """All ``.psv`` files found under the candidate folders (sorted, de-duplicated)."""
        root = Path(root).expanduser()
        found: set[Path] = set()
        for cand in cls.CANDIDATES:
            base = root / cand if cand else root
            for sub in cls.SUBDIRS:
                d = base / sub if sub else base
                if d.is_dir():
                    found.update(p.resolve() for p in d.glob("*.psv"))
        return sorted(found)

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        files = cls.files(root)
        return files[0].parent if files else None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]
