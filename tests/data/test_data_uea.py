import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ckconv.data.transforms import DropSamples, pad_collate
from ckconv.data.uea import (
    CharacterTrajectories,
    UEADataset,
    aeon_data_dir,
    aeon_problems,
    read_arff,
    read_ts,
)

TS_VARIABLE = """# a comment line
#
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true a b c
@data
1.0,2.0,3.0:4.0,5.0,6.0:b
0.5,?,1.5,2.5:-1,-2,-3,-4:a
7,8:9,10:c
"""


def test_ts_multivariate_variable_length_and_missing(tmp_path):
    p = tmp_path / "Toy_TRAIN.ts"
    p.write_text(TS_VARIABLE)
    d = read_ts(p)
    assert d.class_names == ["a", "b", "c"] and d.labels == ["b", "a", "c"]
    assert d.targets().tolist() == [1, 0, 2]
    assert [s.shape for s in d.series] == [(2, 3), (2, 4), (2, 2)]
    np.testing.assert_array_equal(d.series[0], [[1, 2, 3], [4, 5, 6]])
    assert math.isnan(d.series[1][0, 1]) and d.series[1][1].tolist() == [-1, -2, -3, -4]
    assert d.meta["problemname"] == "Toy" and d.times is None


def test_ts_unequal_dimension_lengths_inside_a_case_are_nan_padded(tmp_path):
    p = tmp_path / "u.ts"
    p.write_text("@problemName U\n@classLabel true 0 1\n@data\n1,2,3:4:1\n")
    s = read_ts(p).series[0]
    assert s.shape == (2, 3) and s[1, 0] == 4 and np.isnan(s[1, 1:]).all()


def test_ts_timestamps(tmp_path):
    p = tmp_path / "t.ts"
    p.write_text(
        "@problemName T\n@timeStamps true\n@univariate true\n@classLabel true x y\n@data\n"
        "(2007-01-01 00:00:00,1.5),(2007-01-01 00:01:00,2.5),(2007-01-01 00:03:00,3.0):y\n"
        "(0.5,1),(1.0,2):x\n"
    )
    d = read_ts(p)
    assert d.labels == ["y", "x"]
    assert d.series[0].tolist() == [[1.5, 2.5, 3.0]]
    assert np.diff(d.times[0]).tolist() == [60.0, 120.0]
    assert d.times[1].tolist() == [0.5, 1.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@problemName X\n@classLabel true a b\n", "no @data section"),
        ("@problemName X\n@classLabel true a b\n@data\n1,2:q\n", "label 'q' is not one of"),
        ("@problemName X\n@classLabel true a b\n@data\n1,zz:a\n", r":4: cannot parse value 'zz'"),
        (
            "@problemName X\n@classLabel true a b\n@data\n1,2:3,4:a\n5,6:b\n",
            "case has 1 dimensions",
        ),
        ("@problemName X\n@dimensions 3\n@classLabel true a\n@data\n1:2:a\n", "but @dimensions 3"),
        ("@problemName X\n@data\n1:a\n", "no @classLabel"),
        ("1,2,3:a\n", "expected an @tag"),
    ],
)
def test_ts_errors_name_file_and_line(tmp_path, text, message):
    p = tmp_path / "bad.ts"
    p.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_ts(p)
    assert "bad.ts" in str(err.value)


ARFF_MULTI = """% comment
@relation 'Toy'
@attribute relationalAtt relational
  @attribute t0 numeric
  @attribute t1 numeric
  @attribute t2 numeric
@end relationalAtt
@attribute activity {Standing,Running}

@data
'1,2,3\\n4,5,6',Running
"0.5,?,1\\n-1,-2,-3",Standing
"""

ARFF_UNI = """@RELATION uni
@ATTRIBUTE att0 NUMERIC
@ATTRIBUTE att1 NUMERIC
@ATTRIBUTE target {1,2}
@DATA
0.1,0.2,2
-3,4e-1,1
"""


def test_arff_multivariate_relational(tmp_path):
    p = tmp_path / "m.arff"
    p.write_text(ARFF_MULTI)
    d = read_arff(p)
    assert d.class_names == ["Standing", "Running"] and d.targets().tolist() == [1, 0]
    np.testing.assert_array_equal(d.series[0], [[1, 2, 3], [4, 5, 6]])
    assert np.isnan(d.series[1][0, 1]) and d.series[1][1].tolist() == [-1, -2, -3]


def test_arff_univariate(tmp_path):
    p = tmp_path / "u.arff"
    p.write_text(ARFF_UNI)
    d = read_arff(p)
    assert [s.tolist() for s in d.series] == [[[0.1, 0.2]], [[-3.0, 0.4]]]
    assert d.labels == ["2", "1"] and d.targets().tolist() == [1, 0]
    bad = tmp_path / "b.arff"
    bad.write_text(ARFF_UNI.replace("-3,4e-1,1", "-3,1"))
    with pytest.raises(ValueError, match=r"b\.arff:7: row has 1 values, header declares 2"):
        read_arff(bad)
    trunc = tmp_path / "t.arff"
    trunc.write_text(ARFF_UNI.split("@DATA")[0])
    with pytest.raises(ValueError, match=r"t\.arff: no @data"):
        read_arff(trunc)


