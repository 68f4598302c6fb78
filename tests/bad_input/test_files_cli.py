"""Malformed data files, command lines and checkpoints (issue #15, files / CLI side).

Every file is fabricated in its real format in ``tmp_path`` with one defect. Each case checks
the error's type, that the message names the user's file (or argument) and, for text files, the
1-based line of the first problem, both in the message and in ``DataFileError.line``. The
command-line cases run ``ckconv.app.cli.main`` in-process and check exit code 2, one line on
stderr and no traceback.
"""

from __future__ import annotations

import gzip
import pickle
import re
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from ckconv._checks import InputError
from ckconv.data import DataFileError, DownloadError
from ckconv.data.download import ChecksumError, UnsafeArchiveError, download_url, extract_archive
from ckconv.data.images import CIFAR10, CIFAR100, MNIST, read_cifar_batch, read_idx
from ckconv.data.lra import read_listops_tsv, read_pathfinder_metadata
from ckconv.data.modelnet import read_off, read_resampled
from ckconv.data.physionet import PSV_COLUMNS, read_psv
from ckconv.data.ptb import read_ptb_chars
from ckconv.data.speech import read_wav
from ckconv.data.uea import UEADataset, read_arff, read_ts, read_uea
from ckconv.models.checkpoint import CheckpointError, read_checkpoint


def _raises_at(reader, path: Path, line: int | None, match: str):
    """``reader(path)`` raises DataFileError naming ``path`` (and ``line``) with ``match``."""
    with pytest.raises(DataFileError) as info:
        reader(path)
    err = info.value
    message = str(err)
    assert str(path) in message, message
    assert re.search(match, message), message
    assert err.path == path
    assert err.line == line, message
    if line is not None:
        assert message.startswith(f"{path}:{line}: "), message
    return err


# ----------------------------------------------------------------------------------- UEA .ts
TS_HEAD = "# UEA\n@problemName X\n@timeStamps false\n"  # lines 1-3
TS_CASES = [
    # (header lines from line 4 on, data lines after @data, line of the problem, message)
    (
        "@dimensions two\n@classLabel true a b\n",
        "1,2:3,4:a\n",
        4,
        r"@dimensions must be a positive whole number, got 'two'",
    ),
    ("@dimensions 0\n@classLabel true a b\n", "1:a\n", 4, r"@dimensions must be a positive"),
    ("@seriesLength 1.5\n@classLabel true a b\n", "1:a\n", 4, r"@seriesLength must be a positive"),
    (
        "@equalLength maybe\n@classLabel true a b\n",
        "1:a\n",
        4,
        r"@equalLength must be true or false",
    ),
    ("@univariate yes\n@classLabel true a b\n", "1:a\n", 4, r"@univariate must be true or false"),
    ("@missing 0\n@classLabel true a b\n", "1:a\n", 4, r"@missing must be true or false"),
    (
        "@dimensions 2\n@classLabel true a b\n",
        "1,2:3,4:a\n1,2:b\n",
        8,
        r"case has 1 dimensions but @dimensions 2 \(line 4\)",
    ),
    (
        "@univariate true\n@classLabel true a b\n",
        "1,2:a\n1,2:3,4:b\n",
        8,
        r"@univariate true \(line 4\)",
    ),
    (
        "@equalLength true\n@classLabel true a b\n",
        "1,2,3:4,5,6:a\n1,2,3:4,5:b\n",
        8,
        r"lengths \[2, 3\] but @equalLength true \(line 4\)",
    ),
    (
        "@equalLength true\n@classLabel true a b\n",
        "1,2,3:a\n1,2,3:b\n1,2:a\n",
        9,
        r"case has length 2, the first case \(line 7\) 3",
    ),
    (
        "@equalLength true\n@seriesLength 3\n@classLabel true a b\n",
        "1,2,3:a\n1,2,3,4:b\n",
        9,
        r"case has length 4 but @seriesLength 3 \(line 5\)",
    ),
    (
        "@seriesLength 3\n@classLabel true a b\n",
        "1,2:a\n",
        7,
        r"case has length 2 but @seriesLength 3",
    ),
    (
        "@missing false\n@classLabel true a b\n",
        "1,2,3:a\n1,?,3:b\n",
        8,
        r"missing value but @missing false \(line 4\)",
    ),
    ("@classLabel true a b\n", "1,2,3:a\n1,inf,3:b\n", 7, r"non-finite value \(inf\).*nonfinite"),
    ("@classLabel true a b\n", "-inf,2,3:a\n", 6, r"non-finite value \(-inf\)"),
    ("@classLabel true a b\n", "1,2,x3:a\n", 6, r"cannot parse value 'x3'"),
    (
        "@classLabel true a b\n",
        "1,2,3:a\n1,2,3:c\n",
        7,
        r"label 'c' is not one of the declared classes \['a', 'b'\]",
    ),
    (
        "@classLabel true a b\n",
        "1,2:3,4:a\n5,6:b\n",
        7,
        r"case has 1 dimensions, the first case \(line 6\) 2",
    ),
    ("@classLabel true a b\n", "a\n", 6, r"at least one dimension and a label"),
    ("@classLabel false\n", "1,2:a\n", 4, r"@classLabel false: unlabelled files"),
    ("@classLabel true\n", "1,2:a\n", 4, r"@classLabel true needs the list of labels"),
    ("@classLabel maybe a b\n", "1,2:a\n", 4, r"@classLabel must be"),
    ("problemName Y\n@classLabel true a b\n", "1:a\n", 4, r"expected an @tag before @data"),
]


