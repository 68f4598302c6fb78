"""Train a point-cloud CCNN on the offline synthetic shapes task (CPU, a few minutes).

    python examples/point_ccnn_shapes.py                 # the full run (8 classes)
    python examples/point_ccnn_shapes.py --classes 3 --epochs 4 --train-size 300

``train_point_ccnn_on_shapes(...)`` is the same run as a function (the tests call a small
version).  It prints and returns the test accuracy, the wall time and the parameter count.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from ckconv.data.shapes import SHAPE_CLASSES, SyntheticShapes
from ckconv.models.point_ccnn import PointCCNN
from ckconv.nn import param_groups


def _materialise(ds: SyntheticShapes) -> TensorDataset:
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return TensorDataset(torch.stack(xs), torch.stack(ys))


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += int((model(x).argmax(-1) == y).sum())
        total += len(y)
    return correct / total


def train_point_ccnn_on_shapes(
    *,
    num_classes: int = len(SHAPE_CLASSES),
    train_size: int = 1600,
    test_size: int = 400,
    num_points: int = 128,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 2e-2,
    mask_lr: float | None = None,
    weight_decay: float = 0.0,
    warmup_epochs: int = 1,
    rotation: str = "z",
    seed: int = 0,
    threads: int | None = None,
    verbose: bool = True,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """Train :class:`~ckconv.models.PointCCNN` (default: the tiny CCNN-4,32) on
    :class:`~ckconv.data.shapes.SyntheticShapes` with AdamW and a cosine schedule with linear
    warm-up (the CCNN recipe); return ``{"test_accuracy", "seconds", "parameters", ...}``.

    ``model_kwargs`` go to ``PointCCNN`` (defaults: ``hidden_channels=32, num_blocks=4,
    kernel_hidden=8, num_neighbors=16``).
    """
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(
            num_classes=num_classes,
            train_size=train_size,
            test_size=test_size,
            num_points=num_points,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            mask_lr=mask_lr,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            rotation=rotation,
            seed=seed,
            verbose=verbose,
            model_kwargs=model_kwargs,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    *,
    num_classes,
    train_size,
    test_size,
    num_points,
    epochs,
    batch_size,
    lr,
    mask_lr,
    weight_decay,
    warmup_epochs,
    rotation,
    seed,
    verbose,
    model_kwargs,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    classes = SHAPE_CLASSES[:num_classes]
    options = {"num_points": num_points, "classes": classes, "seed": seed, "rotation": rotation}
    train = _materialise(SyntheticShapes("train", size=train_size, **options))
    test = _materialise(SyntheticShapes("test", size=test_size, **options))
    train_loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    test_loader = DataLoader(test, batch_size=100)
    kwargs = {"hidden_channels": 32, "num_blocks": 4, "kernel_hidden": 8, "num_neighbors": 16}
    kwargs.update(model_kwargs)
    model = PointCCNN(6, num_classes, **kwargs)
    optimizer = torch.optim.AdamW(
        param_groups(model, lr=lr, weight_decay=weight_decay, mask_lr=mask_lr)
    )
    steps = epochs * len(train_loader)
    warmup = warmup_epochs * len(train_loader)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total_loss = 0.0
        for x, y in train_loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach()) * len(y)
        acc = evaluate(model, test_loader)
        history.append({"epoch": epoch + 1, "loss": total_loss / len(train), "test_accuracy": acc})
        if verbose:
            print(
                f"epoch {epoch + 1:3d}  loss {total_loss / len(train):.4f}  test acc {acc:.4f}  "
                f"{time.perf_counter() - start:6.1f}s",
                flush=True,
            )
    return {
        "test_accuracy": history[-1]["test_accuracy"],
        "seconds": time.perf_counter() - start,
        "parameters": sum(p.numel() for p in model.parameters()),
        "classes": list(classes),
        "history": history,
        "model": model,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=len(SHAPE_CLASSES))
    parser.add_argument("--train-size", type=int, default=1600)
    parser.add_argument("--test-size", type=int, default=400)
    parser.add_argument("--num-points", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-2)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--neighbors", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train_point_ccnn_on_shapes(
        num_classes=args.classes,
        train_size=args.train_size,
        test_size=args.test_size,
        num_points=args.num_points,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        hidden_channels=args.hidden,
        num_neighbors=args.neighbors,
    )
    result.pop("model")
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
