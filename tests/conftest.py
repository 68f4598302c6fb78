"""Fabricators shared by every test folder: small files in the real published layouts of each
data format (the readers under test read them as they read the real files).

Tests get them through the ``fabricate`` fixture (conftest modules are not imported by name)."""

from __future__ import annotations

import gzip
import pickle
import struct
import wave
from pathlib import Path

import numpy as np
import pytest


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """IDX: 0, 0, type code 0x08 (uint8), ndim, then big-endian uint32 sizes and the bytes."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_cifar_batch(path: Path, images: np.ndarray, labels, label_key=b"labels") -> Path:
    """A CIFAR batch like the published Python-2 files: bytes keys, data (N, 3072) uint8."""
    batch = {
        b"batch_label": b"fabricated",
        b"data": images.reshape(len(images), -1),
        label_key: list(labels),
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def write_ts(
    folder: Path,
    name: str,
    *,
    n_per_class: int = 8,
    classes: tuple[str, ...] = ("a", "b"),
    channels: int = 1,
    length: int | tuple[int, int] = 32,
    seed: int = 0,
) -> Path:
    """``<folder>/<name>_{TRAIN,TEST}.ts`` of a UEA/UCR problem: class ``k`` is a sine of
    frequency ``k + 1`` plus noise; ``length=(lo, hi)`` gives variable lengths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    fixed = isinstance(length, int)
    for part in ("TRAIN", "TEST"):
        lines = [
            f"@problemName {name}",
            "@timeStamps false",
            f"@univariate {'true' if channels == 1 else 'false'}",
            *([] if channels == 1 else [f"@dimensions {channels}"]),
            f"@equalLength {'true' if fixed else 'false'}",
            *([f"@seriesLength {length}"] if fixed else []),
            f"@classLabel true {' '.join(classes)}",
            "@data",
        ]
        for k, label in enumerate(classes):
            for _ in range(n_per_class):
                n = length if fixed else int(rng.integers(*length))
                t = np.linspace(0, 1, n)
                dims = [np.sin(2 * np.pi * (k + 1) * t + c) + 0.1 * rng.standard_normal(n)
                        for c in range(channels)]  # fmt: skip
                lines.append(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{label}")
        (folder / f"{name}_{part}.ts").write_text("\n".join(lines) + "\n")
    return folder


def write_off(path: Path, verts: np.ndarray, faces) -> Path:
    """An OFF mesh: ``OFF``, the counts line, vertices, triangles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["OFF", f"{len(verts)} {len(faces)} 0"]
    lines += [" ".join(f"{v:.4f}" for v in vert) for vert in verts]
    lines += ["3 " + " ".join(str(i) for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ply(path: Path, verts: np.ndarray, faces=None, *, binary: bool = False) -> Path:
    """A PLY file (``ascii`` or ``binary_little_endian``): float vertices x, y, z and, with
    ``faces``, a ``uchar int`` vertex_indices list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    verts = np.asarray(verts, dtype=np.float32)
    faces = [] if faces is None else list(faces)
    fmt = "binary_little_endian" if binary else "ascii"
    head = [
        "ply",
        f"format {fmt} 1.0",
        "comment fabricated",
        f"element vertex {len(verts)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if faces:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    text = "\n".join(head) + "\n"
    if binary:
        body = verts.astype("<f4").tobytes()
        body += b"".join(struct.pack(f"<B{len(f)}i", len(f), *f) for f in faces)
        path.write_bytes(text.encode("ascii") + body)
    else:
        rows = [" ".join(f"{v:.5f}" for v in vert) for vert in verts]
        rows += [" ".join(str(i) for i in (len(f), *f)) for f in faces]
        path.write_text(text + "\n".join(rows) + "\n")
    return path


#: two point-cloud classes: a tetrahedron and a flat quad (meshes), scaled per sample
TETRA = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]),
         [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])  # fmt: skip
FLAT = (np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0.0]]), [(0, 1, 2), (0, 2, 3)])


