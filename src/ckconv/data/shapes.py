"""Synthetic 3D shapes: an offline point-cloud classification task (points + normals).

Eight primitives -- ``sphere, cube, cylinder, cone, torus, pyramid, octahedron, capsule`` --
are sampled uniformly on their surface (by area) with outward unit normals, each with random
proportions (a cube's sides, a cylinder's radius and height, a torus' radii, ...), a random pose
(by default a random rotation about the vertical axis -- upright objects with any heading, as
ModelNet's aligned meshes; ``rotation="so3"`` draws uniform 3D rotations, a much harder task for
pose-dependent models), a random scale and Gaussian jitter on the positions.  Items ``(x, y)`` use the ModelNet layout of :mod:`ckconv.data.modelnet`: ``x`` float32
``(6, num_points)`` (rows 0-2 positions, centred and scaled into the unit ball then by the random
scale, rows 3-5 normals), ``y`` int64.  Item ``i`` of a split is class ``i % num_classes`` drawn from
a generator seeded by ``(seed, split, i)``: the same every time, on every machine, no download.

Transforms applied to items (so before any relative position is computed):
:class:`RandomPointAugment` (rotation / scale / jitter / translation), and for the regular ->
irregular transfer :class:`VoxelCentres` (voxelise the cloud, keep the occupied voxels' centres)
with :class:`CubeNormalize` (the same frame for raw points); :class:`VoxelCentreClouds` is that
transfer as a dataset (the ``shapes_voxel`` and ``modelnet10_voxel`` tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import check_split
from ckconv.data.modelnet import sample_surface

__all__ = [
    "SHAPE_CLASSES",
    "CubeNormalize",
    "RandomPointAugment",
    "SyntheticShapes",
    "VoxelCentreClouds",
    "VoxelCentres",
    "cube_normalize",
    "occupied_voxel_centres",
    "random_rotation",
    "sample_shape",
]

SHAPE_CLASSES = (
    "sphere",
    "cube",
    "cylinder",
    "cone",
    "torus",
    "pyramid",
    "octahedron",
    "capsule",
)
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_ROTATIONS = ("so3", "z", "none")

Sample = tuple[np.ndarray, np.ndarray]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _pick(rng: np.random.Generator, areas: Sequence[float], n: int) -> np.ndarray:
    """Which part of a surface each of ``n`` points lies on, proportional to the parts' areas."""
    p = np.asarray(areas, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _convex_mesh(vertices: np.ndarray, faces: np.ndarray, n: int, rng) -> Sample:
    points, normals = sample_surface(vertices, faces, n, rng)
    outward = np.sign(((points - vertices.mean(0)) * normals).sum(-1, keepdims=True))
    return points, normals * np.where(outward == 0, 1.0, outward)


def _sphere(n, rng) -> Sample:
    normals = _unit(rng.normal(size=(n, 3)))
    return normals.copy(), normals


def _cube(n, rng) -> Sample:
    a = rng.uniform(0.8, 1.2, size=3)  # half sides
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * a
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for q in quads for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))])
    return _convex_mesh(corners, faces, n, rng)


def _disk(n, rng, radius, z, up) -> Sample:
    r = radius * np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([r * np.cos(t), r * np.sin(t), np.full(n, z)], -1)
    normals = np.tile([0.0, 0.0, 1.0 if up else -1.0], (n, 1))
    return points, normals


def _tube(n, rng, radius, z0, z1) -> Sample:
    t = rng.uniform(0, 2 * np.pi, n)
    normals = np.stack([np.cos(t), np.sin(t), np.zeros(n)], -1)
    points = normals * radius
    points[:, 2] = rng.uniform(z0, z1, n)
    return points, normals


def _combine(parts: list[Sample], part_of: np.ndarray) -> Sample:
    points = np.empty((len(part_of), 3))
    normals = np.empty((len(part_of), 3))
    for i, (p, q) in enumerate(parts):
        sel = part_of == i
        points[sel], normals[sel] = p[: sel.sum()], q[: sel.sum()]
    return points, normals


def _cylinder(n, rng) -> Sample:
    r, h = rng.uniform(0.4, 0.7), rng.uniform(1.2, 2.0)
    part = _pick(rng, [2 * np.pi * r * h, np.pi * r * r, np.pi * r * r], n)
    return _combine(
        [
            _tube(n, rng, r, -h / 2, h / 2),
            _disk(n, rng, r, h / 2, True),
            _disk(n, rng, r, -h / 2, False),
        ],
        part,
    )


