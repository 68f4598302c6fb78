import numpy as np
import pytest
import torch

from ckconv.data.lra import LISTOPS_VOCAB, ListOps, LRAImage, LRAText, Pathfinder, read_listops_tsv
from ckconv.data.modelnet import (
    ModelNet,
    normalize_points,
    read_off,
    read_resampled,
    sample_surface,
    voxelize,
)

LISTOPS = (
    "Source\tTarget\n"
    "( ( ( [MAX 2 9 ) ( ( [MIN 4 7 ) 0 ) ] ) ] )\t9\n"
    "[SM 1 2 3 ]\t6\n"
    "( [MED 5 ( [MAX 1 3 ] ) 8 ] )\t5\n"
)


def _listops_root(tmp_path):
    d = tmp_path / "lra_release" / "listops-1000"
    d.mkdir(parents=True)
    for split in ("train", "val", "test"):
        (d / f"basic_{split}.tsv").write_text(LISTOPS)
    return tmp_path


def test_listops_tokens(tmp_path):
    root = _listops_root(tmp_path)
    seqs, labels = read_listops_tsv(root / "lra_release/listops-1000/basic_train.tsv")
    assert labels.tolist() == [9, 6, 5]
    ids = {t: i for i, t in enumerate(LISTOPS_VOCAB)}
    assert seqs[1] == [ids["[SM"], ids["1"], ids["2"], ids["3"], ids["]"]]
    assert len(seqs[0]) == 9  # parentheses removed: [MAX 2 9 [MIN 4 7 0 ] ]
    ds = ListOps(root, "val", max_length=8)
    x, y = ds[0]
    assert x.shape == (8,) and x.dtype == torch.int64 and int(y) == 9
    assert ds.lengths.tolist() == [8, 5, 8] and ds[1][0][5:].tolist() == [0, 0, 0]
    assert 0 not in seqs[0]  # 0 is padding only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Src\tTgt\n", "header must be"),
        ("Source\tTarget\n[MAX 1 2 ]\n", r":2: expected 2 tab-separated"),
        ("Source\tTarget\n[MAX 1 2 ]\tx\n", "is not an integer"),
        ("Source\tTarget\n[AVG 1 2 ]\t1\n", r"unknown ListOps token '\[AVG'"),
    ],
)
def test_listops_errors(tmp_path, text, message):
    p = tmp_path / "basic_train.tsv"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_listops_tsv(p)


def test_lra_text_bytes(tmp_path):
    for part in ("train", "test"):
        for sub, n in (("pos", 6), ("neg", 4)):
            d = tmp_path / "aclImdb" / part / sub
            d.mkdir(parents=True)
            for k in range(n):
                (d / f"{k}_7.txt").write_text(f"{sub} review {k} é")
    test = LRAText(tmp_path, "test", max_length=16)
    assert len(test) == 10 and test.targets.tolist() == [0] * 4 + [1] * 6
    x, _ = test[0]
    raw = "neg review 0 é".encode()
    assert x[: len(raw)].tolist() == [b + 1 for b in raw] and x[len(raw) :].tolist() == [0] * (
        16 - len(raw)
    )
    tr, va = (
        LRAText(tmp_path, "train", val_fraction=0.2),
        LRAText(tmp_path, "val", val_fraction=0.2),
    )
    assert (len(tr), len(va)) == (8, 2)


def test_lra_image_is_grey_sequence(tmp_path, fab, rng):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        fab.cifar_batch(d / name, rng.integers(0, 256, (4, 3072), dtype=np.uint8), [0, 1, 2, 3])
    ds = LRAImage(tmp_path, "test", val_size=2)
    assert ds[0][0].shape == (1, 1024)
    assert LRAImage(tmp_path, "train", layout="image", val_size=2)[0][0].shape == (1, 32, 32)
    with pytest.raises(ValueError, match=r"hold-out \(5000\) must be smaller than the 20"):
        LRAImage(tmp_path, "test")


def _pathfinder_root(tmp_path, n_files=2, per_file=5):
    from PIL import Image

    base = tmp_path / "lra_release" / "pathfinder32" / "curv_contour_length_14"
    rng = np.random.default_rng(0)
    arrays = {}
    for f in range(n_files):
        (base / "imgs" / str(f)).mkdir(parents=True)
        lines = []
        for k in range(per_file):
            arr = rng.integers(0, 256, (32, 32), dtype=np.uint8)
            Image.fromarray(arr, mode="L").save(base / "imgs" / str(f) / f"sample_{k}.png")
            label = (f + k) % 2
            lines.append(f"imgs/{f} sample_{k}.png 0 {label} 0.5 1.0 2 3 4")
            arrays[(f, k)] = (arr, label)
        (base / "metadata").mkdir(exist_ok=True)
        (base / "metadata" / f"{f}.npy").write_text("\n".join(lines) + "\n")
    (base / "imgs" / "0" / "empty.png").write_bytes(b"")
    with open(base / "metadata" / "0.npy", "a") as fh:
        fh.write("imgs/0 empty.png 0 1\n")  # empty images are skipped, as LRA does
    return tmp_path, arrays


