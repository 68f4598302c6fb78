"""Your own data through the app: each route (a UEA .ts folder, an .npz of arrays, an image
folder, a point folder) built from files fabricated in the real layouts, trained one epoch with
`ckconv train` and no --config (the default model sized from the data), then `ckconv eval`,
`eval --rate` (grid routes), `export` and `plot kernels` on the checkpoint alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ckconv.app.cli import main

TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.batch_size=8",
    "trainer.progress_bar=false",
    "model.hidden_channels=4",
    "model.num_blocks=1",
]


def _train(tmp_path, capsys, *overrides) -> tuple[str, str]:
    """Train through the CLI; the best checkpoint and the printed log."""
    code = main(["train", *overrides, *TINY, f"trainer.out_dir={tmp_path / 'runs'}"])
    out = capsys.readouterr().out
    assert code == 0, out
    (run,) = (tmp_path / "runs" / "run").iterdir()
    return str(run / "checkpoints" / "best.ckpt"), out


def _eval(capsys, checkpoint, *args) -> dict[str, float]:
    assert main(["eval", "--checkpoint", checkpoint, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _accuracy(checkpoint, overrides=None, rate=None) -> float:
    """The test accuracy by hand: the rebuilt model on the whole test split at once."""
    from ckconv.app.evaluation import load_model
    from ckconv.app.resample import resample_input

    model, _, bundle = load_model(checkpoint, overrides)
    items = [bundle.datasets["test"][i] for i in range(len(bundle.datasets["test"]))]
    x = torch.stack([it[0] for it in items])
    if rate is not None:
        x = torch.stack([resample_input(v, rate, False) for v in x])
    y = torch.stack([torch.as_tensor(it[1]) for it in items])
    with torch.no_grad():
        out = model(x) if rate is None else model(x, rate=rate)
    return float((out.argmax(1) == y).double().mean())


def _export_and_plot(tmp_path, capsys, checkpoint, *export_args) -> None:
    out = tmp_path / "model.pt2"
    code = main(["export", "--checkpoint", checkpoint, "--format", "pt2", "--out", str(out),
                 *export_args])  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert torch.export.load(out) is not None
    assert main(["plot", "kernels", "--checkpoint", checkpoint, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "kernels.png").stat().st_size > 0
    capsys.readouterr()


def test_uea_folder_trains_evaluates_exports_and_moves(tmp_path, capsys, fabricate, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fabricate.ts(tmp_path / "mydata" / "GunPoint", "GunPoint", n_per_class=10, length=24)
    checkpoint, log = _train(tmp_path, capsys, "task.name=uea", "task.path=mydata/GunPoint")
    # the validation split came out of the training file, and the log says how
    assert "val split: held out of the training data, 0.15 of GunPoint_TRAIN.ts" in log
    assert "model ccnn" in log  # the default model for sequences
    metrics = _eval(capsys, checkpoint)
    assert metrics["test/acc"] == pytest.approx(_accuracy(checkpoint))
    half = _eval(capsys, checkpoint, "--rate", "1/2")
    assert half["test/acc"] == pytest.approx(_accuracy(checkpoint, rate=0.5))
    _export_and_plot(tmp_path, capsys, checkpoint)
    # the data moves: the recorded path is absolute, and task.path=... points elsewhere
    moved = tmp_path / "elsewhere" / "GunPoint"
    moved.parent.mkdir()
    (tmp_path / "mydata" / "GunPoint").rename(moved)
    assert main(["eval", "--checkpoint", checkpoint]) == 2
    assert "GunPoint" in capsys.readouterr().err
    again = _eval(capsys, checkpoint, f"task.path={moved}")
    assert again == pytest.approx(metrics)


def _build(*overrides):
    from ckconv.app.config import load_config
    from ckconv.app.tasks import build_task

    return build_task(load_config(None, list(overrides)))


def _data_lines(path) -> int:
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "@data")
    return sum(1 for ln in lines[start + 1 :] if ln.strip())


def test_uea_train_file_or_folder_or_aeon_problem(tmp_path, fabricate):
    """A folder with one problem, its TRAIN file and its name in aeon's wheel all work; the
    splits hold every case of the files (val is cut out of TRAIN)."""
    from ckconv.app.config import ConfigError
    from ckconv.data.uea import aeon_data_dir

    folder = fabricate.ts(tmp_path / "Whatever", "Wave", n_per_class=6, channels=2, length=(9, 14))
    a = _build("task.name=uea", f"task.path={folder}")
    b = _build("task.name=uea", f"task.path={folder / 'Wave_TRAIN.ts'}")
    assert len(a.datasets["train"]) + len(a.datasets["val"]) == 12
    assert len(a.datasets["test"]) == 12 and a.spec.in_channels == 2
    assert a.spec.input_size == (13,)  # padded to the longest case with its last value
    assert torch.equal(a.datasets["test"][3][0], b.datasets["test"][3][0])
    with pytest.raises(ConfigError, match="not both"):
        _build("task.name=uea", f"task.path={folder}", "task.problem=GunPoint")
    with pytest.raises(ConfigError, match="holds no <Name>_TRAIN"):
        _build("task.name=uea", f"task.path={tmp_path}")
    if aeon_data_dir() is None:
        pytest.skip("the aeon wheel is not installed")
    gun = _build("task.name=uea", "task.problem=GunPoint")
    train_file = aeon_data_dir() / "GunPoint" / "GunPoint_TRAIN.ts"
    test_file = aeon_data_dir() / "GunPoint" / "GunPoint_TEST.ts"
    n = len(gun.datasets["train"]) + len(gun.datasets["val"])
    assert n == _data_lines(train_file)
    assert len(gun.datasets["test"]) == _data_lines(test_file)
    with pytest.raises(ConfigError, match="bundled"):
        _build("task.name=uea", "task.problem=NoSuchProblem")


def _arrays(rng, n, shape, classes=True):
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, 3, n) if classes else rng.standard_normal(n).astype(np.float32)
    if classes:  # learnable: the label shifts channel 0
        x[:, 0] += y.reshape(-1, *([1] * (len(shape) - 1)))
    return x, y


def test_arrays_npz_trains_evaluates_and_exports(tmp_path, capsys):
    rng = np.random.default_rng(0)
    xtr, ytr = _arrays(rng, 40, (2, 16))
    xte, yte = _arrays(rng, 12, (2, 16))
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    checkpoint, log = _train(tmp_path, capsys, "task.name=arrays", f"task.path={path}")
    assert "val split: held out of the training data, 0.15 of mine.npz x_train" in log
    metrics = _eval(capsys, checkpoint)
    assert metrics["test/acc"] == pytest.approx(_accuracy(checkpoint))
    half = _eval(capsys, checkpoint, "--rate", "1/2")
    assert half["test/acc"] == pytest.approx(_accuracy(checkpoint, rate=0.5))
    _export_and_plot(tmp_path, capsys, checkpoint)


def test_arrays_kinds_are_read_from_the_data(tmp_path):
    """Float targets are regression, int labels classification; images and volumes are grids
    of 2 and 3 dimensions; a .pt dict reads as the .npz; times/mask give timestamped items."""
    rng = np.random.default_rng(1)
    xtr, ytr = _arrays(rng, 20, (1, 12), classes=False)
    np.savez(tmp_path / "reg.npz", x_train=xtr, y_train=ytr, x_test=xtr[:5], y_test=ytr[:5],
             x_val=xtr[:4], y_val=ytr[:4])  # fmt: skip
    reg = _build("task.name=arrays", f"task.path={tmp_path / 'reg.npz'}")
    assert reg.objective.kind == "regression" and reg.out_channels == 1
    assert len(reg.datasets["val"]) == 4 and reg.held_out == {}
    for shape, dim in (((3, 6, 5), 2), ((1, 4, 4, 4), 3)):
        x, y = _arrays(rng, 20, shape)
        torch.save({"x_train": torch.from_numpy(x), "y_train": torch.from_numpy(y),
                    "x_test": torch.from_numpy(x[:6]), "y_test": torch.from_numpy(y[:6])},
                   tmp_path / "grid.pt")  # fmt: skip
        grid = _build("task.name=arrays", f"task.path={tmp_path / 'grid.pt'}")
        assert grid.spec.data_dim == dim and grid.spec.input_size == shape[1:]
        assert grid.objective.kind == "classification" and grid.out_channels == 3
        assert torch.equal(grid.datasets["test"][5][0], torch.from_numpy(x[5]))
    mask = rng.random((20, 12)) > 0.3
    np.savez(tmp_path / "ts.npz", x_train=xtr, y_train=(ytr > 0).astype(np.int64),
             mask_train=mask, x_test=xtr[:5], y_test=(ytr[:5] > 0).astype(np.int64),
             mask_test=mask[:5])  # fmt: skip
    ts = _build("task.name=arrays", f"task.path={tmp_path / 'ts.npz'}")
    assert ts.spec.timestamps and ts.collate == "timestamps"
    (_values, times, keep), _ = ts.datasets["test"][2]
    assert torch.equal(keep, torch.from_numpy(mask[2])) and torch.equal(times, torch.arange(12.0))


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x_train": np.zeros((4, 1, 8))}, "no 'y_train'"),
        ({"x_train": np.zeros((4, 8)), "y_train": np.zeros(4, int)}, "x_train must be"),
        ({"x_train": np.zeros((4, 1, 8)), "y_train": np.zeros(3, int)}, "y_train must be"),
        ({"x_train": np.zeros((4, 1, 8)), "y_train": np.zeros(4, int), "z": np.zeros(1)},
         "unknown array 'z'"),
    ],
)  # fmt: skip
def test_bad_arrays_files_name_the_array(tmp_path, arrays, words):
    from ckconv.app.config import ConfigError

    base = {"x_test": np.zeros((2, 1, 8)), "y_test": np.zeros(2, int)}
    np.savez(tmp_path / "bad.npz", **{**base, **arrays})
    with pytest.raises(ConfigError, match=words):
        _build("task.name=arrays", f"task.path={tmp_path / 'bad.npz'}")


def _image_folder(root, splits=("train", "test"), per_class=6, size=8):
    """Two classes of PNGs: bright left half or bright right half (grey, 8x8)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for k, cls in enumerate(("left", "right")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 60, (size, size)).astype(np.uint8)
                img[:, k * size // 2 : (k + 1) * size // 2] += 150
                Image.fromarray(img, mode="L").save(d / f"{i}.png")
    return root


def test_image_folder_trains_evaluates_and_exports(tmp_path, capsys):
    folder = _image_folder(tmp_path / "pics")
    checkpoint, log = _train(tmp_path, capsys, "task.name=image_folder", f"task.path={folder}")
    assert "val split: held out of the training data, 0.15 of pics/train" in log
    metrics = _eval(capsys, checkpoint)
    assert metrics["test/acc"] == pytest.approx(_accuracy(checkpoint))
    double = _eval(capsys, checkpoint, "--rate", "2")
    assert double["test/acc"] == pytest.approx(_accuracy(checkpoint, rate=2.0))
    _export_and_plot(tmp_path, capsys, checkpoint)


def test_image_folder_reads_pixels_classes_and_its_own_val(tmp_path):
    from PIL import Image

    folder = _image_folder(tmp_path / "pics", splits=("train", "val", "test"))
    bundle = _build("task.name=image_folder", f"task.path={folder}", "task.normalize=false")
    assert bundle.held_out == {} and bundle.spec.in_channels == 1
    x, y = bundle.datasets["test"][7]  # sorted classes: left = 0, right = 1; 6 per class
    pixels = np.asarray(Image.open(folder / "test" / "right" / "1.png"), dtype=np.float32)
    assert int(y) == 1 and torch.allclose(x[0], torch.from_numpy(pixels / 255))
    rgb = _build("task.name=image_folder", f"task.path={folder}", "task.grayscale=false",
                 "task.size=[4, 6]")  # fmt: skip
    assert rgb.spec.in_channels == 3 and rgb.spec.input_size == (4, 6)


def test_image_folder_decodes_each_training_image_once(tmp_path, monkeypatch):
    """Building the three splits decodes every training image once (their statistics); val and
    test take them from the training split and match datasets built on their own."""
    from PIL import Image

    from ckconv.data.builders import image_folder_task
    from ckconv.data.own import ImageFolder

    folder = _image_folder(tmp_path / "pics", splits=("train", "val", "test"))
    decodes: dict[str, int] = {}
    convert = Image.Image.convert

    def counted(image, *args, **kwargs):  # the reader decodes by converting to L / RGB
        decodes[image.filename] = decodes.get(image.filename, 0) + 1
        return convert(image, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", counted)
    splits = image_folder_task(None, path=str(folder))
    train_files = sorted(str(p) for p in (folder / "train").rglob("*.png"))
    assert sorted(decodes) == train_files and set(decodes.values()) == {1}
    monkeypatch.undo()
    for split in ("val", "test"):
        alone = ImageFolder(folder, split)
        built = splits[split]
        assert len(built) == len(alone) == 12
        for i in range(len(alone)):
            assert torch.equal(built[i][0], alone[i][0]) and int(built[i][1]) == int(alone[i][1])


def _point_folder(root, fabricate, per_split=4):
    """Two classes in <class>/{train,test}: .off meshes and binary .ply meshes."""
    from ckconv.data.modelnet import read_off

    fabricate.modelnet(root / "meshes", "M", per_split=per_split)
    for src in sorted((root / "meshes" / "M").rglob("*.off")):
        cls, split = src.parent.parent.name, src.parent.name
        dest = root / "mine" / cls / split
        dest.mkdir(parents=True, exist_ok=True)
        if src.stem.endswith(("1", "3")):
            verts, faces = read_off(src)
            fabricate.ply(dest / f"{src.stem}.ply", verts, faces, binary=True)
        else:
            src.rename(dest / src.name)
    return root / "mine"


def _raw_clouds(checkpoint, num_points=None):
    """The test clouds in the files' own coordinates (the reader without its normalisation)
    and their labels."""
    from ckconv.app.evaluation import load_model
    from ckconv.data.own import PointFolder

    overrides = None if num_points is None else [("task.num_points", num_points)]
    _, _, bundle = load_model(checkpoint, overrides)
    test = bundle.datasets["test"]
    raw = PointFolder(test.root, "test", num_points=test.num_points, normals=test.normals,
                      normalize=False, seed=test.seed)  # fmt: skip
    x = torch.stack([raw[i][0] for i in range(len(raw))])
    y = torch.tensor([int(raw[i][1]) for i in range(len(raw))])
    return x, y


def _runner(fmt, out):
    if fmt == "pt2":
        return torch.export.load(out).module()
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


@pytest.mark.parametrize("fmt", ["pt2", pytest.param("onnx", marks=pytest.mark.slow)])
def test_point_folder_trains_evaluates_and_exports(tmp_path, capsys, fabricate, fmt):
    """The exported point model takes clouds in the files' own coordinates (the reader's
    centring and scaling are in the artefact), any batch size, and the training data's points
    per cloud read off the checkpoint; on the raw test clouds it predicts what `ckconv eval`
    scores."""
    from ckconv.app.evaluation import load_model

    folder = _point_folder(tmp_path, fabricate)
    checkpoint, log = _train(tmp_path, capsys, "task.name=point_folder", f"task.path={folder}",
                             "task.num_points=32", "model.num_neighbors=8")  # fmt: skip
    assert "model point_ccnn" in log and "val split: held out" in log
    metrics = _eval(capsys, checkpoint)
    assert metrics["test/acc"] == pytest.approx(_accuracy(checkpoint))
    out = tmp_path / f"model.{fmt}"
    run_folder = str(tmp_path / "runs" / "run" / next((tmp_path / "runs" / "run").iterdir()))
    assert main(["export", "--checkpoint", run_folder, "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "input (2, 6, 32)" in printed and "normalised per cloud in the artefact" in printed
    run = _runner(fmt, out)
    model, _, bundle = load_model(checkpoint)
    test = bundle.datasets["test"]
    with torch.no_grad():
        expected = model(torch.stack([test[i][0] for i in range(len(test))]))
    x, y = _raw_clouds(checkpoint)
    assert x[:, :3].abs().max() > 1.5  # not in the unit ball: the artefact normalises them
    for batch in (3, 5):  # neither is the example's 2
        got = torch.cat([run(part) for part in x.split(batch)])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        assert float((got.argmax(1) == y).double().mean()) == pytest.approx(metrics["test/acc"])
    if fmt == "pt2":
        plot = ["plot", "kernels", "--checkpoint", checkpoint, "--out", str(tmp_path / "p")]
        assert main(plot) == 0
        assert "point convolutions" in capsys.readouterr().out
        assert (tmp_path / "p" / "kernels.png").stat().st_size > 0


def test_point_folder_at_another_density(tmp_path, capsys, fabricate):
    """Point models have no rate: `eval --rate 2` and `export --rate 2` are refused in one line
    naming task.num_points; `eval --rate 1` is the plain evaluation. `export --input-size 48`
    (trained with 32) is what `eval task.num_points=48` scores, on raw 48-point clouds."""
    folder = _point_folder(tmp_path, fabricate)
    checkpoint, _ = _train(tmp_path, capsys, "task.name=point_folder", f"task.path={folder}",
                           "task.num_points=32", "model.num_neighbors=8")  # fmt: skip
    assert main(["eval", "--checkpoint", checkpoint, "--rate", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task.num_points=64 (trained with 32)" in err
    assert _eval(capsys, checkpoint, "--rate", "1") == pytest.approx(_eval(capsys, checkpoint))
    out = tmp_path / "m48.pt2"
    argv = ["export", "--checkpoint", checkpoint, "--format", "pt2", "--out", str(out)]
    assert main([*argv, "--rate", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "takes no sampling rate" in err
    assert main([*argv, "--input-size", "48"]) == 0
    assert "48 points per cloud (trained with 32)" in capsys.readouterr().out
    dense = _eval(capsys, checkpoint, "task.num_points=48")
    x, y = _raw_clouds(checkpoint, 48)
    with torch.no_grad():
        got = torch.export.load(out).module()(x).argmax(1)
    assert float((got == y).double().mean()) == pytest.approx(dense["test/acc"])


def test_point_checkpoint_without_its_record_reads_the_data(tmp_path, capsys, fabricate):
    """A point checkpoint written before checkpoints recorded clouds (its record says
    'unknown') has its points per cloud and normalisation read off the task's data; with the
    data moved the refusal says what to pass, and task.path=... finds it."""
    from ckconv.app.module import CHECKPOINT_KEY

    folder = _point_folder(tmp_path, fabricate)
    checkpoint, _ = _train(tmp_path, capsys, "task.name=point_folder", f"task.path={folder}",
                           "task.num_points=16", "model.num_neighbors=4")  # fmt: skip
    contents = torch.load(checkpoint, weights_only=True)
    assert contents[CHECKPOINT_KEY]["input_preprocessing"]["num_points"] == 16
    contents[CHECKPOINT_KEY]["input_preprocessing"] = {"kind": "unknown", "dataset": "_Part"}
    old = tmp_path / "old.ckpt"
    torch.save(contents, old)
    argv = ["export", "--checkpoint", str(old), "--format", "pt2", "--out", str(tmp_path / "o.pt2")]
    assert main(argv) == 0
    assert "input (2, 6, 16)" in capsys.readouterr().out
    folder.rename(tmp_path / "moved")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task.path=..." in err
    assert "--input-size N and --raw-inputs" in err
    assert main([*argv, "--input-size", "16", "--raw-inputs"]) == 0
    assert "inputs as the model takes them" in capsys.readouterr().out
    assert main([*argv, f"task.path={tmp_path / 'moved'}"]) == 0
    assert "input (2, 6, 16), the files' coordinates, normalised" in capsys.readouterr().out


def test_point_folder_normals_come_from_every_file(tmp_path, fabricate):
    """Normals are kept when every file has them (read off the headers, train and test): a
    folder mixing meshes and bare .xyz points trains on positions; task.normals=true on it is
    a config error naming the files without (it used to fail at the first such item)."""
    from ckconv.app.config import ConfigError
    from ckconv.data.own import has_normals, read_points

    folder = _point_folder(tmp_path, fabricate)
    assert _build("task.name=point_folder", f"task.path={folder}").spec.in_channels == 6
    rng = np.random.default_rng(0)
    cloud = rng.standard_normal((40, 3))
    np.savetxt(folder / "flat" / "test" / "bare.xyz", cloud)
    np.save(folder / "flat" / "test" / "six.npy", np.hstack([cloud, cloud]))
    fabricate.ply(folder / "flat" / "test" / "verts.ply", cloud)
    for f in sorted(folder.rglob("*.*")):  # the header says what the reader gives
        assert has_normals(f) == (read_points(f, 8, np.random.default_rng(0)).shape[1] == 6), f
    mixed = _build("task.name=point_folder", f"task.path={folder}", "task.num_points=8")
    assert mixed.spec.in_channels == 3
    assert mixed.notes == ("normals left out: 2 of the 19 files of mine have none (e.g. bare.xyz); "
                           "positions only",)  # fmt: skip
    assert mixed.datasets["train"][0][0].shape == (3, 8)
    with pytest.raises(ConfigError, match=r"normals: true, but 2 of the 19 files have none"):
        _build("task.name=point_folder", f"task.path={folder}", "task.normals=true")


def test_point_readers_agree_across_formats(tmp_path, fabricate):
    """The same vertices read back from ascii and binary PLY, .xyz and .npy."""
    from ckconv.data.own import read_ply, read_points, read_xyz

    rng = np.random.default_rng(0)
    verts = rng.standard_normal((20, 3)).astype(np.float32)
    faces = [(0, 1, 2), (2, 3, 4, 5)]  # a quad is fan-triangulated
    va, fa, _ = read_ply(fabricate.ply(tmp_path / "a.ply", verts, faces))
    vb, fb, _ = read_ply(fabricate.ply(tmp_path / "b.ply", verts, faces, binary=True))
    assert np.allclose(va, verts, atol=1e-5) and np.array_equal(vb, verts.astype(np.float64))
    assert fa.tolist() == fb.tolist() == [[0, 1, 2], [2, 3, 4], [2, 4, 5]]
    np.savetxt(tmp_path / "c.xyz", verts)
    assert np.allclose(read_xyz(tmp_path / "c.xyz"), verts, atol=1e-6)
    np.save(tmp_path / "d.npy", verts)
    gen = lambda: np.random.default_rng(3)  # noqa: E731
    cloud = read_points(tmp_path / "d.npy", 20, gen())
    assert np.allclose(cloud, read_points(fabricate.ply(tmp_path / "e.ply", verts), 20, gen()),
                       atol=1e-5)  # fmt: skip
    assert np.isclose(np.linalg.norm(cloud[:, :3], axis=1).max(), 1.0)  # in the unit ball
    (tmp_path / "e.xyz").write_text("1 2 3\n1 2\n")
    with pytest.raises(ValueError, match=r"e\.xyz:2: expected 3 or 6 values"):
        read_xyz(tmp_path / "e.xyz")


def test_in_memory_datasets_through_the_python_api(tmp_path):
    """train(cfg, datasets=...) and evaluate(..., datasets=...) without files."""
    from torch.utils.data import TensorDataset

    from ckconv.app import default_config, evaluate, train

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 2
    x = torch.randn(60, 1, 16, generator=g) + y[:, None, None]
    cfg = default_config([*TINY, f"trainer.out_dir={tmp_path}"])
    result = train(cfg, datasets={"train": TensorDataset(x[:40], y[:40]),
                                  "test": TensorDataset(x[40:], y[40:])})  # fmt: skip
    checkpoint = result.best_checkpoint
    again = evaluate(checkpoint, datasets={"train": TensorDataset(x[:40], y[:40]),
                                           "test": TensorDataset(x[40:], y[40:])},
                     progress_bar=False)  # fmt: skip
    assert again["test/acc"] == pytest.approx(result.metrics["test/acc"])


def test_task_causal_picks_a_causal_default_model_only(tmp_path, fabricate):
    """task.causal=true: the default model is a CKCNN of causal convolutions; with a model named
    in the config it is refused (it would be silently ignored)."""
    from ckconv.app.config import ConfigError
    from ckconv.app.prepare import prepare
    from ckconv.app.tasks import default_config
    from ckconv.nn import CKConv

    folder = fabricate.ts(tmp_path / "Wave", "Wave", n_per_class=4, length=20)
    prepared = prepare(default_config(["task.name=uea", f"task.path={folder}", "task.causal=true"]))
    assert prepared.cfg.model.name == "ckcnn"
    convs = [m for m in prepared.model.modules() if isinstance(m, CKConv)]
    assert convs and all(m.causal for m in convs)
    with pytest.raises(ConfigError, match=r"task\.causal: picks"):
        prepare(default_config(["task.name=uea", f"task.path={folder}", "task.causal=true",
                                "model.name=ccnn"]))  # fmt: skip


def test_point_folder_mistakes_are_one_line_errors(tmp_path, fabricate, capsys):
    """A class folder with test/ but no train/ is refused when the task is built (its test files
    were left out without a word); a broken file met while evaluating is an InputError, which
    the command prints as one line (it was a traceback after the whole training)."""
    from ckconv._checks import InputError
    from ckconv.app.config import ConfigError

    folder = _point_folder(tmp_path, fabricate)
    (folder / "flat" / "test" / "zz.xyz").write_text("1 2 3\n1 2\n")
    bundle = _build("task.name=point_folder", f"task.path={folder}", "task.normals=false")
    test = bundle.datasets["test"]
    broken = [path.name for path, _ in test.items].index("zz.xyz")
    with pytest.raises(InputError, match=r"zz\.xyz:2: expected 3 or 6 values per point, got 2"):
        test[broken]
    (folder / "chair" / "test").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"\['chair'\] have test/ but no train/"):
        _build("task.name=point_folder", f"task.path={folder}")
    assert main(["train", "task.name=point_folder", f"task.path={folder}", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "chair" in err
