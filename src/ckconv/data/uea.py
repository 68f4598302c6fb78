"""UEA / UCR time-series archive: ``.ts`` and ``.arff`` readers and datasets.

``.ts``: ``#`` comments, ``@`` header tags (``@problemName``, ``@timeStamps``, ``@univariate``,
``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true <labels>``, ``@data``), then
one case per line: dimensions separated by ``:``, values by ``,``, the class label last; ``?`` is a
missing value; with ``@timeStamps true`` values are ``(time,value)`` pairs.

``.arff``: ``%`` comments, ``@attribute`` lines (a ``relational`` attribute holds the dimensions of
a multivariate case as one quoted string with dimensions separated by ``\\n``), the nominal class
attribute last, then ``@data``.

Real data offline: the ``aeon`` wheel ships several archive problems
(``aeon/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts``: JapaneseVowels (variable lengths, 12
channels), BasicMotions, GunPoint, ...). :func:`aeon_data_dir` finds them with
``importlib.util.find_spec`` without importing aeon (which has heavy dependencies).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv._checks import choice
from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_finite,
    check_rate,
    check_split,
    find_dir,
    first_existing,
    missing_files,
    read_text,
    stratified_split,
)

__all__ = [
    "CharacterTrajectories",
    "TimeSeriesData",
    "UEADataset",
    "aeon_data_dir",
    "aeon_problems",
    "locate_problem",
    "read_arff",
    "read_ts",
    "read_uea",
]


#: tokens read as a missing value (NaN)
MISSING = ("?", "NaN", "nan", "")
#: what a dataset does with ``inf`` values and missing values (the ``nonfinite`` option)
NONFINITE = ("error", "zero", "drop")
NONFINITE_HINT = "; fix the file or pass nonfinite='zero' or 'drop' (task.nonfinite in a config)"


@dataclass
class TimeSeriesData:
    """What a reader returns.

    ``series``: one float64 array ``(C, L_i)`` per case (dimensions of unequal length inside a
    case are padded with NaN); ``labels``: the class label strings; ``class_names``: the declared
    classes in header order (the class index of a label is its position here); ``times``: one
    ``(L_i,)`` array per case when the file has time stamps, else None.
    """

    series: list[np.ndarray]
    labels: list[str]
    class_names: list[str]
    times: list[np.ndarray] | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def targets(self, class_names: list[str] | None = None) -> np.ndarray:
        names = class_names if class_names is not None else self.class_names
        index = {c: i for i, c in enumerate(names)}
        try:
            return np.array([index[lab] for lab in self.labels], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"label {err} is not one of the declared classes {names}") from None


def _float(token: str, path: Path, lineno: int) -> float:
    token = token.strip()
    if token in MISSING:
        return float("nan")
    try:
        return float(token)
    except ValueError:
        raise DataFileError(path, f"cannot parse value {token!r} as a number", lineno) from None


def _values(text: str, path: Path, lineno: int) -> np.ndarray:
    return np.array([_float(v, path, lineno) for v in text.split(",")])


def _time(token: str, path: Path, lineno: int) -> float:
    token = token.strip()
    try:
        return float(token)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(token)
        if stamp.tzinfo is None:  # read naive stamps as UTC so results do not depend on TZ
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    except ValueError:
        raise DataFileError(path, f"cannot parse time stamp {token!r}", lineno) from None


def _stack_dims(dims: list[np.ndarray]) -> np.ndarray:
    length = max(len(d) for d in dims)
    out = np.full((len(dims), length), np.nan)
    for i, d in enumerate(dims):
        out[i, : len(d)] = d
    return out


_PAIR = re.compile(r"\(([^()]*)\)")


@dataclass
class _Declared:
    """What a header promises about every case, with the line that says it (for messages)."""

    dimensions: tuple[int, int] | None = None  # (value, line)
    univariate: tuple[bool, int] | None = None
    equal_length: tuple[bool, int] | None = None
    series_length: tuple[int, int] | None = None
    missing: tuple[bool, int] | None = None


def _check_declared(dims: list[np.ndarray], declared: _Declared, path: Path, lineno: int) -> None:
    """One case against its file's header: dimensions, lengths, missing values."""
    n = len(dims)
    if declared.dimensions and n != declared.dimensions[0]:
        value, line = declared.dimensions
        raise DataFileError(
            path, f"case has {n} dimensions but @dimensions {value} (line {line})", lineno
        )
    if declared.univariate and declared.univariate[0] and n != 1:
        raise DataFileError(
            path,
            f"case has {n} dimensions but @univariate true (line {declared.univariate[1]})",
            lineno,
        )
    lengths = sorted({len(d) for d in dims})
    if declared.equal_length and declared.equal_length[0] and len(lengths) > 1:
        raise DataFileError(
            path,
            f"the case's dimensions have lengths {lengths} but @equalLength true "
            f"(line {declared.equal_length[1]})",
            lineno,
        )
    equal = declared.equal_length is None or declared.equal_length[0]
    if declared.series_length and equal and lengths != [declared.series_length[0]]:
        value, line = declared.series_length
        raise DataFileError(
            path, f"case has length {max(lengths)} but @seriesLength {value} (line {line})", lineno
        )
    if declared.missing and not declared.missing[0] and any(np.isnan(d).any() for d in dims):
        raise DataFileError(
            path,
            f"case has a missing value but @missing false (line {declared.missing[1]})",
            lineno,
        )


