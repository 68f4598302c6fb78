"""The synthetic shapes tasks of the registry (``shapes``, ``shapes_voxel``): offline, listed,
deterministic and disjoint splits, options checked with clear errors."""

import numpy as np
import pytest
import torch

from ckconv.app.data_command import main_data_list
from ckconv.data.modelnet import voxelize
from ckconv.data.registry import TASKS, list_tasks, make_datasets
from ckconv.data.shapes import (
    SHAPE_CLASSES,
    CubeNormalize,
    SyntheticShapes,
    VoxelCentres,
    occupied_voxel_centres,
)

SMALL = {"num_points": 32, "train_size": 24, "val_size": 16, "test_size": 16}
SMALL_VOXEL = {"grid": 16, "num_points": 64, "raw_points": 256, **{k: 16 for k in
               ("train_size", "val_size", "test_size")}}  # fmt: skip


def _columns_in(a, b):
    """Whether every column of ``a (3, n)`` is exactly a column of ``b (3, m)``."""
    return bool((a.T[:, None, :] == b.T[None, :, :]).all(-1).any(1).all())


def _all(ds):
    return [ds[i] for i in range(len(ds))]


def test_shapes_tasks_are_listed_as_generated(tmp_path, capsys):
    rows = {r.name: r for r in list_tasks(tmp_path)}
    for name in ("shapes", "shapes_voxel"):
        assert rows[name].found, name
        assert TASKS[name].num_classes == len(SHAPE_CLASSES)
    assert main_data_list(["--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["shapes"][1:4] == ["6x512", "8", "generated"]
    assert lines["shapes_voxel"][1:4] == ["3x256", "8", "generated"]


@pytest.mark.parametrize("name, options", [("shapes", SMALL), ("shapes_voxel", SMALL_VOXEL)])
def test_splits_are_deterministic_and_disjoint(name, options):
    a = make_datasets(name, **options)
    b = make_datasets(name, **options)
    assert {s: len(d) for s, d in a.items()} == {"train": 24 if name == "shapes" else 16,
                                                  "val": 16, "test": 16}  # fmt: skip
    clouds = {}
    for split in ("train", "val", "test"):
        items_a, items_b = _all(a[split]), _all(b[split])
        for (xa, ya), (xb, yb) in zip(items_a, items_b):
            assert torch.equal(xa, xb) and int(ya) == int(yb)
        # reading an item twice, or out of order, gives the same cloud
        assert torch.equal(a[split][5][0], items_a[5][0])
        assert [int(y) for _, y in items_a] == [i % 8 for i in range(len(items_a))]
        clouds[split] = torch.stack([x for x, _ in items_a])
    # no cloud of one split appears in another (nor twice in one split)
    flat = torch.cat([c.flatten(1) for c in clouds.values()])
    assert torch.cdist(flat, flat).add(torch.eye(len(flat)) * 1e9).min() > 0.1
    other_seed = make_datasets(name, **options, seed=1)
    assert not torch.equal(other_seed["test"][0][0], a["test"][0][0])


def test_shapes_items_are_the_library_dataset():
    splits = make_datasets("shapes", **SMALL, noise=0.0, rotation="none")
    ref = SyntheticShapes("val", size=16, num_points=32, noise=0.0, rotation="none")
    for i in (0, 7, 15):
        assert torch.equal(splits["val"][i][0], ref[i][0])
        assert int(splits["val"][i][1]) == int(ref[i][1])


def test_shapes_options():
    x, y = make_datasets("shapes", **SMALL)["train"][3]
    assert x.shape == (6, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    positions = make_datasets("shapes", **SMALL, normals=False)["train"][3][0]
    assert torch.equal(positions, x[:3])
    # normals are unit vectors, positions within the (scaled, jittered) unit ball
    assert torch.allclose(x[3:].norm(dim=0), torch.ones(32), atol=1e-5)
    assert x[:3].norm(dim=0).max() < 1.1
    three = make_datasets("shapes", **SMALL, classes=3)["train"]
    assert sorted({int(three[i][1]) for i in range(len(three))}) == [0, 1, 2]
    named = make_datasets("shapes", **SMALL, classes=["torus", "sphere"])["train"]
    assert int(named[1][1]) == 1 and named.classes == ("torus", "sphere")


def test_occupied_voxel_centres_equal_the_dense_voxelisation():
    for i, grid in ((0, 4), (5, 16), (11, 32)):
        x = SyntheticShapes("train", size=12, num_points=300)[i][0]
        features, occupied = voxelize(x[:3], grid)  # the dense grid: every cell, then a mask
        assert torch.equal(occupied_voxel_centres(x[:3], grid), features[:, occupied])
        assert torch.equal(VoxelCentres(grid)(x), features[:, occupied])


def test_voxel_items_are_occupied_voxels_and_test_on_points_gives_raw_points():
    opts = {**SMALL_VOXEL, "noise": 0.0}
    vox = make_datasets("shapes_voxel", **opts)
    pts = make_datasets("shapes_voxel", **opts, test_on="points")
    raw = SyntheticShapes("test", size=16, num_points=256, noise=0.0)
    for i in (0, 9):
        xv, yv = vox["test"][i]
        xp, yp = pts["test"][i]
        assert xv.shape == xp.shape == (3, 64) and int(yv) == int(yp) == int(raw[i][1])
        centres = VoxelCentres(16)(raw[i][0])
        # voxel items: distinct occupied-voxel centres of the test object
        assert _columns_in(xv, centres)
        assert len(torch.unique(xv.T, dim=0)) == 64
        # point items: raw points of the same object, in the voxel frame, off the lattice
        cube = CubeNormalize()(raw[i][0])
        assert _columns_in(xp, cube)
        assert not (xp.T[:, None, :] == centres.T[None, :, :]).all(-1).any()
    # validation stays on voxels (model selection never sees points)
    assert torch.equal(pts["val"][2][0], vox["val"][2][0])
    assert torch.equal(pts["train"][2][0], vox["train"][2][0])


@pytest.mark.parametrize(
    "name, options, words",
    [
        ("shapes", {"num_points": 0}, ["num_points", "0"]),
        ("shapes", {"train_size": -3}, ["train_size", "-3"]),
        ("shapes", {"val_size": 2.5}, ["val_size", "2.5"]),
        ("shapes", {"classes": 9}, ["classes", "9"]),
        ("shapes", {"classes": ["sphere", "blob"]}, ["classes", "blob"]),
        ("shapes", {"classes": "sphere"}, ["classes", "'sphere'"]),
        ("shapes", {"rotation": "x"}, ["rotation", "'x'"]),
        ("shapes", {"noise": -0.1}, ["noise", "-0.1"]),
        ("shapes", {"normals": "yes"}, ["normals", "'yes'"]),
        ("shapes_voxel", {"test_on": "mesh"}, ["test_on", "'mesh'"]),
        ("shapes_voxel", {"grid": 0}, ["grid", "0"]),
        ("shapes_voxel", {"num_points": 300, "raw_points": 200}, ["num_points=300", "200"]),
    ],
)
def test_bad_options_name_the_option(name, options, words):
    with pytest.raises(ValueError) as err:
        make_datasets(name, **options)
    for word in words:
        assert word in str(err.value)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="num_point"):
        make_datasets("shapes", num_point=64)
    with pytest.raises(TypeError, match="normals"):
        make_datasets("shapes_voxel", normals=False)


def test_too_few_occupied_voxels_is_a_clear_error():
    ds = make_datasets("shapes_voxel", grid=2, num_points=16, raw_points=64, train_size=4)
    with pytest.raises(ValueError, match=r"train item 1 occupies \d voxels of the 2\^3 grid"):
        ds["train"][1]


def test_voxel_subsets_do_not_depend_on_access_order():
    a = make_datasets("shapes_voxel", **SMALL_VOXEL)["train"]
    first = [a[i][0] for i in (3, 1, 3)]
    assert torch.equal(first[0], first[2])
    b = make_datasets("shapes_voxel", **SMALL_VOXEL)["train"]
    assert torch.equal(b[1][0], first[1])
    assert np.isfinite(first[0].numpy()).all()
