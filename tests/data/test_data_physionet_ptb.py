import numpy as np
import pytest
import torch

from ckconv.data.physionet import PSV_COLUMNS, PhysioNet2019, read_psv
from ckconv.data.ptb import EOS, CharPTB, read_ptb_chars


def _psv(path, rows):
    lines = ["|".join(PSV_COLUMNS)]
    for r in rows:
        lines.append(
            "|".join("NaN" if (isinstance(v, float) and np.isnan(v)) else repr(float(v)) for v in r)
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(iculos, hr=np.nan, sepsis=0, age=60.0, unit1=1.0):
    r = [np.nan] * 41
    r[0] = hr
    r[34], r[35], r[36], r[37], r[38] = age, 1.0, unit1, np.nan, -10.0
    r[39], r[40] = iculos, sepsis
    return r


def _physionet_root(tmp_path, n=40):
    d = tmp_path / "training_setA"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        septic = i % 4 == 0
        hours = (
            list(range(1, 80)) if i % 5 == 0 else [1, 2, 4, 5, 6]
        )  # some stays exceed 72 h; gaps
        rows = [
            _row(
                h,
                hr=float(rng.normal(80, 10)) if h % 2 else np.nan,
                sepsis=int(septic and h >= 3),
                age=float(50 + i),
            )
            for h in hours
        ]
        _psv(d / f"p{i:06d}.psv", rows)
    _psv(d / "p999999.psv", [_row(1, 70.0), _row(2, 71.0)])  # 2 hours only: dropped
    return tmp_path


def test_read_psv_and_errors(tmp_path):
    p = _psv(tmp_path / "p1.psv", [_row(1, 80.0), _row(2)])
    t = read_psv(p)
    assert t.shape == (2, 41) and t[0, 0] == 80 and np.isnan(t[1, 0]) and t[1, 39] == 2
    bad = tmp_path / "bad.psv"
    bad.write_text(p.read_text().rsplit("|", 3)[0] + "\n")
    with pytest.raises(ValueError, match=r"bad\.psv:3: expected 41 fields"):
        read_psv(bad)
    hdr = tmp_path / "hdr.psv"
    hdr.write_text("a|b|c\n1|2|3\n")
    with pytest.raises(ValueError, match=r"hdr\.psv:1: header"):
        read_psv(hdr)


def test_physionet_kidger_preprocessing(tmp_path):
    root = _physionet_root(tmp_path)
    splits = {s: PhysioNet2019(root, s) for s in ("train", "val", "test")}
    assert sum(len(s) for s in splits.values()) == 40  # the 2-hour stay is dropped
    x, y = splits["train"][0]
    assert x.shape == (34 + 34 + 5, 72) and y.dtype == torch.int64
    all_x = torch.cat([s.inputs for s in splits.values()])
    all_len = torch.cat([s.lengths for s in splits.values()])
    assert set(all_len.tolist()) == {6, 72}  # stays cut at 72 hours; length = last ICULOS kept
    observed = all_x[:, 34:68]
    # HR observed exactly at the odd hours present in the file (index = ICULOS - 1)
    short = all_x[all_len == 6][0]
    assert short[34].tolist()[:7] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert observed[:, 1:].sum() == 0  # other measurements never observed
    assert (all_x[:, 0][observed[:, 0] == 0] == 0).all()  # missing -> 0
    # HR standardised with training statistics only
    tr = splits["train"]
    hr = tr.inputs[:, 0][tr.inputs[:, 34] == 1]
    assert abs(hr.mean().item()) < 1e-4 and abs(hr.std(unbiased=False).item() - 1) < 1e-3
    # labels: septic after hour 3 -> 1 for every 4th stay; stratified into each split
    labels = torch.cat([s.targets for s in splits.values()])
    assert int(labels.sum()) == 10
    # static channels constant over time
    assert torch.allclose(x[68:], x[68:, :1].expand(-1, 72))


def test_physionet_label_window_and_observed_options(tmp_path):
    d = tmp_path / "training"
    d.mkdir()
    for i in range(10):  # sepsis only after 72 hours for half of the stays
        late = i % 2 == 0
        _psv(d / f"p{i}.psv", [_row(h, 70.0, sepsis=int(late and h > 75)) for h in range(1, 80)])
    win = torch.cat([PhysioNet2019(tmp_path, s).targets for s in ("train", "val", "test")])
    stay = torch.cat(
        [PhysioNet2019(tmp_path, s, label_window="stay").targets for s in ("train", "val", "test")]
    )
    assert int(win.sum()) == 0 and int(stay.sum()) == 5
    inten = PhysioNet2019(tmp_path, "train", observed="intensity", static=False)
    assert inten[0][0].shape == (68, 72)
    assert inten[0][0][34].tolist() == [float(h) for h in range(1, 73)]  # cumulative HR count
    with pytest.raises(FileNotFoundError, match="PhysioNet2019"):
        PhysioNet2019(tmp_path / "empty")


def _ptb_root(tmp_path):
    d = tmp_path / "ptb"
    d.mkdir()
    (d / "ptb.char.train.txt").write_text("a b _ c\nb a\n" * 20)
    (d / "ptb.char.valid.txt").write_text("c a b _ a\n" * 10)
    (d / "ptb.char.test.txt").write_text("b _ d\n" * 10)
    return tmp_path


def test_char_ptb(tmp_path):
    root = _ptb_root(tmp_path)
    assert read_ptb_chars(root / "ptb" / "ptb.char.train.txt")[:6] == ["a", "b", "_", "c", EOS, "b"]
    train = CharPTB(root, "train", seq_len=10)
    assert train.vocab == {"a": 0, "b": 1, "_": 2, "c": 3, EOS: 4, "d": 5}
    x, y = train[1]
    assert x.dtype == torch.int64 and x.shape == (10,) and torch.equal(x[1:], y[:-1])
    assert torch.equal(x, train.tokens[10:20]) and torch.equal(y, train.tokens[11:21])
    assert len(train) == (len(train.tokens) - 1 - 10) // 10 + 1
    test = CharPTB(root, "test", seq_len=5, stride=3)
    assert test.vocab == train.vocab and test[1][0].tolist() == test.tokens[3:8].tolist()
    (root / "ptb" / "ptb.char.valid.txt").write_text("ab c\n")
    with pytest.raises(ValueError, match=r"ptb\.char\.valid\.txt:1: expected single characters"):
        CharPTB(root, "val")