@dataclass
class _Cases:
    """The cases read so far and the checks that relate a case to the earlier ones."""

    path: Path
    allow_inf: bool
    series: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)
    first_line: int = 0

    def add(self, dims: list[np.ndarray], label: str, lineno: int, equal_length: bool) -> None:
        case = _stack_dims(dims)
        if self.series:
            first = self.series[0]
            if case.shape[0] != first.shape[0]:
                raise DataFileError(
                    self.path,
                    f"case has {case.shape[0]} dimensions, the first case (line "
                    f"{self.first_line}) {first.shape[0]}",
                    lineno,
                )
            if equal_length and case.shape[1] != first.shape[1]:
                raise DataFileError(
                    self.path,
                    f"case has length {case.shape[1]}, the first case (line {self.first_line}) "
                    f"{first.shape[1]}, but the header declares equal lengths",
                    lineno,
                )
        else:
            self.first_line = lineno
        if not self.allow_inf:
            check_finite(case, self.path, "case", lineno, NONFINITE_HINT)
        self.series.append(case)
        self.labels.append(label)

    def result(self, in_data: bool, kind: str, class_names, meta) -> TimeSeriesData:
        if not in_data:
            raise DataFileError(self.path, f"no @data section (truncated or not {kind} file)")
        if not self.series:
            raise DataFileError(self.path, "@data section is empty")
        times = self.times if self.times else None
        return TimeSeriesData(self.series, self.labels, class_names, times, meta)


def _check_label(label: str, class_names: list[str], path: Path, lineno: int) -> None:
    if label not in class_names:
        raise DataFileError(
            path, f"label {label!r} is not one of the declared classes {class_names}", lineno
        )


def _ts_class_labels(value: str, path: Path, lineno: int) -> list[str]:
    """The labels of a ``@classLabel true <labels>`` header line."""
    parts = value.split()
    if not parts or parts[0].lower() not in ("true", "false"):
        raise DataFileError(path, "@classLabel must be 'true <labels>' or 'false'", lineno)
    if parts[0].lower() == "false":
        raise DataFileError(path, "@classLabel false: unlabelled files are not supported", lineno)
    if len(parts) < 2:
        raise DataFileError(path, "@classLabel true needs the list of labels", lineno)
    return parts[1:]


_TS_FLAGS = {
    "timestamps": "timestamps",
    "univariate": "univariate",
    "equallength": "equal_length",
    "missing": "missing",
}
_TS_NUMBERS = {"dimensions": "dimensions", "serieslength": "series_length"}


