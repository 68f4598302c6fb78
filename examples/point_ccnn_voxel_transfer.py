"""Regular -> irregular transfer on synthetic shapes: train on voxels, test on points.

CCNN §5 trained on ModelNet10 voxelised to 40^3, convolving only at occupied voxels, and tested
the same network on the raw point clouds.  Convolving at occupied voxels only *is* a point
convolution whose points are the voxel centres (``PointCCNN.from_ccnn`` shows the identity
exactly for a full grid), so here a :class:`~ckconv.models.PointCCNN` is trained on the centres
of the occupied voxels of each cloud (:class:`~ckconv.data.shapes.VoxelCentres`) and evaluated
both on voxelised test clouds and on the raw test points (same frame,
:class:`~ckconv.data.shapes.CubeNormalize`).  Inputs are positions only (voxels have no
normals).  Clouds have different sizes: batches are padded with a mask (``pad_collate``).

    python examples/point_ccnn_voxel_transfer.py            # 8 classes, 32^3 voxels
    python examples/point_ccnn_voxel_transfer.py --grid 16
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ckconv.data import pad_collate
from ckconv.data.shapes import SHAPE_CLASSES, CubeNormalize, SyntheticShapes, VoxelCentres
from ckconv.models.point_ccnn import PointCCNN
from ckconv.nn import param_groups


class _Subsample:
    """Keep a fixed random subset of ``n`` points of a ``(C, N)`` cloud."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] <= self.n:
            return x
        keep = np.sort(self.rng.choice(x.shape[1], self.n, replace=False))
        return x[:, torch.from_numpy(keep)]


def _items(ds) -> list:
    return [ds[i] for i in range(len(ds))]


@torch.no_grad()
def _accuracy(model, items, batch_size=100) -> float:
    model.eval()
    correct = 0
    for batch in DataLoader(items, batch_size=batch_size, collate_fn=pad_collate):
        correct += int((model(batch.x, batch.mask).argmax(-1) == batch.y).sum())
    return correct / len(items)


def train_voxel_to_points(
    *,
    num_classes: int = len(SHAPE_CLASSES),
    train_size: int = 1600,
    test_size: int = 400,
    raw_points: int = 1024,
    grid: int = 32,
    max_points: int = 256,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 2e-2,
    seed: int = 0,
    threads: int | None = None,
    verbose: bool = True,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """Train on occupied-voxel centres, test on voxels and on raw points (``max_points`` each).

    ``model_kwargs`` go to ``PointCCNN`` (defaults: CCNN-4,32 with kernel hidden 8, 16
    neighbours, ``kernel_omega_0=10``).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        classes = SHAPE_CLASSES[:num_classes]
        opts = {"num_points": raw_points, "classes": classes, "seed": seed}
        voxels = VoxelCentres(grid, max_points, generator=np.random.default_rng(seed))
        train = _items(SyntheticShapes("train", size=train_size, transform=voxels, **opts))
        test_vox = _items(SyntheticShapes("test", size=test_size, transform=voxels, **opts))
        cube, sub = CubeNormalize(), _Subsample(max_points, seed + 1)
        test_pts = _items(
            SyntheticShapes("test", size=test_size, transform=lambda x: sub(cube(x)), **opts)
        )
        # omega_0 = 10 (not CCNN's 50): smoother kernels alias less on the voxel lattice
        kwargs = {
            "hidden_channels": 32,
            "num_blocks": 4,
            "kernel_hidden": 8,
            "num_neighbors": 16,
            "kernel_omega_0": 10.0,
        }
        kwargs.update(model_kwargs)
        model = PointCCNN(3, num_classes, **kwargs)
        optimizer = torch.optim.AdamW(param_groups(model, lr=lr))
        loader = DataLoader(
            train,
            batch_size=batch_size,
            shuffle=True,
            collate_fn=pad_collate,
            generator=torch.Generator().manual_seed(seed),
        )
        steps, warmup = epochs * len(loader), len(loader)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: (
                (s + 1) / warmup
                if s < warmup
                else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
            ),
        )
        start = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            for batch in loader:
                loss = torch.nn.functional.cross_entropy(model(batch.x, batch.mask), batch.y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            if verbose:
                print(
                    f"epoch {epoch + 1}  voxel test acc {_accuracy(model, test_vox):.4f}  "
                    f"{time.perf_counter() - start:6.1f}s",
                    flush=True,
                )
        sizes = [x.shape[1] for x, _ in train]
        return {
            "voxel_test_accuracy": _accuracy(model, test_vox),
            "point_test_accuracy": _accuracy(model, test_pts),
            "seconds": time.perf_counter() - start,
            "parameters": sum(p.numel() for p in model.parameters()),
            "voxels_per_cloud": [int(min(sizes)), float(np.mean(sizes)), int(max(sizes))],
            "model": model,
        }
    finally:
        torch.set_num_threads(previous)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=len(SHAPE_CLASSES))
    parser.add_argument("--train-size", type=int, default=1600)
    parser.add_argument("--test-size", type=int, default=400)
    parser.add_argument("--grid", type=int, default=32)
    parser.add_argument("--max-points", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train_voxel_to_points(
        num_classes=args.classes,
        train_size=args.train_size,
        test_size=args.test_size,
        grid=args.grid,
        max_points=args.max_points,
        epochs=args.epochs,
        threads=args.threads,
        seed=args.seed,
    )
    result.pop("model")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