@pytest.mark.parametrize(("header", "data", "line", "match"), TS_CASES)
def test_ts_case_contradicting_its_header(tmp_path, header, data, line, match):
    p = tmp_path / "Problem_TRAIN.ts"
    p.write_text(TS_HEAD + header + "@data\n" + data)
    _raises_at(read_ts, p, line, match)


def test_ts_without_data_section(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text(TS_HEAD + "@classLabel true a b\n")
    _raises_at(read_ts, p, None, r"no @data section")


def test_ts_with_empty_data_section(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text(TS_HEAD + "@classLabel true a b\n@data\n\n")
    _raises_at(read_ts, p, None, r"@data section is empty")


def test_ts_without_class_labels(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text(TS_HEAD + "@data\n1:a\n")
    _raises_at(read_ts, p, None, r"no @classLabel line")


def test_ts_non_utf8_names_the_line(tmp_path):
    p = tmp_path / "t.ts"
    p.write_bytes((TS_HEAD + "@classLabel true a b\n@data\n1,2:a\n").encode() + b"3,\xe94:b\n")
    _raises_at(read_ts, p, 7, r"not a UTF-8 \.ts file \(byte 0xe9")


def test_ts_bad_time_stamp(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text("@problemName T\n@timeStamps true\n@classLabel true a b\n@data\n"
                 "(0.5,1),(1.0,2):a\n(yesterday,1):b\n")  # fmt: skip
    _raises_at(read_ts, p, 6, r"cannot parse time stamp 'yesterday'")


def test_ts_timestamps_without_pairs(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text("@problemName T\n@timeStamps true\n@classLabel true a b\n@data\n1,2,3:a\n")
    _raises_at(read_ts, p, 5, r"expected \(time,value\) pairs")


def test_real_files_still_read(tmp_path):
    """The header checks accept a file that keeps its promises (the oracle: the values as
    written)."""
    p = tmp_path / "ok.ts"
    p.write_text(TS_HEAD + "@univariate false\n@dimensions 2\n@equalLength true\n"
                 "@seriesLength 3\n@missing true\n@classLabel true a b\n@data\n"
                 "1,2,3:4,?,6:b\n7,8,9:1e1,11,12:a\n")  # fmt: skip
    d = read_ts(p)
    assert d.labels == ["b", "a"]
    np.testing.assert_array_equal(d.series[1], [[7, 8, 9], [10, 11, 12]])
    assert np.isnan(d.series[0][1, 1])


# ---------------------------------------------------------------------------------- UEA .arff
ARFF_UNI = "% c\n@relation 'u'\n@attribute t0 numeric\n@attribute t1 numeric\n@attribute target {1,2}\n@data\n"
ARFF_REL = (
    "@relation 'm'\n@attribute relationalAtt relational\n@attribute t0 numeric\n"
    "@attribute t1 numeric\n@attribute t2 numeric\n@end relationalAtt\n"
    "@attribute activity {Standing,Running}\n@data\n"
)
ARFF_CASES = [
    (ARFF_UNI + "0.1,0.2,2\n0.3,1\n", 8, r"row has 1 values, header declares 2"),
    (ARFF_UNI + "0.1,0.2,3\n", 7, r"label '3' is not one of the declared classes"),
    (ARFF_UNI + "0.1,inf,2\n", 7, r"non-finite value \(inf\)"),
    (ARFF_UNI + "0.1,abc,2\n", 7, r"cannot parse value 'abc'"),
    (
        ARFF_REL + "'1,2,3\\n4,5,6',Running\n'1,2\\n4,5,6',Standing\n",
        10,
        r"dimension 1 has 2 values, the relational attribute declares 3 \(line 3\)",
    ),
    (
        ARFF_REL + "'1,2,3\\n4,5,6',Running\n'1,2,3',Standing\n",
        10,
        r"case has 1 dimensions, the first case \(line 9\) 2",
    ),
    (ARFF_REL + "'1,2,3\\n4,5,6,Running\n", 9, r"unterminated quote"),
    (
        ARFF_REL + "'1,2,3',x,Running\n",
        9,
        r"expected 'dims',label in a relational row, got 3 fields",
    ),
    (
        "@relation r\n@attribute t0 numeric\n@attribute c {a,b\n@data\n1,a\n",
        3,
        r"unterminated class list",
    ),
    (
        "@relation r\n@attribute t0 string\n@attribute c {a,b}\n@data\n1,a\n",
        2,
        r"attribute type 'string'",
    ),
    (
        "@relation r\n@attribute t0 numeric\n@data\n1\n",
        3,
        r"no nominal class attribute before @data",
    ),
    (
        "@relation r\n@attribute t0 numeric\n@attribute c {a,b}\n@frobnicate\n",
        4,
        r"unexpected header line",
    ),
    ("@relation r\n@attribute\n", 2, r"@attribute needs a name and a type"),
]


@pytest.mark.parametrize(("text", "line", "match"), ARFF_CASES)
def test_arff_problems_name_file_and_line(tmp_path, text, line, match):
    p = tmp_path / "Problem_TRAIN.arff"
    p.write_text(text)
    _raises_at(read_arff, p, line, match)


def test_arff_without_data(tmp_path):
    p = tmp_path / "t.arff"
    p.write_text(ARFF_UNI.split("@data")[0])
    _raises_at(read_arff, p, None, r"no @data section")


def test_arff_non_utf8(tmp_path):
    p = tmp_path / "t.arff"
    p.write_bytes(ARFF_UNI.encode() + b"0.1,0.2,\xff\n")
    _raises_at(read_arff, p, 7, r"not a UTF-8 \.arff file")


def test_uea_unknown_suffix(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,2\n")
    _raises_at(read_uea, p, None, r"unknown UEA format")


# ------------------------------------------------------------------------------- UEA datasets
def _problem(root: Path, train: str, test: str, name: str = "P") -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / f"{name}_TRAIN.ts").write_text(train)
    (d / f"{name}_TEST.ts").write_text(test)
    return d


HEAD2 = "@problemName P\n@dimensions 2\n@classLabel true a b\n@data\n"
TRAIN2 = HEAD2 + "1,2,3:4,5,6:a\n2,3,4:5,6,7:b\n3,4,5:6,7,8:a\n4,5,6:7,8,9:b\n"


def test_train_and_test_with_different_channels_name_both_files(tmp_path):
    d = _problem(tmp_path, TRAIN2, "@problemName P\n@classLabel true a b\n@data\n1,2,3:a\n")
    with pytest.raises(DataFileError, match="channels") as info:
        UEADataset("P", tmp_path, "train")
    message = str(info.value)
    assert str(d / "P_TRAIN.ts") in message and str(d / "P_TEST.ts") in message
    assert "1 channels" in message and "have 2" in message


def test_train_and_test_with_different_classes_name_both_files(tmp_path):
    d = _problem(tmp_path, TRAIN2, TRAIN2.replace("true a b", "true a c").replace(":b\n", ":c\n"))
    with pytest.raises(DataFileError, match="declares the classes") as info:
        UEADataset("P", tmp_path, "train")
    assert str(d / "P_TRAIN.ts") in str(info.value) and str(d / "P_TEST.ts") in str(info.value)


def test_inf_in_a_dataset_is_refused_by_default(tmp_path):
    d = _problem(tmp_path, TRAIN2.replace("2,3,4:5", "2,inf,4:5"), TRAIN2)
    with pytest.raises(DataFileError) as info:
        UEADataset("P", tmp_path, "train")
    assert info.value.path == d / "P_TRAIN.ts" and info.value.line == 6
    assert "nonfinite" in str(info.value)


def test_nonfinite_option_is_checked(tmp_path):
    _problem(tmp_path, TRAIN2, TRAIN2)
    with pytest.raises(
        ValueError, match=r"nonfinite must be one of 'error', 'zero', 'drop', got 'skip'"
    ):
        UEADataset("P", tmp_path, "train", nonfinite="skip")


def _standardised_by_hand(cases: list[np.ndarray], skip_inf: bool) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.concatenate(cases, axis=1)
    if skip_inf:
        stacked = np.where(np.isinf(stacked), np.nan, stacked)
    return np.nanmean(stacked, axis=1), np.nanstd(stacked, axis=1)


def test_nonfinite_zero_does_not_spread_into_other_series(tmp_path):
    """One inf: the other series are standardised with statistics of the finite values (numpy
    oracle), the inf becomes 0 (the channel mean), nothing turns NaN."""
    train = TRAIN2.replace("2,3,4:5", "2,inf,4:5")
    _problem(tmp_path, train, TRAIN2)
    ds = UEADataset("P", tmp_path, "train", nonfinite="zero", val_fraction=0)
    raw = [np.array(c, dtype=float) for c in (
        [[1, 2, 3], [4, 5, 6]], [[2, np.inf, 4], [5, 6, 7]], [[3, 4, 5], [6, 7, 8]],
        [[4, 5, 6], [7, 8, 9]])]  # fmt: skip
    mean, std = _standardised_by_hand(raw, skip_inf=True)
    for x, case in zip(ds.inputs, raw, strict=True):
        expected = (case - mean[:, None]) / (std[:, None] + 1e-5)
        expected = np.where(np.isinf(case), 0.0, expected)
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-6)
        assert torch.isfinite(x).all()


def test_nonfinite_drop_leaves_out_the_case(tmp_path):
    train = TRAIN2.replace("2,3,4:5", "2,-inf,4:5").replace("3,4,5:6", "3,?,5:6")
    _problem(tmp_path, train, TRAIN2)
    ds = UEADataset("P", tmp_path, "train", nonfinite="drop", val_fraction=0)
    assert len(ds) == 2 and ds.targets.tolist() == [0, 1]
    mean, _ = _standardised_by_hand([np.array([[1, 2, 3], [4, 5, 6.0]]),
                                     np.array([[4, 5, 6], [7, 8, 9.0]])], skip_inf=False)  # fmt: skip
    np.testing.assert_allclose(ds.mean.numpy(), mean)


def test_nonfinite_drop_of_every_case(tmp_path):
    d = _problem(tmp_path, HEAD2 + "1,inf:2,3:a\n", TRAIN2)
    with pytest.raises(DataFileError, match="every case holds") as info:
        UEADataset("P", tmp_path, "train", nonfinite="drop")
    assert info.value.path == d / "P_TRAIN.ts"


# --------------------------------------------------------------------------------------- IDX
def _idx(shape: tuple[int, ...], data: bytes, type_code: int = 0x08) -> bytes:
    return (
        bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + data
    )


IDX_CASES = [
    (b"\x00\x00", r"truncated IDX file \(2 bytes"),
    (b"PK\x03\x04rest", r"not an IDX file \(magic number"),
    (_idx((2,), b"\x01\x02"), r"IDX magic number is 2049, expected 2051"),
    (bytes([0, 0, 8, 3, 0, 0]), r"truncated IDX header"),
    (_idx((2, 2, 2), b"\x00" * 7), r"IDX body has 7 bytes.*needs 8 \(truncated file\)"),
    (_idx((2, 2, 2), b"\x00" * 9), r"IDX body has 9 bytes"),
    (gzip.compress(_idx((2, 2, 2), b"\x00" * 8), mtime=0)[:-12], r"broken gzip stream"),
    (
        gzip.compress(_idx((2, 2, 2), b"\x00" * 8), mtime=0)[:12] + b"\xff" * 40,
        r"broken gzip stream",
    ),
]


@pytest.mark.parametrize(
    ("raw", "match"), IDX_CASES, ids=[f"idx{i}" for i in range(len(IDX_CASES))]
)
def test_idx_problems_name_the_file(tmp_path, raw, match):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(raw)
    _raises_at(lambda q: read_idx(q, 2051), p, None, match)


def _mnist(root: Path, labels: list[int], test_labels: list[int] | None = None) -> Path:
    n = len(labels)
    (root / "train-images-idx3-ubyte").write_bytes(_idx((n, 2, 2), bytes(4 * n)))
    (root / "train-labels-idx1-ubyte").write_bytes(_idx((n,), bytes(labels)))
    t = test_labels or [0, 1]
    (root / "t10k-images-idx3-ubyte").write_bytes(_idx((len(t), 2, 2), bytes(4 * len(t))))
    (root / "t10k-labels-idx1-ubyte").write_bytes(_idx((len(t),), bytes(t)))
    return root


def test_mnist_label_outside_the_classes(tmp_path):
    _mnist(tmp_path, [0, 3, 12, 1])
    p = tmp_path / "train-labels-idx1-ubyte"
    with pytest.raises(
        DataFileError, match=r"label 12 of item 2 is outside the 10 classes"
    ) as info:
        MNIST(tmp_path, "train", val_size=1)
    assert info.value.path == p and str(p) in str(info.value)


def test_mnist_test_label_outside_the_classes(tmp_path):
    _mnist(tmp_path, [0, 1, 2, 3], test_labels=[255, 0])
    with pytest.raises(DataFileError, match=r"label 255 of item 0") as info:
        MNIST(tmp_path, "test", val_size=1)
    assert info.value.path == tmp_path / "t10k-labels-idx1-ubyte"


def test_mnist_images_and_labels_disagree(tmp_path):
    _mnist(tmp_path, [0, 1, 2, 3])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx((3,), bytes([0, 1, 2])))
    with pytest.raises(DataFileError, match=r"4 training images but 3 labels") as info:
        MNIST(tmp_path, "train", val_size=1)
    assert str(tmp_path) in str(info.value)


# ------------------------------------------------------------------------------------- CIFAR
def _batch(path: Path, n: int = 2, labels=None, key: bytes = b"labels", data=None) -> Path:
    batch = {
        b"data": np.zeros((n, 3072), np.uint8) if data is None else data,
        key: list(range(n)) if labels is None else labels,
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return path


def test_cifar_garbage(tmp_path):
    p = tmp_path / "data_batch_1"
    p.write_bytes(b"\x00not a pickle")
    _raises_at(read_cifar_batch, p, None, r"not a readable CIFAR pickle batch")


def test_cifar_batch_with_code_is_refused(tmp_path):
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": Path("x")}))
    _raises_at(read_cifar_batch, p, None, r"refusing to load global")


def test_cifar_batch_not_a_dict(tmp_path):
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps([1, 2]))
    _raises_at(read_cifar_batch, p, None, r"expected a dict batch, got list")


def test_cifar_batch_missing_key(tmp_path):
    p = _batch(tmp_path / "data_batch_1", key=b"fine_labels")
    _raises_at(read_cifar_batch, p, None, r"missing key 'labels' in CIFAR batch")


def test_cifar_batch_wrong_data_shape(tmp_path):
    p = _batch(tmp_path / "data_batch_1", data=np.zeros((2, 100), np.uint8))
    _raises_at(read_cifar_batch, p, None, r"'data' must be uint8 \(N, 3072\)")


def test_cifar_batch_images_and_labels_disagree(tmp_path):
    p = _batch(tmp_path / "data_batch_1", labels=[0, 1, 2])
    _raises_at(read_cifar_batch, p, None, r"2 images but 3 labels")


def _cifar10(root: Path, bad_file: str, labels) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _batch(d / name, n=2, labels=labels if name == bad_file else [0, 1])
    return d


def test_cifar10_label_outside_the_classes(tmp_path):
    d = _cifar10(tmp_path, "data_batch_3", [4, 10])
    with pytest.raises(
        DataFileError, match=r"label 10 of item 1 is outside the 10 classes"
    ) as info:
        CIFAR10(tmp_path, "train", val_size=1)
    assert info.value.path == d / "data_batch_3"


def test_cifar10_negative_label_in_the_test_batch(tmp_path):
    d = _cifar10(tmp_path, "test_batch", [-1, 0])
    with pytest.raises(DataFileError, match=r"label -1 of item 0") as info:
        CIFAR10(tmp_path, "test", val_size=1)
    assert info.value.path == d / "test_batch"


def test_cifar100_coarse_label_outside_20_classes(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name in ("train", "test"):
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 99],
                 b"coarse_labels": [0, 25 if name == "train" else 1]}  # fmt: skip
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    assert len(CIFAR100(tmp_path, "test", val_size=1)) == 2  # fine labels 0 and 99 are fine
    with pytest.raises(
        DataFileError, match=r"label 25 of item 1 is outside the 20 classes"
    ) as info:
        CIFAR100(tmp_path, "train", val_size=1, label_key="coarse_labels")
    assert info.value.path == d / "train"


# --------------------------------------------------------------------------------------- WAV
def _wav(path: Path, *, width=2, channels=1, rate=16000, frames=16) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(width * channels * frames))
    return path


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 1}, r"expected 16-bit PCM, got 8-bit samples"),
        ({"channels": 2}, r"expected mono audio, got 2 channels"),
        ({"rate": 8000}, r"expected 16000 Hz, got 8000 Hz"),
    ],
)
def test_wav_format_problems(tmp_path, kwargs, match):
    p = _wav(tmp_path / "yes_0.wav", **kwargs)
    _raises_at(read_wav, p, None, match)