@dataclass
class _TsHeader:
    """A ``.ts`` header, read line by line."""

    meta: dict[str, str] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    declared: _Declared = field(default_factory=_Declared)
    timestamps: bool = False

    def line(self, line: str, path: Path, lineno: int) -> bool:
        """Read one ``@tag value`` line; True at ``@data``."""
        if not line.startswith("@"):
            raise DataFileError(path, f"expected an @tag before @data, got {line[:40]!r}", lineno)
        tag, _, value = line[1:].partition(" ")
        tag, value = tag.lower(), value.strip()
        if tag == "data":
            if not self.class_names:
                raise DataFileError(
                    path, "header has no @classLabel line (only classification files are supported)"
                )
            return True
        if tag == "classlabel":
            self.class_names = _ts_class_labels(value, path, lineno)
            return False
        self.meta[tag] = value
        if tag in _TS_FLAGS:
            if value.lower() not in ("true", "false"):
                raise DataFileError(
                    path, f"@{line[1:].split()[0]} must be true or false, got {value!r}", lineno
                )
            flag = value.lower() == "true"
            setattr(self.declared, _TS_FLAGS[tag], (flag, lineno))
            self.timestamps = flag if tag == "timestamps" else self.timestamps
        elif tag in _TS_NUMBERS:
            if not value.isdigit() or int(value) < 1:
                raise DataFileError(
                    path,
                    f"@{line[1:].split()[0]} must be a positive whole number, got {value!r}",
                    lineno,
                )
            setattr(self.declared, _TS_NUMBERS[tag], (int(value), lineno))
        return False


def _ts_timed_dim(text: str, path: Path, lineno: int) -> tuple[np.ndarray, np.ndarray]:
    """The times and values of one dimension written as ``(time,value),(time,value),...``."""
    pairs = _PAIR.findall(text)
    if not pairs:
        raise DataFileError(path, f"expected (time,value) pairs, got {text[:40]!r}", lineno)
    tv = [p.rsplit(",", 1) for p in pairs]
    if any(len(p) != 2 for p in tv):
        raise DataFileError(path, f"malformed (time,value) pair in {text[:40]!r}", lineno)
    times = np.array([_time(t, path, lineno) for t, _ in tv])
    return times, np.array([_float(v, path, lineno) for _, v in tv])


def _ts_case(line: str, path: Path, lineno: int, class_names: list[str], timestamps: bool):
    """One data line: its dimensions, its sample times (or None) and its label."""
    if timestamps:
        # time stamps may contain ':' (dates): split dims on ':' that follow a ')'.
        body, _, label = line.rpartition(":")
        dims_txt = re.split(r"(?<=\)):", body) if body else []
    else:
        *dims_txt, label = line.split(":")
    label = label.strip()
    if not dims_txt:
        raise DataFileError(path, "a case needs at least one dimension and a label", lineno)
    _check_label(label, class_names, path, lineno)
    if not timestamps:
        return [_values(d, path, lineno) for d in dims_txt], None, label
    timed = [_ts_timed_dim(d, path, lineno) for d in dims_txt]
    return [values for _, values in timed], timed[-1][0], label


def read_ts(path: PathLike, *, allow_inf: bool = False) -> TimeSeriesData:
    """Parse a UEA/UCR ``.ts`` file (see the module docstring for the format).

    Every case is checked against the header (``@dimensions``, ``@univariate``,
    ``@equalLength``, ``@seriesLength``, ``@missing``, ``@classLabel``) and the first case;
    ``inf`` values are refused unless ``allow_inf``. Problems raise
    :class:`~ckconv.data.DataFileError` naming the file and line.
    """
    path = Path(path)
    header = _TsHeader()
    cases = _Cases(path, allow_inf)
    in_data = False
    for lineno, raw in enumerate(read_text(path, ".ts").splitlines(), start=1):
        line = raw.strip()
        if not line or (not in_data and line.startswith(("#", "%"))):
            continue
        if not in_data:
            in_data = header.line(line, path, lineno)
            continue
        dims, times, label = _ts_case(line, path, lineno, header.class_names, header.timestamps)
        _check_declared(dims, header.declared, path, lineno)
        equal = bool(header.declared.equal_length and header.declared.equal_length[0])
        cases.add(dims, label, lineno, equal)
        if times is not None:
            cases.times.append(times)
    return cases.result(in_data, "a .ts", header.class_names, header.meta)


def _split_arff_row(line: str, path: Path, lineno: int) -> list[str]:
    """Split a data row on commas outside quotes; quotes are removed."""
    out, buf, quote = [], [], None
    for ch in line:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise DataFileError(path, "unterminated quote in data row", lineno)
    out.append("".join(buf))
    return out


