"""ModelNet40 / ModelNet10 point clouds: 512 points sampled on the mesh surface with normals.

Two published formats are read:

- Meshes: ``ModelNet40/<class>/{train,test}/<class>_<id>.off``. OFF files start with ``OFF`` and a
  line ``n_vertices n_faces n_edges``; in some ModelNet files the two are fused (``OFF490 518 0``).
  Faces ``k i_1 ... i_k`` (polygons are fan-triangulated). Points are drawn uniformly on the
  surface (faces chosen by area, uniform barycentric coordinates) with the face normals, from a
  generator seeded by ``(seed, index)``.
- Resampled text (``modelnet40_normal_resampled``): ``<class>/<class>_<id>.txt`` with lines
  ``x,y,z,nx,ny,nz``, the lists ``modelnet40_{train,test}.txt`` and ``modelnet40_shape_names.txt``;
  the first ``num_points`` points are used.

Positions are centred and scaled into the unit ball. Items ``(x, y)``: ``x`` float32
``(6, num_points)`` (rows 0-2 positions, 3-5 unit normals), ``y`` int64. The papers validate on the
official test split; only "train" and "test" exist here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import DataFileError, PathLike, check_split, missing_files, read_text

__all__ = [
    "MODELNET10_CLASSES",
    "ModelNet",
    "normalize_points",
    "read_off",
    "read_resampled",
    "sample_surface",
    "voxelize",
]

#: The 10 ModelNet10 categories (a subset of ModelNet40), in label order.
MODELNET10_CLASSES = (
    "bathtub",
    "bed",
    "chair",
    "desk",
    "dresser",
    "monitor",
    "night_stand",
    "sofa",
    "table",
    "toilet",
)


def read_off(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF mesh: vertices float64 ``(V, 3)`` and triangles int64 ``(F, 3)``.

    Accepts the fused header of some ModelNet files (``OFF490 518 0``), ``#`` comments, and
    polygons (fan-triangulated); extra values after a face's indices (colours) are ignored.
    Problems raise :class:`~ckconv.data.DataFileError` naming the file and line.
    """
    path = Path(path)
    numbered = [(i, ln.split("#", 1)[0].strip()) for i, ln in enumerate(
        read_text(path, "OFF").splitlines(), start=1)]  # fmt: skip
    lines = [(i, ln) for i, ln in numbered if ln]
    if not lines or not lines[0][1].startswith("OFF"):
        raise DataFileError(path, "missing 'OFF' header", lines[0][0] if lines else None)
    nv, nf, pos = _off_counts(lines, path)
    if len(lines) < pos + nv + nf:
        raise DataFileError(
            path,
            f"truncated OFF file: header promises {nv} vertices and {nf} faces, "
            f"found {len(lines) - pos} lines",
        )
    verts = _off_vertices(lines[pos : pos + nv], path)
    faces = lines[pos + nv : pos + nv + nf]
    try:  # fast path: every face a triangle "3 i j k" with indices in range
        table = np.array([ln.split() for _, ln in faces], dtype=np.int64).reshape(nf, -1)
    except ValueError:
        table = None
    if table is not None and table.shape[1] == 4 and (table[:, 0] == 3).all():
        if nf == 0 or (table[:, 1:].min() >= 0 and table[:, 1:].max() < nv):
            return verts.reshape(nv, 3), table[:, 1:].copy()
    tris = [t for i, ln in faces for t in _off_face(ln, nv, path, i)]  # names the bad line
    return verts.reshape(nv, 3), np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _off_counts(lines: list[tuple[int, str]], path: Path) -> tuple[int, int, int]:
    """Vertex and face counts of the header and the index of the first vertex line."""
    lineno, rest = lines[0][0], lines[0][1][3:].strip()
    pos = 1
    if not rest:
        if len(lines) < 2:
            raise DataFileError(path, "truncated OFF file (no counts line)")
        lineno, rest = lines[1]
        pos = 2
    try:
        counts = [int(v) for v in rest.split()]
    except ValueError:
        raise DataFileError(path, f"bad counts line {rest!r}", lineno) from None
    if len(counts) < 2 or counts[0] < 0 or counts[1] < 0:
        raise DataFileError(
            path, f"counts line must be 'n_vertices n_faces [n_edges]', got {rest!r}", lineno
        )
    return counts[0], counts[1], pos