def test_wav_not_a_wav(tmp_path):
    p = tmp_path / "yes_0.wav"
    p.write_bytes(b"ID3\x03 an mp3 perhaps")
    _raises_at(read_wav, p, None, r"not a readable WAV file")


def test_wav_truncated_data(tmp_path):
    p = _wav(tmp_path / "yes_0.wav", frames=100)
    p.write_bytes(p.read_bytes()[:-50])
    _raises_at(read_wav, p, None, r"truncated WAV data: header says 100 frames, file has 75")


# --------------------------------------------------------------------------------- ModelNet
OFF_OK = "OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 2 3\n"
OFF_CASES = [
    ("0FF\n4 2 0\n", 1, r"missing 'OFF' header"),
    ("OFF\n", None, r"truncated OFF file \(no counts line\)"),
    ("OFF\n4 two 0\n", 2, r"bad counts line '4 two 0'"),
    ("OFF\n4\n", 2, r"counts line must be 'n_vertices n_faces"),
    (
        "OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n",
        None,
        r"truncated OFF file: header promises 4 vertices and 2 faces",
    ),
    (OFF_OK.replace("1 0 0\n", "1 zero 0\n"), 4, r"non-numeric vertex coordinate"),
    (OFF_OK.replace("1 0 0\n", "1 0\n"), 4, r"vertex needs 3 coordinates"),
    (OFF_OK.replace("1 0 0\n", "1 inf 0\n"), 4, r"non-finite"),
    (OFF_OK.replace("3 0 2 3\n", "3 0 2 4\n"), 8, r"vertex index out of range 0\.\.3"),
    (OFF_OK.replace("3 0 2 3\n", "2 0 2\n"), 8, r"expected 'n i_1 \.\.\. i_n' with n >= 3"),
    (OFF_OK.replace("3 0 2 3\n", "4 0 1 2 x\n"), 8, r"non-integer entry"),
]