@dataclass
class _ArffHeader:
    """What an ``.arff`` header declares, read line by line."""

    meta: dict[str, str] = field(default_factory=dict)
    class_names: list[str] | None = None
    relational: bool = False
    inside_relational: bool = False
    n_numeric: int = 0  # numeric attributes outside (univariate) or inside (relational) the block
    numeric_line: int = 0

    def attribute(self, line: str, path: Path, lineno: int) -> None:
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise DataFileError(
                path, f"@attribute needs a name and a type, got {line[:40]!r}", lineno
            )
        typ = parts[2].strip()
        if typ.lower() == "relational":
            self.relational = self.inside_relational = True
        elif typ.startswith("{"):
            if self.inside_relational:
                raise DataFileError(path, "nominal attribute inside the relational block", lineno)
            if not typ.endswith("}"):
                raise DataFileError(path, f"unterminated class list {typ!r}", lineno)
            self.class_names = [c.strip().strip("'\"") for c in typ[1:-1].split(",")]
        elif typ.lower() in ("numeric", "real", "integer"):
            self.n_numeric += 1
            self.numeric_line = self.numeric_line or lineno
        else:
            raise DataFileError(
                path, f"attribute type {typ!r} is not numeric, relational or a class list", lineno
            )

    def line(self, line: str, path: Path, lineno: int) -> bool:
        """Read one header line; True at ``@data``."""
        low = line.lower()
        if low.startswith("@relation"):
            self.meta["relation"] = line.split(None, 1)[1].strip("'\"") if " " in line else ""
        elif low.startswith("@attribute"):
            self.attribute(line, path, lineno)
        elif low.startswith("@end"):
            self.inside_relational = False
        elif low.startswith("@data"):
            if self.class_names is None:
                raise DataFileError(path, "no nominal class attribute before @data", lineno)
            return True
        else:
            raise DataFileError(path, f"unexpected header line {line[:40]!r}", lineno)
        return False


def _arff_case(fields: list[str], header: _ArffHeader, path: Path, lineno: int) -> list[np.ndarray]:
    """The dimensions of one data row (without its label)."""
    if not header.relational:
        values = fields[:-1]
        if header.n_numeric and len(values) != header.n_numeric:
            raise DataFileError(
                path, f"row has {len(values)} values, header declares {header.n_numeric}", lineno
            )
        return [np.array([_float(v, path, lineno) for v in values])]
    if len(fields) != 2:
        raise DataFileError(
            path, f"expected 'dims',label in a relational row, got {len(fields)} fields", lineno
        )
    dims_txt = fields[0].replace("\\n", "\n").split("\n")
    dims = [_values(d, path, lineno) for d in dims_txt if d.strip()]
    if not dims:
        raise DataFileError(path, "relational row without values", lineno)
    for k, d in enumerate(dims):
        if header.n_numeric and len(d) != header.n_numeric:
            raise DataFileError(
                path,
                f"dimension {k + 1} has {len(d)} values, the relational attribute declares "
                f"{header.n_numeric} (line {header.numeric_line})",
                lineno,
            )
    return dims