def _off_vertices(lines: list[tuple[int, str]], path: Path) -> np.ndarray:
    """``(V, 3)`` vertices; a bad line is looked for only when the fast parse fails."""
    try:
        verts = np.array([ln.split()[:3] for _, ln in lines], dtype=np.float64).reshape(-1, 3)
        if len(verts) == len(lines) and np.isfinite(verts).all():
            return verts
    except ValueError:
        pass
    return np.array([_off_vertex(ln, path, i) for i, ln in lines])


def _off_vertex(line: str, path: Path, lineno: int) -> list[float]:
    values = line.split()[:3]
    try:
        vertex = [float(v) for v in values]
    except ValueError:
        raise DataFileError(
            path, f"non-numeric vertex coordinate in {line[:40]!r}", lineno
        ) from None
    if len(vertex) != 3:
        raise DataFileError(path, f"a vertex needs 3 coordinates, got {line[:40]!r}", lineno)
    if not all(math.isfinite(v) for v in vertex):
        raise DataFileError(path, f"non-finite vertex coordinate in {line[:40]!r}", lineno)
    return vertex


def _off_face(line: str, nv: int, path: Path, lineno: int) -> list[tuple[int, int, int]]:
    """The triangles of one face line ``n i_1 ... i_n`` (a polygon is fan-triangulated)."""
    try:
        vals = [int(v) for v in line.split()]
    except ValueError:
        raise DataFileError(path, f"non-integer entry in face {line[:40]!r}", lineno) from None
    if not vals or vals[0] < 3 or len(vals) < 1 + vals[0]:
        raise DataFileError(
            path, f"expected 'n i_1 ... i_n' with n >= 3, got {line[:40]!r}", lineno
        )
    idx = vals[1 : 1 + vals[0]]
    if min(idx) < 0 or max(idx) >= nv:
        raise DataFileError(
            path, f"face {line[:40]!r}: vertex index out of range 0..{nv - 1}", lineno
        )
    return [(idx[0], idx[j], idx[j + 1]) for j in range(1, len(idx) - 1)]


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, num_points: int, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on a triangle mesh's surface and their (unit) face normals, ``(N, 3)`` each."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    cross = np.cross(b - a, c - a)
    area2 = np.linalg.norm(cross, axis=1)
    total = area2.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("mesh has no surface area to sample from")
    face = generator.choice(len(faces), size=num_points, p=area2 / total)
    r1 = np.sqrt(generator.random(num_points))[:, None]
    r2 = generator.random(num_points)[:, None]
    points = (1 - r1) * a[face] + r1 * (1 - r2) * b[face] + r1 * r2 * c[face]
    normals = cross[face] / area2[face, None]
    return points, normals


def normalize_points(points: np.ndarray) -> np.ndarray:
    """Centre at the centroid and scale so the farthest point is at distance 1."""
    centred = points - points.mean(axis=0, keepdims=True)
    scale = np.linalg.norm(centred, axis=1).max()
    return centred / scale if scale > 0 else centred


def read_resampled(path: PathLike, num_points: int | None = None) -> np.ndarray:
    """Read a resampled ModelNet ``.txt`` (``x,y,z,nx,ny,nz`` per line): float64 ``(N, 6)``."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(read_text(path, "ModelNet .txt").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.replace(",", " ").split()
        if len(fields) != 6:
            raise DataFileError(
                path, f"expected 6 comma-separated values, got {len(fields)}", lineno
            )
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise DataFileError(path, f"non-numeric value in {line[:40]!r}", lineno) from None
        if not all(math.isfinite(v) for v in rows[-1]):
            raise DataFileError(path, f"non-finite value in {line[:40]!r}", lineno)
        if num_points is not None and len(rows) == num_points:
            break
    if num_points is not None and len(rows) < num_points:
        raise DataFileError(path, f"has {len(rows)} points, {num_points} requested")
    return np.asarray(rows, dtype=np.float64)


def voxelize(points: torch.Tensor, grid: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin a cloud ``(3, N)`` into a ``grid^3`` voxel grid after scaling it into [-1, 1]^3 (CCNN's
    voxelised ModelNet10): returns ``features (3, G, G, G)`` holding each occupied voxel's centre
    coordinates (0 elsewhere) and ``occupied (G, G, G)`` bool."""
    if points.dim() != 2 or points.shape[0] != 3:
        raise ValueError(f"points must be (3, N), got {tuple(points.shape)}")
    lo = points.min(dim=1, keepdim=True).values
    hi = points.max(dim=1, keepdim=True).values
    span = (hi - lo).max().clamp_min(1e-12)
    unit = (points - (lo + hi) / 2) / (span / 2)  # within [-1, 1]
    cell = ((unit + 1) / 2 * grid).floor().clamp(0, grid - 1).long()
    occupied = torch.zeros(grid, grid, grid, dtype=torch.bool)
    occupied[cell[0], cell[1], cell[2]] = True
    centres = (torch.arange(grid, dtype=points.dtype) + 0.5) / grid * 2 - 1
    coords = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"))
    return coords * occupied, occupied