def write_modelnet(root: Path, name: str = "ModelNet40", per_split: int = 4,
                   classes: tuple[str, ...] = ("tetra", "flat")) -> Path:  # fmt: skip
    """``root/<name>/<class>/{train,test}/<class>_<id>.off`` meshes (ModelNet's layout)."""
    rng = np.random.default_rng(0)
    shapes = [TETRA, FLAT]
    for k, cls in enumerate(classes):
        verts, faces = shapes[k % 2]
        for split in ("train", "test"):
            for i in range(per_split):
                path = root / name / cls / split / f"{cls}_{i:04d}.off"
                write_off(path, verts * rng.uniform(0.5, 2.0) + 0.1 * k, faces)
    return root / name


# ----------------------------------------------------------------------------- task data


def _mnist(root: Path, rng) -> list[str]:
    d = root / "MNIST" / "raw"
    d.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 12)):
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return ["task.val_size=8"]


def _cifar10(root: Path, rng) -> list[str]:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        write_cifar_batch(d / name, rng.integers(0, 256, (8, 3072), dtype=np.uint8), range(8))
    return ["task.val_size=8"]


def _cifar100(root: Path, rng) -> list[str]:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for name, n in (("train", 24), ("test", 8)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"fine_labels": [i % 100 for i in range(n)],
                 b"coarse_labels": [i % 20 for i in range(n)]}  # fmt: skip
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return ["task.val_size=8"]


