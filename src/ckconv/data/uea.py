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

from ckconv.data._common import (
    PathLike,
    check_rate,
    check_split,
    find_dir,
    first_existing,
    missing_files,
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
    if token in ("?", "NaN", "nan", ""):
        return float("nan")
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: cannot parse value {token!r} as a number") from None


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
        raise ValueError(f"{path}:{lineno}: cannot parse time stamp {token!r}") from None


def _stack_dims(dims: list[np.ndarray]) -> np.ndarray:
    length = max(len(d) for d in dims)
    out = np.full((len(dims), length), np.nan)
    for i, d in enumerate(dims):
        out[i, : len(d)] = d
    return out


_PAIR = re.compile(r"\(([^()]*)\)")


def _read_text(path: Path, kind: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text {kind} file ({err})") from None


def _check_cases(path: Path, in_data: bool, series: list, kind: str) -> None:
    if not in_data:
        raise ValueError(f"{path}: no @data section (truncated or not {kind} file)")
    if not series:
        raise ValueError(f"{path}: @data section is empty")


def _check_label(label: str, class_names: list[str], path: Path, lineno: int) -> None:
    if label not in class_names:
        raise ValueError(
            f"{path}:{lineno}: label {label!r} is not one of the declared classes {class_names}"
        )


def _check_dims(n: int, first: int | None, path: Path, lineno: int) -> None:
    if first is not None and n != first:
        raise ValueError(f"{path}:{lineno}: case has {n} dimensions, earlier cases {first}")


def _ts_class_labels(value: str, path: Path, lineno: int) -> list[str]:
    """The labels of a ``@classLabel true <labels>`` header line."""
    parts = value.split()
    if not parts or parts[0].lower() not in ("true", "false"):
        raise ValueError(f"{path}:{lineno}: @classLabel must be 'true <labels>' or 'false'")
    if parts[0].lower() == "false":
        raise ValueError(f"{path}:{lineno}: @classLabel false: unlabelled files are not supported")
    if len(parts) < 2:
        raise ValueError(f"{path}:{lineno}: @classLabel true needs the list of labels")
    return parts[1:]


def _ts_header(line: str, path: Path, lineno: int, meta: dict[str, str], labels: list[str]) -> bool:
    """Read one ``@tag value`` line into ``meta`` (``@classLabel``: into ``labels``); True at
    ``@data``."""
    if not line.startswith("@"):
        raise ValueError(f"{path}:{lineno}: expected an @tag before @data, got {line[:40]!r}")
    tag, _, value = line[1:].partition(" ")
    tag = tag.lower()
    if tag == "data":
        if not labels:
            raise ValueError(
                f"{path}: header has no @classLabel line (only classification files are supported)"
            )
        return True
    if tag == "classlabel":
        labels[:] = _ts_class_labels(value, path, lineno)
    else:
        meta[tag] = value.strip()
    return False


def _ts_timed_dim(text: str, path: Path, lineno: int) -> tuple[np.ndarray, np.ndarray]:
    """The times and values of one dimension written as ``(time,value),(time,value),...``."""
    pairs = _PAIR.findall(text)
    if not pairs:
        raise ValueError(f"{path}:{lineno}: expected (time,value) pairs, got {text[:40]!r}")
    tv = [p.rsplit(",", 1) for p in pairs]
    if any(len(p) != 2 for p in tv):
        raise ValueError(f"{path}:{lineno}: malformed (time,value) pair in {text[:40]!r}")
    times = np.array([_time(t, path, lineno) for t, _ in tv])
    return times, np.array([_float(v, path, lineno) for _, v in tv])


def _ts_case(line: str, path: Path, lineno: int, class_names: list[str], timestamps: bool):
    """One data line: its dimensions, its sample times (or None) and its label."""
    if timestamps:
        # time stamps may contain ':' (dates): split dims on ':' that follow a ')'.
        body, _, label = line.rpartition(":")
        dims_txt = re.split(r"(?<=\)):", body)
    else:
        *dims_txt, label = line.split(":")
    label = label.strip()
    if not dims_txt:
        raise ValueError(f"{path}:{lineno}: a case needs at least one dimension and a label")
    _check_label(label, class_names, path, lineno)
    if not timestamps:
        dims = [np.array([_float(v, path, lineno) for v in d.split(",")]) for d in dims_txt]
        return dims, None, label
    timed = [_ts_timed_dim(d, path, lineno) for d in dims_txt]
    return [values for _, values in timed], timed[-1][0], label


def read_ts(path: PathLike) -> TimeSeriesData:
    """Parse a UEA/UCR ``.ts`` file (see the module docstring for the format)."""
    path = Path(path)
    text = _read_text(path, ".ts")
    meta: dict[str, str] = {}
    class_names: list[str] = []
    series: list[np.ndarray] = []
    labels: list[str] = []
    times: list[np.ndarray] = []
    in_data = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or (not in_data and line.startswith(("#", "%"))):
            continue
        if not in_data:
            in_data = _ts_header(line, path, lineno, meta, class_names)
            continue
        timestamps = meta.get("timestamps", "false").lower() == "true"
        dims, case_times, label = _ts_case(line, path, lineno, class_names, timestamps)
        declared = meta.get("dimensions")
        if not series and declared is not None and int(declared) != len(dims):
            raise ValueError(
                f"{path}:{lineno}: @dimensions {meta['dimensions']} but the case has {len(dims)}"
            )
        _check_dims(len(dims), series[0].shape[0] if series else None, path, lineno)
        series.append(_stack_dims(dims))
        labels.append(label)
        if timestamps:
            times.append(case_times)
    _check_cases(path, in_data, series, "a .ts")
    return TimeSeriesData(series, labels, class_names, times if times else None, meta)


def _split_arff_row(line: str) -> list[str]:
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
        raise ValueError("unterminated quote")
    out.append("".join(buf))
    return out


@dataclass
class _ArffHeader:
    """What an ``.arff`` header declares, read line by line."""

    meta: dict[str, str] = field(default_factory=dict)
    class_names: list[str] | None = None
    relational: bool = False
    inside_relational: bool = False
    n_numeric: int = 0

    def attribute(self, line: str, path: Path, lineno: int) -> None:
        _, _, typ = line.split(None, 1)[1].strip().partition(" ")
        typ = typ.strip()
        if typ.lower() == "relational":
            self.relational = self.inside_relational = True
        elif typ.startswith("{"):
            if self.inside_relational:
                raise ValueError(f"{path}:{lineno}: nominal attribute inside the relational block")
            if not typ.endswith("}"):
                raise ValueError(f"{path}:{lineno}: unterminated class list {typ!r}")
            self.class_names = [c.strip().strip("'\"") for c in typ[1:-1].split(",")]
        elif typ.lower() in ("numeric", "real", "integer") and not self.inside_relational:
            self.n_numeric += 1

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
                raise ValueError(f"{path}: no nominal class attribute before @data")
            return True
        else:
            raise ValueError(f"{path}:{lineno}: unexpected header line {line[:40]!r}")
        return False


def _arff_case(fields: list[str], header: _ArffHeader, path: Path, lineno: int) -> np.ndarray:
    """The ``(dims, length)`` array of one data row (without its label)."""
    if not header.relational:
        values = fields[:-1]
        if header.n_numeric and len(values) != header.n_numeric:
            raise ValueError(
                f"{path}:{lineno}: row has {len(values)} values, header declares {header.n_numeric}"
            )
        return np.array([[_float(v, path, lineno) for v in values]])
    if len(fields) != 2:
        raise ValueError(
            f"{path}:{lineno}: expected 'dims',label in a relational row, got {len(fields)} fields"
        )
    dims_txt = fields[0].replace("\\n", "\n").split("\n")
    dims = [
        np.array([_float(v, path, lineno) for v in d.split(",")]) for d in dims_txt if d.strip()
    ]
    return _stack_dims(dims)


def read_arff(path: PathLike) -> TimeSeriesData:
    """Parse a UEA/UCR ``.arff`` file, univariate or multivariate (relational attribute)."""
    path = Path(path)
    text = _read_text(path, ".arff")
    header = _ArffHeader()
    in_data = False
    series: list[np.ndarray] = []
    labels: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            in_data = header.line(line, path, lineno)
            continue
        try:
            fields = _split_arff_row(line)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: unterminated quote in data row") from None
        label = fields[-1].strip()
        _check_label(label, header.class_names, path, lineno)
        case = _arff_case(fields, header, path, lineno)
        _check_dims(case.shape[0], series[0].shape[0] if series else None, path, lineno)
        series.append(case)
        labels.append(label)
    _check_cases(path, in_data, series, "an .arff")
    return TimeSeriesData(series, labels, header.class_names, None, header.meta)


def read_uea(path: PathLike) -> TimeSeriesData:
    """Read a ``.ts`` or ``.arff`` file, chosen by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".ts":
        return read_ts(path)
    if path.suffix.lower() == ".arff":
        return read_arff(path)
    raise ValueError(f"{path}: unknown UEA format (expected .ts or .arff)")


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
        normalize: standardise each channel with mean / std of the training split (NaN ignored).
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
        seed: int = 0,
    ) -> None:
        check_split(split)
        if pad not in ("none", "last"):
            raise ValueError(f"pad must be 'none' or 'last', got {pad!r}")
        check_rate("val_fraction", val_fraction)
        self.name = name
        self.split = split
        train_path, test_path = self.locate(name, root, file_format)
        train = read_uea(train_path)
        test = read_uea(test_path)
        if list(train.class_names) != list(test.class_names):
            raise ValueError(
                f"{train_path} and {test_path} declare different classes: "
                f"{train.class_names} vs {test.class_names}"
            )
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

            train_series = [torch.as_tensor(series[i]) for i in parts[0]]
            mean, std = channel_stats(train_series)
            self.mean, self.std = mean, std
            self.inputs = [(x - mean[:, None]) / (std[:, None] + 1e-5) for x in self.inputs]
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