def _cone(n, rng) -> Sample:
    r, h = rng.uniform(0.6, 1.0), rng.uniform(1.2, 2.0)
    slant = np.hypot(r, h)
    part = _pick(rng, [np.pi * r * slant, np.pi * r * r], n)
    # lateral surface: the distance from the apex has density proportional to itself
    frac = np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    lateral = np.stack([r * frac * np.cos(t), r * frac * np.sin(t), h / 2 - frac * h], -1)
    lateral_n = np.stack([h * np.cos(t), h * np.sin(t), np.full(n, r)], -1) / slant
    return _combine([(lateral, lateral_n), _disk(n, rng, r, -h / 2, False)], part)


def _torus(n, rng) -> Sample:
    big, small = rng.uniform(0.65, 0.9), rng.uniform(0.18, 0.35)
    # the area element is proportional to (R + r cos phi): rejection-sample phi
    phi = np.empty(0)
    while len(phi) < n:
        cand = rng.uniform(0, 2 * np.pi, 2 * n)
        keep = rng.random(2 * n) * (big + small) < big + small * np.cos(cand)
        phi = np.concatenate([phi, cand[keep]])
    phi = phi[:n]
    theta = rng.uniform(0, 2 * np.pi, n)
    normals = np.stack([np.cos(theta) * np.cos(phi), np.sin(theta) * np.cos(phi), np.sin(phi)], -1)
    ring = np.stack([np.cos(theta) * big, np.sin(theta) * big, np.zeros(n)], -1)
    return ring + small * normals, normals


def _pyramid(n, rng) -> Sample:
    a, h = rng.uniform(0.7, 1.1), rng.uniform(1.0, 1.8)
    v = np.array(
        [[-a, -a, -h / 3], [a, -a, -h / 3], [a, a, -h / 3], [-a, a, -h / 3], [0, 0, 2 * h / 3]]
    )
    faces = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return _convex_mesh(v, faces, n, rng)


def _octahedron(n, rng) -> Sample:
    s = rng.uniform(0.8, 1.2, size=3)
    v = (
        np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
        * np.repeat(s, 2)[:, None]
    )
    faces = np.array([[a, b, c] for a in (0, 1) for b in (2, 3) for c in (4, 5)])
    return _convex_mesh(v, faces, n, rng)


def _capsule(n, rng) -> Sample:
    r, half = rng.uniform(0.35, 0.55), rng.uniform(0.4, 0.8)
    part = _pick(rng, [2 * np.pi * r * 2 * half, 4 * np.pi * r * r], n)
    caps_n = _unit(rng.normal(size=(n, 3)))
    caps = caps_n * r
    caps[:, 2] += np.where(caps_n[:, 2] >= 0, half, -half)
    return _combine([_tube(n, rng, r, -half, half), (caps, caps_n)], part)


_SAMPLERS: dict[str, Callable[[int, np.random.Generator], Sample]] = {
    "sphere": _sphere,
    "cube": _cube,
    "cylinder": _cylinder,
    "cone": _cone,
    "torus": _torus,
    "pyramid": _pyramid,
    "octahedron": _octahedron,
    "capsule": _capsule,
}