def _stl10(root: Path, rng) -> list[str]:
    d = root / "stl10_binary"
    d.mkdir(parents=True)
    for split, n in (("train", 16), ("test", 6)):
        # published layout: per channel, column-major (W outer, H inner); labels 1..10
        rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tofile(d / f"{split}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(d / f"{split}_y.bin")
    return ["task.val_size=4"]


def _speech(root: Path, rng) -> list[str]:
    from ckconv.data.speech import KIDGER_WORDS

    base = root / "SpeechCommands" / "speech_commands_v0.02"
    t = np.arange(16000) / 16000
    for w, word in enumerate(KIDGER_WORDS):
        for k in range(7):  # speakers are split by hash: about 50/10/10 of 70 clips
            sig = 8000 * np.sin(2 * np.pi * (200 + 50 * w) * t) + 500 * rng.standard_normal(16000)
            write_wav(base / word / f"spk{k:02d}_nohash_0.wav", sig.astype(np.int16))
    return []


def _physionet(root: Path, rng) -> list[str]:
    from ckconv.data.physionet import PSV_COLUMNS

    d = root / "training_setA"
    d.mkdir(parents=True)
    for i in range(40):
        lines = ["|".join(PSV_COLUMNS)]
        for h in range(1, 9):
            row = [float("nan")] * len(PSV_COLUMNS)
            row[0] = float(rng.normal(80, 10))
            row[34], row[35], row[36], row[38] = 50.0 + i, 1.0, 1.0, -10.0
            row[39], row[40] = float(h), float(i % 4 == 0 and h >= 3)
            lines.append("|".join("NaN" if np.isnan(v) else repr(v) for v in row))
        (d / f"p{i:06d}.psv").write_text("\n".join(lines) + "\n")
    return []


def _ptb(root: Path, rng) -> list[str]:
    d = root / "ptb"
    d.mkdir(parents=True)
    (d / "ptb.char.train.txt").write_text("a b _ c\nb a\n" * 400)  # seq_len 400 + 1 tokens
    (d / "ptb.char.valid.txt").write_text("c a b _ a\n" * 100)
    (d / "ptb.char.test.txt").write_text("b _ d\n" * 150)
    return []


def _listops(root: Path, rng) -> list[str]:
    d = root / "lra_release" / "listops-1000"
    d.mkdir(parents=True)
    rows = "Source\tTarget\n" + "( [MAX 1 2 ] )\t2\n[MIN 3 4 ]\t3\n[SM 1 2 3 ]\t6\n" * 6
    for split in ("train", "val", "test"):
        (d / f"basic_{split}.tsv").write_text(rows)
    return []


def _imdb(root: Path, rng) -> list[str]:
    for part in ("train", "test"):
        for sub in ("pos", "neg"):
            d = root / "aclImdb" / part / sub
            d.mkdir(parents=True)
            for k in range(10 if part == "train" else 3):
                (d / f"{k}_7.txt").write_text(f"{sub} review {k} " * int(rng.integers(1, 9)))
    return []


def _pathfinder(root: Path, rng) -> list[str]:
    from PIL import Image

    base = root / "lra_release" / "pathfinder32" / "curv_contour_length_14"
    (base / "metadata").mkdir(parents=True)
    for f in range(4):
        (base / "imgs" / str(f)).mkdir(parents=True)
        lines = []
        for k in range(8):
            arr = rng.integers(0, 256, (32, 32), dtype=np.uint8)
            Image.fromarray(arr, mode="L").save(base / "imgs" / str(f) / f"sample_{k}.png")
            lines.append(f"imgs/{f} sample_{k}.png 0 {(f + k) % 2} 0.5 1.0 2 3 4")
        (base / "metadata" / f"{f}.npy").write_text("\n".join(lines) + "\n")
    return []


def _character_trajectories(root: Path, rng) -> list[str]:
    write_ts(root / "CharacterTrajectories", "CharacterTrajectories", n_per_class=10,
             classes=tuple(str(c) for c in range(1, 21)), channels=3, length=(8, 16))  # fmt: skip
    return []


def _modelnet40(root: Path, rng) -> list[str]:
    write_modelnet(root, "ModelNet40")
    return []


def _modelnet10(root: Path, rng) -> list[str]:
    write_modelnet(root, "ModelNet10")
    return []


#: how a task's data is made for a test: a fabricator writing files in the task's published
#: layout under ``root`` (returning the overrides that point the task at it and keep its splits
#: small), or, for generated and installed data, the overrides that keep it small
TASK_DATA = {
    "smnist": _mnist, "pmnist": _mnist,
    "scifar10": _cifar10, "cifar10": _cifar10, "lra_image": _cifar10, "lra_image2d": _cifar10,
    "cifar100": _cifar100, "stl10": _stl10,
    "speech_mfcc": _speech, "speech_raw": _speech, "speech_raw_0.5x": _speech,
    "physionet_sepsis": _physionet, "char_ptb": _ptb, "lra_listops": _listops,
    "lra_text": _imdb, "lra_pathfinder": _pathfinder, "lra_pathfinder2d": _pathfinder,
    "character_trajectories": _character_trajectories,
    "modelnet40": _modelnet40, "modelnet10_voxel": _modelnet10,
}  # fmt: skip
#: the overrides that keep generated tasks small
GENERATED_SIZES = {
    "copy_memory": ["task.num_train=16", "task.num_eval=8"],
    "adding_problem": ["task.num_train=16", "task.num_eval=8"],
    "associative_recall": ["task.num_train=16", "task.num_eval=8"],
    "shapes": ["task.train_size=16", "task.val_size=8", "task.test_size=8"],
    "shapes_voxel": ["task.train_size=16", "task.val_size=8", "task.test_size=8"],
}


def write_task_data(task: str, root: Path) -> list[str]:
    """Data for ``task`` under ``root`` (see :data:`TASK_DATA`): the overrides to use it,
    ``task.root`` included. Tasks whose data is installed (digits, aeon's problems) need none."""
    if task in GENERATED_SIZES:
        return list(GENERATED_SIZES[task])
    if task not in TASK_DATA:
        return []
    root.mkdir(parents=True, exist_ok=True)
    return [f"task.root={root}", *TASK_DATA[task](root, np.random.default_rng(0))]


class Fabricate:
    """The writers above, for tests (``fabricate.ts(...)`` etc.)."""

    idx = staticmethod(write_idx)
    cifar_batch = staticmethod(write_cifar_batch)
    wav = staticmethod(write_wav)
    ts = staticmethod(write_ts)
    off = staticmethod(write_off)
    ply = staticmethod(write_ply)
    modelnet = staticmethod(write_modelnet)
    task_data = staticmethod(write_task_data)

    @staticmethod
    def makes(task: str) -> bool:
        """Whether :func:`write_task_data` fabricates or shrinks ``task``'s data."""
        return task in TASK_DATA or task in GENERATED_SIZES


@pytest.fixture
def fabricate() -> type[Fabricate]:
    """The file writers of this module."""
    return Fabricate