@pytest.mark.parametrize(("text", "line", "match"), OFF_CASES)
def test_off_problems(tmp_path, text, line, match):
    p = tmp_path / "chair_0001.off"
    p.write_text(text)
    _raises_at(read_off, p, line, match)


def test_resampled_problems(tmp_path):
    p = tmp_path / "chair_0001.txt"
    p.write_text("0,0,0,0,0,1\n0,0,0,0,1\n")
    _raises_at(read_resampled, p, 2, r"expected 6 comma-separated values, got 5")
    p.write_text("0,0,0,0,0,1\n0,0,x,0,0,1\n")
    _raises_at(read_resampled, p, 2, r"non-numeric value")
    p.write_text("0,0,0,0,0,1\n0,nan,0,0,0,1\n")
    _raises_at(read_resampled, p, 2, r"non-finite")
    p.write_text("0,0,0,0,0,1\n")
    _raises_at(lambda q: read_resampled(q, 10), p, None, r"has 1 points, 10 requested")


# -------------------------------------------------------------------------------- PhysioNet
def _psv_row(**values) -> str:
    row = ["NaN"] * 41
    for name, v in values.items():
        row[PSV_COLUMNS.index(name)] = str(v)
    return "|".join(row)


PSV_HEAD = "|".join(PSV_COLUMNS) + "\n"
PSV_CASES = [
    ("", None, r"empty \.psv file"),
    ("HR|O2Sat\n", 1, r"header has 2 columns"),
    (PSV_HEAD, None, r"no data rows"),
    (
        PSV_HEAD + _psv_row(ICULOS=1, SepsisLabel=0) + "\n" + "|".join(["1"] * 40) + "\n",
        3,
        r"expected 41 fields, got 40",
    ),
    (PSV_HEAD + _psv_row(ICULOS=1, SepsisLabel=0, HR="fast") + "\n", 2, r"non-numeric value"),
    (
        PSV_HEAD
        + _psv_row(ICULOS=1, SepsisLabel=0)
        + "\n"
        + _psv_row(ICULOS=2, SepsisLabel=0, HR="inf")
        + "\n",
        3,
        r"non-finite",
    ),
    (PSV_HEAD + _psv_row(ICULOS=1, SepsisLabel=2) + "\n", 2, r"SepsisLabel must be 0 or 1, got 2"),
]