def random_rotation(rng: np.random.Generator, kind: str = "so3") -> np.ndarray:
    """A random rotation matrix ``(3, 3)``: uniform on SO(3) (``"so3"``), about z (``"z"``) or
    the identity (``"none"``)."""
    if kind == "none":
        return np.eye(3)
    if kind == "z":
        t = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(t), np.sin(t)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    if kind != "so3":
        raise ValueError(f"rotation must be one of {_ROTATIONS}, got {kind!r}")
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # the Haar measure needs the sign fix
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def sample_shape(
    name: str,
    num_points: int,
    rng: np.random.Generator,
    *,
    rotation: str = "z",
    scale_range: tuple[float, float] = (0.8, 1.0),
    noise: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(num_points, 3)`` and unit normals of one random instance of shape ``name``.

    Positions are centred at their centroid, scaled so the farthest point is at distance 1, then
    scaled by ``U(scale_range)`` and jittered with ``N(0, noise^2)``; the pose is a random
    rotation (``rotation``: ``"z"``, ``"so3"`` or ``"none"``).  Normals are exact (before jitter) and rotated with the points.
    """
    if name not in _SAMPLERS:
        raise ValueError(f"unknown shape {name!r}; choose from {list(SHAPE_CLASSES)}")
    points, normals = _SAMPLERS[name](num_points, rng)
    points = points - points.mean(0)
    points = points / np.linalg.norm(points, axis=1).max()
    rot = random_rotation(rng, rotation)
    points = points @ rot.T * rng.uniform(*scale_range)
    if noise > 0:
        points = points + rng.normal(scale=noise, size=points.shape)
    return points, _unit(normals @ rot.T)


class SyntheticShapes(Dataset):
    """Random primitives as point clouds with normals: ``(x (6, num_points), y)``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (independent streams of the same task).
        size: items in the split (default 2000 train, 400 val/test).
        num_points: points per cloud (512, as the CCNN's ModelNet40).
        classes: names of the shapes to use (default all of :data:`SHAPE_CLASSES`); labels
            follow this order.
        rotation: ``"z"`` (random heading about the vertical axis), ``"so3"`` (uniform random
            3D rotation) or ``"none"``.
        scale_range: random overall scale after normalising into the unit ball.
        noise: standard deviation of the positional jitter.
        seed: base seed.
        transform: applied to ``x`` (e.g. :class:`RandomPointAugment`, :class:`VoxelCentres`).

    Examples:
        >>> ds = SyntheticShapes("train", size=8, num_points=64, classes=["sphere", "torus"])
        >>> x, y = ds[3]
        >>> tuple(x.shape), int(y), ds.num_classes
        ((6, 64), 1, 2)
    """

    def __init__(
        self,
        split: str = "train",
        *,
        size: int | None = None,
        num_points: int = 512,
        classes: Sequence[str] | None = None,
        rotation: str = "z",
        scale_range: tuple[float, float] = (0.8, 1.0),
        noise: float = 0.01,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.split = check_split(split, tuple(_SPLIT_IDS))
        self.classes = tuple(SHAPE_CLASSES if classes is None else classes)
        unknown = [c for c in self.classes if c not in _SAMPLERS]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(
                f"classes must be distinct names from {list(SHAPE_CLASSES)}, got {list(self.classes)}"
            )
        if rotation not in _ROTATIONS:
            raise ValueError(f"rotation must be one of {_ROTATIONS}, got {rotation!r}")
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(
                f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}"
            )
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        if size is None:
            size = 2000 if split == "train" else 400
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        if not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"num_points must be a positive int, got {num_points!r}")
        self.size = size
        self.num_points = num_points
        self.rotation = rotation
        self.scale_range = (lo, hi)
        self.noise = float(noise)
        self.seed = int(seed)
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} items")
        label = index % self.num_classes
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[self.split], index])
        points, normals = sample_shape(
            self.classes[label],
            self.num_points,
            rng,
            rotation=self.rotation,
            scale_range=self.scale_range,
            noise=self.noise,
        )
        x = torch.from_numpy(np.concatenate([points, normals], 1).T.astype(np.float32))
        if self.transform is not None:
            x = self.transform(x)
        return x, torch.tensor(label, dtype=torch.int64)


class RandomPointAugment:
    """Random rigid/scale augmentation of a cloud ``(C, N)`` (rows 0-2 positions, rows 3-5
    normals if ``C >= 6``), applied to dataset items -- before a model computes any relative
    position.

    Args:
        rotation: ``"so3"``, ``"z"`` or ``"none"``; rotates positions and normals.
        scale: ``(low, high)`` of a random isotropic scale of the positions.
        jitter: standard deviation of Gaussian noise on the positions.
        translate: half-width of a uniform random translation.
        generator: a ``numpy.random.Generator`` (default: a fresh unseeded one).
    """

    def __init__(
        self,
        rotation: str = "z",
        scale: tuple[float, float] = (1.0, 1.0),
        jitter: float = 0.0,
        translate: float = 0.0,
        generator: np.random.Generator | None = None,
    ) -> None:
        if rotation not in _ROTATIONS:
            raise ValueError(f"rotation must be one of {_ROTATIONS}, got {rotation!r}")
        self.rotation = rotation
        self.scale = (float(scale[0]), float(scale[1]))
        self.jitter = float(jitter)
        self.translate = float(translate)
        self.rng = generator if generator is not None else np.random.default_rng()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[0] < 3:
            raise ValueError(f"expected a cloud (C >= 3, N), got {tuple(x.shape)}")
        rot = torch.as_tensor(random_rotation(self.rng, self.rotation), dtype=x.dtype)
        out = x.clone()
        out[:3] = rot @ x[:3] * float(self.rng.uniform(*self.scale))
        if x.shape[0] >= 6:
            out[3:6] = rot @ x[3:6]
        if self.jitter > 0:
            out[:3] += torch.as_tensor(
                self.rng.normal(scale=self.jitter, size=(3, x.shape[1])), dtype=x.dtype
            )
        if self.translate > 0:
            shift = self.rng.uniform(-self.translate, self.translate, size=(3, 1))
            out[:3] += torch.as_tensor(shift, dtype=x.dtype)
        return out


def cube_normalize(points: torch.Tensor) -> torch.Tensor:
    """Positions ``(3, N)`` mapped into ``[-1, 1]^3`` the way :func:`ckconv.data.modelnet.voxelize`
    does: the centre of the bounding box to 0, its largest side to 2."""
    lo = points.min(dim=1, keepdim=True).values
    hi = points.max(dim=1, keepdim=True).values
    span = (hi - lo).max().clamp_min(1e-12)
    return (points - (lo + hi) / 2) / (span / 2)


def occupied_voxel_centres(points: torch.Tensor, grid: int) -> torch.Tensor:
    """The centres ``(3, n)`` of the voxels of a ``grid^3`` grid that hold at least one of the
    points ``(3, N)``, in row-major voxel order and in the frame of :func:`cube_normalize` -- the
    occupied cells of :func:`ckconv.data.modelnet.voxelize`, found without a dense grid."""
    cell = ((cube_normalize(points) + 1) / 2 * grid).floor().clamp(0, grid - 1).long()
    flat = torch.unique((cell[0] * grid + cell[1]) * grid + cell[2])  # sorted: row-major order
    index = torch.stack([flat // (grid * grid), (flat // grid) % grid, flat % grid])
    return (index.to(points.dtype) + 0.5) / grid * 2 - 1


class CubeNormalize:
    """Keep a cloud's positions (rows 0-2 of ``(C, N)``) mapped into ``[-1, 1]^3``
    (:func:`cube_normalize`): the frame in which :class:`VoxelCentres` places voxels."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return cube_normalize(x[:3])


class VoxelCentres:
    """Voxelise a cloud on a ``grid^3`` grid and return the centres of the occupied voxels as a
    cloud ``(3, n_occupied)`` in the frame of :class:`CubeNormalize`
    (:func:`occupied_voxel_centres`); at most ``max_points`` of them (a random subset, as the
    CCNN kept 512 occupied voxels).  Clouds have different sizes: collate with
    :func:`ckconv.data.pad_collate` (padded batch + mask)."""

    def __init__(
        self,
        grid: int = 32,
        max_points: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid must be a positive int, got {grid!r}")
        self.grid = grid
        self.max_points = max_points
        self.rng = generator if generator is not None else np.random.default_rng()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        centres = occupied_voxel_centres(x[:3], self.grid)  # (3, n), row-major voxel order
        if self.max_points is not None and centres.shape[1] > self.max_points:
            keep = np.sort(self.rng.choice(centres.shape[1], self.max_points, replace=False))
            centres = centres[:, torch.from_numpy(keep)]
        return centres


class VoxelCentreClouds(Dataset):
    """Point clouds for the regular -> irregular transfer (CCNN §5): each item's cloud
    (``x[:3]`` of ``base``) is voxelised on a ``grid^3`` grid and ``num_points`` of the occupied
    voxels' centres are kept (``as_points=False``), or ``num_points`` of the raw points
    themselves are kept in the same frame (``as_points=True``); ``x (3, num_points)``.

    The subset of an item depends only on ``(seed, split, index)``. A cloud occupying fewer than
    ``num_points`` voxels raises (``fill="error"``) or repeats some of its voxels
    (``fill="repeat"``, for real data where a few small objects do); ``task`` names the task in
    that error.
    """

    def __init__(self, base, split, *, grid, num_points, as_points, seed, task, fill) -> None:
        self.base, self.split, self.grid = base, check_split(split, tuple(_SPLIT_IDS)), grid
        self.num_points, self.as_points, self.seed = num_points, as_points, seed
        self.task, self.fill = task, fill
        self.num_classes = base.num_classes

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        if self.as_points:
            cloud = cube_normalize(x[:3])
        else:
            cloud = occupied_voxel_centres(x[:3], self.grid)
        # a fixed subset per item: the same (seed, split, index) always gives the same cloud
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[self.split], index, 1])
        n = cloud.shape[1]
        if n >= self.num_points:
            keep = np.sort(rng.choice(n, self.num_points, replace=False))
        elif self.fill == "repeat":
            extra = rng.choice(n, self.num_points - n, replace=True)
            keep = np.sort(np.concatenate([np.arange(n), extra]))
        else:
            raise ValueError(
                f"{self.task}: {self.split} item {index} occupies {n} voxels of the "
                f"{self.grid}^3 grid, fewer than num_points={self.num_points}; lower "
                "num_points or raise grid / raw_points"
            )
        return cloud[:, torch.from_numpy(keep)], y