def _write_ct(root, n_per_class=10, n_classes=3, seed=0):
    """Fabricated CharacterTrajectories-like files: 3 channels, variable lengths."""
    rng = np.random.default_rng(seed)
    d = root / "Multivariate_ts" / "CharacterTrajectories"
    d.mkdir(parents=True)
    labels = " ".join(str(c) for c in range(1, n_classes + 1))
    for part, n in (("TRAIN", n_per_class), ("TEST", n_per_class)):
        lines = [
            "@problemName CharacterTrajectories",
            "@dimensions 3",
            f"@classLabel true {labels}",
            "@data",
        ]
        for c in range(1, n_classes + 1):
            for _ in range(n):
                length = int(rng.integers(5, 12))
                dims = [",".join(f"{v:.4f}" for v in rng.normal(c, 1, length)) for _ in range(3)]
                lines.append(":".join(dims) + f":{c}")
        (d / f"CharacterTrajectories_{part}.ts").write_text("\n".join(lines) + "\n")
    return d


def test_character_trajectories_kidger_layout(tmp_path):
    _write_ct(tmp_path)
    splits = {s: CharacterTrajectories(tmp_path, s) for s in ("train", "val", "test")}
    assert sum(len(ds) for ds in splits.values()) == 60
    assert [len(ds) for ds in splits.values()] == [42, 9, 9]
    x, y = splits["train"][0]
    longest = splits["train"].max_length
    assert x.shape == (3, longest) and y.dtype == torch.int64
    # padded with the last value: the tail after the original length is constant
    n = int(splits["train"].lengths[0])
    assert torch.allclose(x[:, n:], x[:, n - 1 : n].expand(-1, longest - n))
    xs = torch.cat([splits["train"][i][0] for i in range(42)], dim=1)
    assert (
        xs.mean(dim=1).abs().max() < 1e-4 and (xs.std(dim=1, unbiased=False) - 1).abs().max() < 1e-3
    )
    dropped = DropSamples(splits["test"], 0.5, route="mask")
    assert dropped[0][0].shape == (4, longest)


def test_missing_problem_message(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"CharacterTrajectories: expected files \[CharacterTrajectories_TRAIN\.ts",
    ):
        CharacterTrajectories(tmp_path)


def test_uea_val_fraction_and_variable_length_batches(tmp_path):
    _write_ct(tmp_path)
    tr = UEADataset("CharacterTrajectories", tmp_path, "train", val_fraction=0.2)
    va = UEADataset("CharacterTrajectories", tmp_path, "val", val_fraction=0.2)
    te = UEADataset("CharacterTrajectories", tmp_path, "test")
    assert (len(tr), len(va), len(te)) == (24, 6, 30)
    assert len({x.shape[-1] for x, _ in tr}) > 1  # variable lengths kept
    batch = next(iter(DataLoader(tr, batch_size=8, collate_fn=pad_collate)))
    assert batch.x.shape[:2] == (8, 3) and batch.mask.sum(dim=1).tolist() == batch.lengths.tolist()


requires_aeon = pytest.mark.skipif(
    aeon_data_dir() is None,
    reason="aeon wheel not installed (pip install --no-deps aeon==1.6.0 provides the files)",
)


@requires_aeon
def test_japanese_vowels_from_aeon_offline():
    base = aeon_data_dir()
    assert "JapaneseVowels" in aeon_problems()
    raw_train = read_ts(base / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
    raw_test = read_ts(base / "JapaneseVowels" / "JapaneseVowels_TEST.ts")
    assert len(raw_train.series) == 270 and len(raw_test.series) == 370
    lengths = [s.shape[1] for s in raw_train.series + raw_test.series]
    assert min(lengths) == 7 and max(lengths) == 29
    assert {s.shape[0] for s in raw_train.series} == {12}
    assert raw_train.class_names == [str(i) for i in range(1, 10)]
    assert not any(np.isnan(s).any() for s in raw_train.series)
    test = UEADataset("JapaneseVowels", None, "test")
    assert len(test) == 370 and test.num_classes == 9 and test.num_channels == 12
    batch = next(iter(DataLoader(test, batch_size=64, collate_fn=pad_collate)))
    assert (
        batch.x.shape[0] == 64
        and batch.x.shape[1] == 12
        and batch.x.shape[2] == int(batch.lengths.max())
    )
    # test data are raw test cases standardised with training-split statistics
    x0 = torch.as_tensor(raw_test.series[0], dtype=torch.float32)
    torch.testing.assert_close(test[0][0], (x0 - test.mean[:, None]) / (test.std[:, None] + 1e-5))


@requires_aeon
def test_basic_motions_ts_and_arff_agree():
    base = aeon_data_dir() / "BasicMotions"
    a, b = read_ts(base / "BasicMotions_TRAIN.ts"), read_arff(base / "BasicMotions_TRAIN.arff")
    assert len(a.series) == 40 and a.series[0].shape == (6, 100)
    assert a.labels == b.labels and all(np.allclose(x, y) for x, y in zip(a.series, b.series))