def test_pathfinder_png_metadata_and_split(tmp_path):
    root, arrays = _pathfinder_root(tmp_path)
    splits = {s: Pathfinder(root, s, normalize=False) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    x, y = splits["train"][6]  # metadata order: file 0 (5 examples) then file 1
    arr, label = arrays[(1, 1)]
    assert x.shape == (1, 1024) and int(y) == label
    torch.testing.assert_close(x, torch.from_numpy(arr.reshape(1, -1) / 255.0).float())
    img = Pathfinder(root, "train", layout="image")
    torch.testing.assert_close(img[6][0], (x.reshape(1, 32, 32) - 0.5) / 0.5)
    broken = root / "lra_release/pathfinder32/curv_contour_length_14/imgs/1/sample_4.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=r"sample_4\.png: cannot decode"):
        splits["test"][0]


OFF_FUSED = """OFF4 4 0
0 0 0
1 0 0
0 1 0
0 0 1
3 0 2 1
3 0 1 3
3 0 3 2
3 1 2 3
"""


def test_off_fused_header_quad_and_errors(tmp_path):
    p = tmp_path / "fused.off"
    p.write_text(OFF_FUSED)
    v, f = read_off(p)
    assert v.shape == (4, 3) and f.shape == (4, 3) and f[0].tolist() == [0, 2, 1]
    q = tmp_path / "quad.off"
    q.write_text("OFF\n# a comment\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3 255 0 0\n")
    v, f = read_off(q)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3]]
    t = tmp_path / "trunc.off"
    t.write_text(OFF_FUSED.rsplit("\n", 3)[0])
    with pytest.raises(ValueError, match=r"trunc\.off: truncated OFF file"):
        read_off(t)
    r = tmp_path / "range.off"
    r.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises(ValueError, match=r"range\.off:6: face .*vertex index out of range"):
        read_off(r)
    h = tmp_path / "nohdr.off"
    h.write_text("3 1 0\n")
    with pytest.raises(ValueError, match="missing 'OFF' header"):
        read_off(h)


def test_surface_sampling_is_area_weighted_with_unit_normals():
    # unit square in z=0 (area 1) plus a 1x3 rectangle in x=5 (area 3), each as two triangles
    v = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [5, 0, 0], [5, 3, 0], [5, 3, 1], [5, 0, 1]],
        dtype=float,
    )
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    pts, nrm = sample_surface(v, f, 20000, np.random.default_rng(0))
    on_rect = np.isclose(pts[:, 0], 5)
    assert abs(on_rect.mean() - 0.75) < 0.015
    sq = pts[~on_rect]
    assert np.allclose(sq[:, 2], 0) and (sq[:, :2] >= 0).all() and (sq[:, :2] <= 1).all()
    assert abs(sq[:, 0].mean() - 0.5) < 0.02 and abs(sq[:, 1].mean() - 0.5) < 0.02  # uniform
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0)
    assert np.allclose(np.abs(nrm[~on_rect]), [0, 0, 1]) and np.allclose(
        np.abs(nrm[on_rect]), [1, 0, 0]
    )
    unit = normalize_points(pts)
    assert np.isclose(np.linalg.norm(unit, axis=1).max(), 1.0) and np.allclose(
        unit.mean(0), 0, atol=1e-12
    )


def test_modelnet_off_dataset(tmp_path):
    for cls in ("chair", "airplane"):
        for split in ("train", "test"):
            d = tmp_path / "ModelNet40" / cls / split
            d.mkdir(parents=True)
            for k in range(2):
                (d / f"{cls}_{k:04d}.off").write_text(OFF_FUSED)
    train = ModelNet(tmp_path, "train")
    assert train.classes == ["airplane", "chair"] and len(train) == 4
    x, y = train[3]
    assert x.shape == (6, 512) and int(y) == 1
    torch.testing.assert_close(x[3:].norm(dim=0), torch.ones(512))
    assert torch.equal(train[3][0], x)  # same index, same sample
    assert not torch.equal(train[2][0], x)  # another index, other points
    with pytest.raises(ValueError, match="split must be one of"):
        ModelNet(tmp_path, "val")