@pytest.mark.parametrize(("text", "line", "match"), PSV_CASES)
def test_psv_problems(tmp_path, text, line, match):
    p = tmp_path / "p000001.psv"
    p.write_text(text)
    _raises_at(read_psv, p, line, match)


# -------------------------------------------------------------------------------- LRA, PTB
LISTOPS_CASES = [
    ("", None, r"empty ListOps file"),
    ("Src\tTgt\n", 1, r"header must be 'Source<TAB>Target'"),
    (
        "Source\tTarget\n( [MAX 1 2 ] )\t2\n( [MAX 1 2 ] )\n",
        3,
        r"expected 2 tab-separated fields, got 1",
    ),
    ("Source\tTarget\n( [MAX 1 2 ] )\ttwo\n", 2, r"target 'two' is not an integer"),
    ("Source\tTarget\n( [MAX 1 2 ] )\t12\n", 2, r"target 12 outside 0\.\.9"),
    ("Source\tTarget\n( [MAX 1 2 ] )\t2\n( [FOO 1 ] )\t1\n", 3, r"unknown ListOps token '\[FOO'"),
    ("Source\tTarget\n\n", None, r"no examples"),
]


@pytest.mark.parametrize(("text", "line", "match"), LISTOPS_CASES)
def test_listops_problems(tmp_path, text, line, match):
    p = tmp_path / "basic_train.tsv"
    p.write_text(text)
    _raises_at(read_listops_tsv, p, line, match)


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("imgs/0 sample_0.png 0 1\nimgs/0 sample_1.png 0\n", 2, r"at least 4 space-separated"),
        ("imgs/0 sample_0.png 0 yes\n", 1, r"label 'yes' is not an integer"),
        ("imgs/0 sample_0.png 0 1\n\nimgs/0 sample_1.png 0 2\n", 3, r"label must be 0 or 1, got 2"),
    ],
)
def test_pathfinder_metadata_problems(tmp_path, text, line, match):
    p = tmp_path / "0.npy"
    p.write_text(text)
    _raises_at(read_pathfinder_metadata, p, line, match)


