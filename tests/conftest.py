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


class Fabricate:
    """The writers above, for tests (``fabricate.ts(...)`` etc.)."""

    idx = staticmethod(write_idx)
    cifar_batch = staticmethod(write_cifar_batch)
    wav = staticmethod(write_wav)
    ts = staticmethod(write_ts)
    off = staticmethod(write_off)
    ply = staticmethod(write_ply)
    modelnet = staticmethod(write_modelnet)


@pytest.fixture
def fabricate() -> type[Fabricate]:
    """The file writers of this module."""
    return Fabricate