class ModelNet(Dataset):
    """ModelNet40 (or ModelNet10 with ``name="ModelNet10"``): ``(x (6, num_points), y)``.

    Reads the resampled text format if ``root`` holds ``modelnet40_normal_resampled`` (or is it),
    else the OFF meshes under ``root/<name>`` (or ``root``). Classes are numbered in sorted order
    (mesh format) or in ``modelnet40_shape_names.txt`` order (resampled format).
    """

    num_classes = 40

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        name: str = "ModelNet40",
        num_points: int = 512,
        seed: int = 0,
        file_format: str | None = None,
    ) -> None:
        check_split(split, ("train", "test"))
        if name not in ("ModelNet40", "ModelNet10"):
            raise ValueError(f"name must be 'ModelNet40' or 'ModelNet10', got {name!r}")
        if file_format not in (None, "off", "resampled"):
            raise ValueError(f"file_format must be 'off', 'resampled' or None, got {file_format!r}")
        self.num_points = int(num_points)
        self.seed = int(seed)
        self.split = split
        found = self.find(root, name, file_format)
        if found is None:
            raise missing_files(
                name,
                root,
                [name, "modelnet40_normal_resampled", ""],
                ["<class>/{train,test}/*.off or modelnet40_shape_names.txt"],
                f"Download {name}.zip (Princeton ModelNet) or modelnet40_normal_resampled.zip and extract it there.",
            )
        fmt, directory = found
        self.file_format, self.root = fmt, directory
        if fmt == "resampled":
            prefix = "modelnet10" if name == "ModelNet10" else "modelnet40"
            self.classes = [
                c.strip()
                for c in (directory / f"{prefix}_shape_names.txt").read_text().splitlines()
                if c.strip()
            ]
            ids = [
                s.strip()
                for s in (directory / f"{prefix}_{split}.txt").read_text().splitlines()
                if s.strip()
            ]
            index = {c: i for i, c in enumerate(self.classes)}
            self.items = []
            for sid in ids:
                cls = sid.rsplit("_", 1)[0]
                if cls not in index:
                    raise DataFileError(directory, f"sample {sid!r} has unknown class {cls!r}")
                self.items.append((directory / cls / f"{sid}.txt", index[cls]))
        else:
            self.classes = sorted(d.name for d in directory.iterdir() if (d / split).is_dir())
            self.items = [
                (f, i)
                for i, c in enumerate(self.classes)
                for f in sorted((directory / c / split).glob("*.off"))
            ]
        self.num_classes = len(self.classes)
        if not self.items:
            raise FileNotFoundError(f"{directory}: no {split} samples")

    @staticmethod
    def find(
        root: PathLike, name: str = "ModelNet40", file_format: str | None = None
    ) -> tuple[str, Path] | None:
        root = Path(root).expanduser()
        prefix = "modelnet10" if name == "ModelNet10" else "modelnet40"
        if file_format in (None, "resampled"):
            for d in (root / "modelnet40_normal_resampled", root):
                if (d / f"{prefix}_shape_names.txt").exists() and (
                    d / f"{prefix}_train.txt"
                ).exists():
                    return "resampled", d
        if file_format in (None, "off"):
            for d in (root / name, root):
                if d.is_dir() and any(d.glob("*/train/*.off")):
                    return "off", d
        return None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        if self.file_format == "resampled":
            data = read_resampled(path, self.num_points)
            points, normals = data[:, :3], data[:, 3:]
        else:
            verts, faces = read_off(path)
            if len(faces) == 0:
                raise DataFileError(path, "mesh has no faces")
            rng = np.random.default_rng([self.seed, index])
            try:
                points, normals = sample_surface(verts, faces, self.num_points, rng)
            except ValueError as err:
                raise DataFileError(path, f"{err}") from None
        x = np.concatenate([normalize_points(points), normals], axis=1).T
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32), torch.tensor(
            label, dtype=torch.int64
        )