def test_ptb_problems(tmp_path):
    p = tmp_path / "ptb.char.train.txt"
    p.write_text("a b c\nd ef g\n")
    _raises_at(read_ptb_chars, p, 2, r"expected single characters separated by spaces, got 'ef'")
    p.write_bytes(b"a b\nc \xc3\x28\n")
    _raises_at(read_ptb_chars, p, 2, r"not a UTF-8 PTB text file")
    p.write_text("\n\n")
    _raises_at(read_ptb_chars, p, None, r"no characters")


# --------------------------------------------------------------------------------- downloads
def test_offline_download_names_url_and_folder(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    url = "https://example.org/data/train-images-idx3-ubyte.gz"
    with pytest.raises(DownloadError) as info:
        download_url(url, tmp_path / "mnist" / "train-images-idx3-ubyte.gz", md5="0" * 32)
    message = str(info.value)
    assert url in message and str(tmp_path / "mnist") in message and "\n" not in message
    assert not list((tmp_path / "mnist").glob("*.part"))
    assert isinstance(info.value, InputError)


def test_existing_download_with_wrong_checksum(tmp_path):
    p = tmp_path / "cifar-10-python.tar.gz"
    p.write_bytes(b"half a download")
    with pytest.raises(ChecksumError, match="md5 checksum mismatch") as info:
        download_url("https://example.org/c.tar.gz", p, md5="0" * 32)
    assert info.value.path == p


def test_not_an_archive(tmp_path):
    p = tmp_path / "stl10_binary.tar.gz"
    p.write_bytes(b"<html>404</html>")
    _raises_at(lambda q: extract_archive(q, tmp_path / "out"), p, None, r"not a tar or zip archive")


def test_archive_member_escaping_is_refused(tmp_path):
    import io
    import tarfile

    p = tmp_path / "evil.tar"
    with tarfile.open(p, "w") as tf:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(UnsafeArchiveError, match="escapes the destination") as err:
        extract_archive(p, tmp_path / "out")
    assert err.value.path == p and not (tmp_path / "escape.txt").exists()


# ------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"not a loadable checkpoint"),
        (b"garbage" * 20, r"not a loadable checkpoint"),
        (pickle.dumps({"state_dict": Path("x")}), r"not a loadable checkpoint"),
    ],
    ids=["empty", "garbage", "code"],
)
def test_unreadable_checkpoint_files(tmp_path, content, match):
    p = tmp_path / "model.ckpt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        read_checkpoint(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_that_is_a_list(tmp_path):
    p = tmp_path / "model.ckpt"
    torch.save([1, 2], p)
    with pytest.raises(CheckpointError, match=r"not a checkpoint \(a list, not a dict\)"):
        read_checkpoint(p)