def test_modelnet_resampled_format(tmp_path):
    d = tmp_path / "modelnet40_normal_resampled"
    (d / "chair").mkdir(parents=True)
    (d / "modelnet40_shape_names.txt").write_text("airplane\nchair\n")
    (d / "modelnet40_train.txt").write_text("chair_0001\n")
    (d / "modelnet40_test.txt").write_text("chair_0002\n")
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(600, 6))
    for sid in ("chair_0001", "chair_0002"):
        (d / "chair" / f"{sid}.txt").write_text(
            "\n".join(",".join(f"{v:.6f}" for v in r) for r in pts)
        )
    ds = ModelNet(tmp_path, "train")
    x, y = ds[0]
    assert ds.file_format == "resampled" and int(y) == 1 and x.shape == (6, 512)
    first = read_resampled(d / "chair" / "chair_0001.txt", 512)
    np.testing.assert_allclose(x[:3].numpy().T, normalize_points(first[:, :3]), atol=1e-5)
    np.testing.assert_allclose(x[3:].numpy().T, first[:, 3:], atol=1e-5)
    with pytest.raises(ValueError, match="has 600 points, 1000 requested"):
        read_resampled(d / "chair" / "chair_0001.txt", 1000)


def test_voxelize():
    pts = torch.tensor([[-1.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [-1.0, 1.0, 0.02]])
    feats, occ = voxelize(pts, grid=4)
    assert occ.sum() == 3 and feats.shape == (3, 4, 4, 4)
    assert occ[0, 0, 0] and occ[3, 3, 3]
    torch.testing.assert_close(feats[:, 0, 0, 0], torch.full((3,), -0.75))
    assert feats[:, ~occ].abs().sum() == 0


def _fabricate_modelnet10(root):
    for cls in ("bed", "chair"):
        for split in ("train", "test"):
            d = root / "ModelNet10" / cls / split
            d.mkdir(parents=True)
            for k in range(2):
                (d / f"{cls}_{k:04d}.off").write_text(OFF_FUSED)


def test_modelnet10_voxel_task_is_ccnn_voxel_centres_and_transfers_to_points(tmp_path):
    from ckconv.data.registry import make_datasets

    _fabricate_modelnet10(tmp_path)
    grid = 8
    vox = make_datasets("modelnet10_voxel", tmp_path, grid=grid, num_points=40, raw_points=400)
    pts = make_datasets(
        "modelnet10_voxel", tmp_path, grid=grid, num_points=40, raw_points=400, test_on="points"
    )
    x, y = vox["train"][3]
    assert x.shape == (3, 40) and int(y) == 1
    # every point is the centre of a voxel of the 8^3 lattice on [-1, 1]^3 ...
    index = (x + 1) / 2 * grid - 0.5
    torch.testing.assert_close(index, index.round(), atol=1e-5, rtol=0)
    # ... and exactly a voxel that the raw points occupy (independent oracle: voxelize)
    raw, _ = ModelNet(tmp_path, "train", name="ModelNet10", num_points=400)[3]
    _, occupied = voxelize(raw[:3], grid)
    cells = index.round().long()
    assert occupied[cells[0], cells[1], cells[2]].all()
    assert len({tuple(c) for c in cells.T.tolist()}) == 40  # distinct voxels (enough occupied)
    # train/val on voxels in both variants; only the test split changes with test_on
    assert torch.equal(pts["train"][3][0], x) and torch.equal(pts["val"][0][0], vox["val"][0][0])
    p, _ = pts["test"][1]
    v, _ = vox["test"][1]
    off = (p + 1) / 2 * grid - 0.5
    assert (off - off.round()).abs().max() > 0.05  # raw points leave the lattice
    # same frame: the raw test points fall in the voxels the voxel version occupies
    pcells = {tuple(c) for c in off.round().long().clamp(0, grid - 1).T.tolist()}
    _, occ_test = voxelize(
        ModelNet(tmp_path, "test", name="ModelNet10", num_points=400)[1][0][:3], grid
    )
    assert all(occ_test[c] for c in pcells)
    assert v.shape == p.shape == (3, 40)


def test_modelnet10_voxel_repeats_voxels_of_small_objects_and_checks_options(tmp_path):
    from ckconv.data.registry import make_datasets

    _fabricate_modelnet10(tmp_path)
    ds = make_datasets("modelnet10_voxel", tmp_path, grid=2, num_points=50, raw_points=400)
    x, _ = ds["train"][0]
    # a tetrahedron on a 2^3 grid occupies at most 8 voxels: the 50 points repeat them
    assert x.shape == (3, 50) and len({tuple(c) for c in x.T.tolist()}) <= 8
    assert torch.equal(ds["train"][0][0], x)  # deterministic
    with pytest.raises(ValueError, match="test_on must be"):
        make_datasets("modelnet10_voxel", tmp_path, test_on="mesh")
    with pytest.raises(ValueError, match="num_points=600 must be at most raw_points=400"):
        make_datasets("modelnet10_voxel", tmp_path, num_points=600, raw_points=400)
