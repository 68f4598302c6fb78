"""A point-cloud run (ModelNet40 format, fabricated meshes): the app feeds (C, N) point features
with positions in the first channels to the point CCNN."""

import numpy as np

from ckconv.app.config import CONFIG_DIR, load_config
from ckconv.app.run import train


def _write_off(path, verts, faces):
    lines = ["OFF", f"{len(verts)} {len(faces)} 0"]
    lines += [" ".join(f"{v:.4f}" for v in vert) for vert in verts]
    lines += ["3 " + " ".join(str(i) for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")


def _shapes(root, per_split=4):
    rng = np.random.default_rng(0)
    tetra = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]),
             [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])  # fmt: skip
    flat = (np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0.0]]), [(0, 1, 2), (0, 2, 3)])
    for name, (verts, faces) in (("tetra", tetra), ("flat", flat)):
        for split in ("train", "test"):
            folder = root / "ModelNet40" / name / split
            folder.mkdir(parents=True)
            for i in range(per_split):
                _write_off(folder / f"{name}_{i:04d}.off", verts * rng.uniform(0.5, 2.0), faces)


def test_point_ccnn_trains_on_modelnet_format_clouds(tmp_path):
    _shapes(tmp_path / "data")
    cfg = load_config(
        CONFIG_DIR / "ccnn_4_16_modelnet40.yaml",
        [
            f"task.root={tmp_path / 'data'}",
            "task.num_points=32",
            "model.num_neighbors=8",
            "trainer.max_epochs=1",
            "optim.warmup_epochs=0",
            "trainer.batch_size=4",
            f"trainer.out_dir={tmp_path / 'runs'}",
            "trainer.progress_bar=false",
        ],
    )
    result = train(cfg)
    assert 0.0 <= result.metrics["test/acc"] <= 1.0
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()