def test_checkpoint_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_checkpoint(tmp_path / "nowhere.ckpt")


# ------------------------------------------------------------------------------ command line
def _cli(capsys, *argv: str) -> str:
    """Run ``ckconv ARGV`` in-process; it must exit with 2 and print one line, no traceback."""
    from ckconv.app.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


TINY = [
    "name=tiny", "task.name=digits", "model.name=ccnn", "model.hidden_channels=4",
    "model.num_blocks=1", "optim.warmup_epochs=0", "trainer.max_epochs=1",
    "trainer.batch_size=32", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
    "trainer.progress_bar=false", "trainer.test_after_fit=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run folder (two steps on digits)."""
    from ckconv.app.config import load_config
    from ckconv.app.training import train

    out = tmp_path_factory.mktemp("runs")
    overrides = [*TINY, f"trainer.out_dir={out}"]
    try:
        cfg = load_config("demo_digits", overrides)
    except InputError:  # a config without test_after_fit
        cfg = load_config("demo_digits", [o for o in overrides if "test_after_fit" not in o])
    return train(cfg).run_dir


def _bad_copy(trained: Path, tmp_path: Path, change) -> Path:
    """A copy of the run folder whose last.ckpt is changed by ``change(contents or bytes)``."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    change(ckpt)
    return run


def _mismatched(ckpt: Path, drop_spec: bool = False) -> None:
    contents = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in contents["state_dict"].items() if v.ndim == 2)
    contents["state_dict"][key] = torch.zeros(7, 7)
    if drop_spec:
        contents.pop("model_spec", None)
    torch.save(contents, ckpt)


def _truncate(ckpt: Path) -> None:
    ckpt.write_bytes(ckpt.read_bytes()[:1000])


COMMANDS = {
    "eval": ["eval", "--checkpoint"],
    "eval-rate": ["eval", "--rate", "1/2", "--checkpoint"],
    "export": ["export", "--format", "onnx", "--out", "{out}/m.onnx", "--checkpoint"],
    "plot": ["plot", "kernels", "--out", "{out}", "--checkpoint"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("defect", ["mismatch", "mismatch-no-spec", "truncated"])
def test_commands_on_bad_checkpoints(trained, tmp_path, capsys, command, defect):
    change = {"mismatch": _mismatched, "mismatch-no-spec": lambda c: _mismatched(c, True),
              "truncated": _truncate}[defect]  # fmt: skip
    run = _bad_copy(trained, tmp_path, change)
    ckpt = run / "checkpoints" / "last.ckpt"
    argv = [a.format(out=tmp_path) for a in COMMANDS[command]] + [str(ckpt)]
    err = _cli(capsys, *argv)
    assert str(ckpt) in err
    assert ("do not fit" in err) if defect.startswith("mismatch") else ("not a loadable" in err)


@pytest.mark.parametrize("defect", ["mismatch", "truncated"])
def test_resume_from_bad_checkpoint(trained, tmp_path, capsys, defect):
    run = _bad_copy(trained, tmp_path, _mismatched if defect == "mismatch" else _truncate)
    err = _cli(capsys, "train", "--resume", str(run))
    assert str(run / "checkpoints" / "last.ckpt") in err
    assert ("do not fit the model its run's config.yaml builds" in err) if defect == "mismatch" \
        else ("not a loadable" in err)  # fmt: skip


def test_eval_of_a_missing_checkpoint(tmp_path, capsys):
    err = _cli(capsys, "eval", "--checkpoint", str(tmp_path / "gone.ckpt"))
    assert str(tmp_path / "gone.ckpt") in err


def test_eval_of_a_foreign_checkpoint(tmp_path, capsys):
    p = tmp_path / "resnet.pth"
    torch.save({"weights": torch.zeros(2)}, p)
    err = _cli(capsys, "eval", "--checkpoint", str(p))
    assert str(p) in err and "state_dict" in err


def _character_trajectories(root: Path, bad_train_line: str | None = None) -> Path:
    d = root / "CharacterTrajectories"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part in ("TRAIN", "TEST"):
        lines = ["@problemName CharacterTrajectories", "@dimensions 3", "@classLabel true 1 2",
                 "@data"]  # fmt: skip
        for c in (1, 2) * 6:
            dims = [",".join(f"{v:.3f}" for v in rng.normal(c, 1, 8)) for _ in range(3)]
            lines.append(":".join(dims) + f":{c}")
        if part == "TRAIN" and bad_train_line is not None:
            lines.insert(6, bad_train_line)  # becomes line 7
        (d / f"CharacterTrajectories_{part}.ts").write_text("\n".join(lines) + "\n")
    return d


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("1,2:3,4:1", r"case has 2 dimensions but @dimensions 3 \(line 2\)"),
        ("1,inf,3:1,2,3:1,2,3:2", r"non-finite value \(inf\)"),
        ("1,2,3:1,2,3:1,2,3:7", r"label '7' is not one of the declared classes"),
    ],
)
def test_train_on_a_malformed_ts_file(tmp_path, capsys, bad_line, match):
    d = _character_trajectories(tmp_path / "data", bad_line)
    err = _cli(capsys, "train", "--config", "ckcnn_character_trajectories",
               f"task.root={tmp_path / 'data'}", "--dry-run")  # fmt: skip
    assert f"{d / 'CharacterTrajectories_TRAIN.ts'}:7: " in err
    assert re.search(match, err), err


def test_train_with_nonfinite_option_runs_the_dry_run(tmp_path, capsys):
    """The same file with task.nonfinite=drop passes (the option reaches the dataset)."""
    from ckconv.app.cli import main

    _character_trajectories(tmp_path / "data", "1,inf,3:1,2,3:1,2,3:2")
    code = main(["train", "--config", "ckcnn_character_trajectories",
                 f"task.root={tmp_path / 'data'}", "task.nonfinite=drop", "--dry-run"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith("ok: task character_trajectories")


def test_train_with_a_bad_nonfinite_value(tmp_path, capsys):
    _character_trajectories(tmp_path / "data")
    err = _cli(capsys, "train", "--config", "ckcnn_character_trajectories",
               f"task.root={tmp_path / 'data'}", "task.nonfinite=ignore", "--dry-run")  # fmt: skip
    assert "nonfinite" in err and "'ignore'" in err


def test_train_offline_download(tmp_path, capsys, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    err = _cli(capsys, "train", "--config", "ccnn_4_140_smnist", f"task.root={tmp_path}",
               "task.download=true", "--dry-run")  # fmt: skip
    assert "https://" in err and str(tmp_path / "mnist") in err


def test_unknown_task_and_bad_override(capsys):
    assert "unknown task 'mnistt'" in _cli(capsys, "train", "--config", "demo_digits",
                                           "task.name=mnistt", "--dry-run")  # fmt: skip
    assert "trainer.max_epochs" in _cli(capsys, "train", "--config", "demo_digits",
                                        "trainer.max_epochs=many", "--dry-run")  # fmt: skip


def test_a_bug_keeps_its_traceback(monkeypatch):
    """An exception that is not an InputError is not turned into a user message."""
    from ckconv.app import cli

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "_train", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["train", "--config", "demo_digits"])


def test_own_uea_problem_with_inf_through_the_cli(tmp_path, capsys):
    """``task.name=uea``: the inf is refused naming file and line; task.nonfinite=zero reads it."""
    from ckconv.app.cli import main

    d = _problem(tmp_path, TRAIN2.replace("2,3,4:5", "2,inf,4:5") + TRAIN2.split("@data\n")[1] * 3,
                 TRAIN2)  # fmt: skip
    argv = ["train", "task.name=uea", f"task.path={d}", "--dry-run"]
    err = _cli(capsys, *argv)
    assert f"{d / 'P_TRAIN.ts'}:6: case holds a non-finite value (inf)" in err
    code = main([*argv, "task.nonfinite=zero"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith("ok: task uea")


@pytest.mark.parametrize("command", [["eval"], ["plot", "kernels"]])
def test_lightning_checkpoint_of_another_project(tmp_path, capsys, command):
    """A Lightning checkpoint without ckconv's config: one line naming the file."""
    p = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "global_step": 3}, p)
    err = _cli(capsys, *command, "--checkpoint", str(p), "--out", str(tmp_path)) \
        if command[0] == "plot" else _cli(capsys, *command, "--checkpoint", str(p))  # fmt: skip
    assert str(p) in err and "no ckconv config inside" in err