def read_arff(path: PathLike, *, allow_inf: bool = False) -> TimeSeriesData:
    """Parse a UEA/UCR ``.arff`` file, univariate or multivariate (relational attribute).

    Rows are checked against the declared attributes and classes and the first row; ``inf``
    values are refused unless ``allow_inf``. Problems raise
    :class:`~ckconv.data.DataFileError` naming the file and line.
    """
    path = Path(path)
    header = _ArffHeader()
    cases = _Cases(path, allow_inf)
    in_data = False
    for lineno, raw in enumerate(read_text(path, ".arff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            in_data = header.line(line, path, lineno)
            continue
        fields = _split_arff_row(line, path, lineno)
        label = fields[-1].strip()
        _check_label(label, header.class_names, path, lineno)
        cases.add(_arff_case(fields, header, path, lineno), label, lineno, equal_length=False)
    return cases.result(in_data, "an .arff", header.class_names, header.meta)


def read_uea(path: PathLike, *, allow_inf: bool = False) -> TimeSeriesData:
    """Read a ``.ts`` or ``.arff`` file, chosen by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".ts":
        return read_ts(path, allow_inf=allow_inf)
    if path.suffix.lower() == ".arff":
        return read_arff(path, allow_inf=allow_inf)
    raise DataFileError(path, "unknown UEA format (expected .ts or .arff)")


def aeon_data_dir() -> Path | None:
    """``<site-packages>/aeon/datasets/data`` when the aeon wheel is installed (aeon is not
    imported), else None."""
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations and spec.origin:
        locations = [str(Path(spec.origin).parent)]
    for loc in locations:
        path = Path(loc) / "datasets" / "data"
        if path.is_dir():
            return path
    return None


def aeon_problems() -> list[str]:
    """Names of the classification problems with ``_TRAIN.ts`` and ``_TEST.ts`` inside aeon."""
    base = aeon_data_dir()
    if base is None:
        return []
    names = []
    for d in sorted(base.iterdir()):
        train, test = d / f"{d.name}_TRAIN.ts", d / f"{d.name}_TEST.ts"
        if train.exists() and test.exists() and _declares_classes(train):
            names.append(d.name)
    return names


def _declares_classes(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
            if low.startswith("@data"):
                return False
    return False


def _read_pair(
    train_path: Path, test_path: Path, nonfinite: str
) -> tuple[TimeSeriesData, TimeSeriesData]:
    """A problem's TRAIN and TEST files, checked against each other; with ``nonfinite="drop"``
    the cases holding an ``inf`` or a missing value are left out."""
    train = read_uea(train_path, allow_inf=nonfinite != "error")
    test = read_uea(test_path, allow_inf=nonfinite != "error")
    if list(train.class_names) != list(test.class_names):
        raise DataFileError(
            test_path,
            f"declares the classes {test.class_names}, but {train_path} declares "
            f"{train.class_names}",
        )
    if train.series[0].shape[0] != test.series[0].shape[0]:
        raise DataFileError(
            test_path,
            f"cases have {test.series[0].shape[0]} channels, but those of {train_path} have "
            f"{train.series[0].shape[0]}",
        )
    if nonfinite == "drop":
        train, test = _drop_nonfinite(train, train_path), _drop_nonfinite(test, test_path)
    return train, test


def _drop_nonfinite(data: TimeSeriesData, path: Path) -> TimeSeriesData:
    """``data`` without the cases that hold an ``inf`` or a missing value (the NaN padding of
    dimensions shorter than their case's longest one does not count)."""
    keep = [i for i, s in enumerate(data.series) if _complete(s)]
    if not keep:
        raise DataFileError(path, "every case holds a missing or infinite value (nonfinite='drop')")
    pick = lambda items: [items[i] for i in keep]  # noqa: E731
    times = pick(data.times) if data.times is not None else None
    return TimeSeriesData(pick(data.series), pick(data.labels), data.class_names, times, data.meta)


def _complete(case: np.ndarray) -> bool:
    """No ``inf`` and no missing value before the end of each dimension's own values."""
    if np.isinf(case).any():
        return False
    for row in case:
        present = np.flatnonzero(~np.isnan(row))
        if present.size == 0 or present[-1] + 1 != present.size:
            return False
    return True


def _pad_last(x: np.ndarray, length: int) -> np.ndarray:
    out = np.empty((x.shape[0], length))
    out[:, : x.shape[1]] = x
    out[:, x.shape[1] :] = x[:, -1:]
    return out


class UEADataset(Dataset):
    """A UEA/UCR classification problem from its ``_TRAIN`` / ``_TEST`` files.

    Args:
        name: problem name, e.g. ``"CharacterTrajectories"``, ``"JapaneseVowels"``.
        root: directory to search (``root/<name>``, ``root/Multivariate_ts/<name>``,
            ``root/Multivariate_arff/<name>``, ``root/Univariate_ts/<name>``, ``root``); None means
            the copy inside the installed ``aeon`` wheel.
        split: ``"train"``, ``"val"`` or ``"test"``.
        resplit: False keeps the archive's test set and holds out ``val_fraction`` of the
            training file (stratified) as val; True pools both files and splits them 70/15/15,
            stratified (Kidger et al. 2020, used for CharacterTrajectories in CKConv).
        pad: ``"none"`` returns variable-length ``(C, L_i)`` items (batch with
            :func:`~ckconv.data.transforms.pad_collate`); ``"last"`` pads every case to the
            longest one with its last value (Kidger et al.).
        normalize: standardise each channel with mean / std of the training split (missing
            values ignored).
        nonfinite: what to do with ``inf`` values and missing values (``?``):
            ``"error"`` refuses an ``inf`` (:class:`~ckconv.data.DataFileError` naming the file
            and line; missing values stay NaN); ``"zero"`` sets both to 0 after
            standardisation, i.e. to the channel's training mean (the statistics skip them);
            ``"drop"`` leaves out every case that holds either. Set it with
            ``task.nonfinite=...``.
        file_format: ``"ts"``, ``"arff"`` or None (prefer ``.ts``).
        seed: seed of the splits.

    Items are ``(x, y)``: ``x`` float32 ``(C, L)``, ``y`` int64. ``lengths`` holds the original
    lengths, ``class_names`` the label strings.
    """

    SUBDIRS = (
        "{name}",
        "Multivariate_ts/{name}",
        "Multivariate_arff/{name}",
        "Univariate_ts/{name}",
        "Univariate_arff/{name}",
        "",
    )

    def __init__(
        self,
        name: str,
        root: PathLike | None = None,
        split: str = "train",
        *,
        resplit: bool = False,
        val_fraction: float = 0.15,
        fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
        pad: str = "none",
        normalize: bool = True,
        file_format: str | None = None,
        nonfinite: str = "error",
        seed: int = 0,
    ) -> None:
        check_split(split)
        choice("nonfinite", nonfinite, NONFINITE)
        if pad not in ("none", "last"):
            raise ValueError(f"pad must be 'none' or 'last', got {pad!r}")
        check_rate("val_fraction", val_fraction)
        self.name = name
        self.split = split
        train_path, test_path = self.locate(name, root, file_format)
        train, test = _read_pair(train_path, test_path, nonfinite)
        self.class_names = list(train.class_names)
        series = train.series + test.series
        targets = np.concatenate([train.targets(), test.targets(self.class_names)])
        n_train = len(train.series)
        if resplit:
            parts = stratified_split(targets, fractions, seed)
        else:
            if val_fraction > 0:
                tr, va = stratified_split(targets[:n_train], (1 - val_fraction, val_fraction), seed)
            else:
                tr, va = np.arange(n_train), np.zeros(0, dtype=int)
            parts = [tr, va, np.arange(n_train, len(series))]
        idx = parts[("train", "val", "test").index(split)]
        if len(idx) == 0:
            raise ValueError(f"{name}: split {split!r} is empty (val_fraction={val_fraction})")
        lengths = np.array([s.shape[1] for s in series])
        if pad == "last":
            longest = int(lengths.max())
            series = [_pad_last(s, longest) for s in series]
        self.lengths = torch.as_tensor(lengths[idx], dtype=torch.int64)
        self.inputs = [torch.as_tensor(series[i], dtype=torch.float32) for i in idx]
        self.targets = torch.as_tensor(targets[idx], dtype=torch.int64)
        self.num_channels = series[0].shape[0]
        self.num_classes = len(self.class_names)
        self.max_length = int(lengths.max())
        self.mean = self.std = None
        if normalize:
            from ckconv.data.transforms import channel_stats

            # missing and infinite values take no part in the statistics
            train_series = [torch.as_tensor(series[i]) for i in parts[0]]
            train_series = [torch.where(torch.isinf(x), torch.nan, x) for x in train_series]
            mean, std = channel_stats(train_series)
            self.mean, self.std = mean, std
            self.inputs = [(x - mean[:, None]) / (std[:, None] + 1e-5) for x in self.inputs]
        if nonfinite == "zero":
            self.inputs = [
                torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) for x in self.inputs
            ]
        self.paths = (train_path, test_path)
        #: how the validation split was made (it has no file of its own; "" for other splits)
        self.held_out = ""
        if split == "val":
            source = train_path.name if not resplit else f"{train_path.name} + {test_path.name}"
            share = val_fraction if not resplit else fractions[1]
            self.held_out = f"{share:g} of {source} (stratified, seed {seed})"

    @classmethod
    def locate(
        cls, name: str, root: PathLike | None, file_format: str | None = None
    ) -> tuple[Path, Path]:
        """Paths of the ``_TRAIN`` and ``_TEST`` files (``FileNotFoundError`` when absent)."""
        exts = {"ts": (".ts",), "arff": (".arff",), None: (".ts", ".arff")}
        if file_format not in exts:
            raise ValueError(f"file_format must be 'ts', 'arff' or None, got {file_format!r}")
        required = [
            "|".join(f"{name}_{part}{e}" for e in exts[file_format]) for part in ("TRAIN", "TEST")
        ]
        if root is None:
            base = aeon_data_dir()
            if base is None:
                raise FileNotFoundError(
                    f"{name}: root=None reads aeon's bundled copy, but the aeon wheel is not installed "
                    "(pip install --no-deps aeon); or pass root= the folder with the UEA files"
                )
            root = base
            candidates = [name]
        else:
            candidates = [s.format(name=name) for s in cls.SUBDIRS]
        directory = find_dir(root, candidates, required)
        if directory is None:
            raise missing_files(
                name,
                root,
                candidates,
                required,
                "Download the problem from the UEA & UCR archive (timeseriesclassification.com) "
                "and extract it there.",
            )
        return first_existing(directory, required[0]), first_existing(directory, required[1])

    @classmethod
    def find(cls, name: str, root: PathLike | None) -> Path | None:
        try:
            return cls.locate(name, root)[0].parent
        except FileNotFoundError:
            return None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.inputs[index], self.targets[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"channels={self.num_channels}, classes={self.num_classes})"
        )


_PART = re.compile(r"^(?P<name>.+)_(?P<part>TRAIN|TEST)\.(?P<ext>ts|arff)$", re.IGNORECASE)


def locate_problem(path: PathLike, argument: str = "path") -> tuple[str, Path, str]:
    """The problem name, its folder and file format (``"ts"`` / ``"arff"``) of a UEA/UCR problem
    given as its folder or as one of its ``<Name>_TRAIN`` / ``<Name>_TEST`` files.

    A folder holding several problems must be named after one of them. ``argument`` names the
    user's argument in error messages.
    """
    path = Path(path).expanduser()
    if path.is_file():
        match = _PART.match(path.name)
        if match is None:
            raise ValueError(
                f"{argument}: {str(path)!r} is not a <Name>_TRAIN.ts/.arff or <Name>_TEST.ts/.arff "
                "file of a UEA/UCR problem"
            )
        return match["name"], path.parent, match["ext"].lower()
    if not path.is_dir():
        raise FileNotFoundError(f"{argument}: no file or folder {str(path)!r}")
    problems: dict[str, str] = {}
    for f in sorted(path.iterdir()):
        match = _PART.match(f.name)
        if match and match["part"].upper() == "TRAIN":
            problems.setdefault(match["name"], match["ext"].lower())
    if path.name in problems:
        return path.name, path, problems[path.name]
    if len(problems) == 1:
        ((name, ext),) = problems.items()
        return name, path, ext
    if not problems:
        raise FileNotFoundError(
            f"{argument}: {str(path)!r} holds no <Name>_TRAIN.ts or <Name>_TRAIN.arff file"
        )
    raise ValueError(
        f"{argument}: {str(path)!r} holds several problems ({', '.join(problems)}); give the "
        "TRAIN file of one"
    )


class CharacterTrajectories(UEADataset):
    """CharacterTrajectories (3 channels, lengths up to 182, 20 classes) the way CKConv uses it:
    train and test pooled and split 70/15/15 (stratified), padded with the last value to 182
    steps, normalised with training statistics. Wrap with
    :class:`~ckconv.data.transforms.DropSamples` for the 30/50/70% drop experiments and use
    :func:`~ckconv.data.transforms.subsample` for the sampling-rate experiments."""

    def __init__(self, root: PathLike, split: str = "train", **kwargs) -> None:
        kwargs.setdefault("resplit", True)
        kwargs.setdefault("pad", "last")
        super().__init__("CharacterTrajectories", root, split, **kwargs)
