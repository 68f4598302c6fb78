"""Helpers that fabricate small files in the datasets' published formats."""

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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


class _Fabricate:
    idx = staticmethod(write_idx)
    cifar_batch = staticmethod(write_cifar_batch)
    wav = staticmethod(write_wav)


@pytest.fixture
def fab() -> type[_Fabricate]:
    """The file writers above (fixtures avoid importing this conftest as a module)."""
    return _Fabricate
