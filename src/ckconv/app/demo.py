"""``ckconv demo``: the first command on a fresh machine.

Trains a small CCNN on scikit-learn's 8x8 handwritten digits (real data that ships inside
scikit-learn: no download), prints the test accuracy, then evaluates the *same* trained model
zero-shot at other resolutions -- 16x16 (the digits upsampled, ``rate=2``) and 4x4 (``rate=0.5``)
-- which a continuous-kernel network can do because its kernels are functions of position, not
fixed arrays of weights. Writes the training curves and pictures of the learned kernels at the
training and at the doubled resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ckconv.app.config import CONFIG_DIR, load_config

__all__ = ["run_demo"]

#: Zero-shot evaluation resolutions: (label, sampling-rate ratio sr_eval / sr_train).
ZERO_SHOT = (("16x16", 2.0), ("4x4", 0.5))


def run_demo(
    out: str | os.PathLike = "runs",
    *,
    epochs: int | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress_bar: bool = True,
    extra_overrides: list[str] | None = None,
) -> dict[str, float]:
    """Train, evaluate at 8x8, 16x16 and 4x4, draw; returns ``{"8x8": acc, ...}``."""
    from ckconv.app.evaluation import evaluate, load_model
    from ckconv.app.metrics import format_metric
    from ckconv.app.plots import plot_kernels
    from ckconv.app.training import train

    if threads is not None:
        torch.set_num_threads(threads)
    overrides = [f"trainer.out_dir={Path(out)}", f"seed={seed}",
                 f"trainer.progress_bar={str(progress_bar).lower()}"]  # fmt: skip
    if epochs is not None:
        overrides.append(f"trainer.max_epochs={epochs}")
    overrides += list(extra_overrides or [])
    cfg = load_config(CONFIG_DIR / "demo_digits.yaml", overrides)
    print(f"ckconv demo: CCNN ({cfg.model.options.get('num_blocks', '')} blocks, "
          f"{cfg.model.options.get('hidden_channels', '')} channels) on scikit-learn digits 8x8, "
          f"{cfg.trainer.max_epochs} epochs, {torch.get_num_threads()} CPU thread(s)")  # fmt: skip
    result = train(cfg)
    best = result.best_checkpoint or result.last_checkpoint
    accuracies = {"8x8": float(result.metrics["test/acc"])}
    for label, rate in ZERO_SHOT:
        metrics = evaluate(best, rate=rate, progress_bar=False)
        accuracies[label] = float(metrics["test/acc"])

    # the trained kernels sampled on the doubled grid (what the 16x16 evaluation uses)
    model, _, _ = load_model(best)
    plot_kernels(model, result.run_dir / "kernels_16x16.png", rate=2.0)

    print()
    print("test accuracy of the same trained CCNN (trained at 8x8 only):")
    for label, acc in accuracies.items():
        note = "training resolution" if label == "8x8" else "zero-shot"
        print(f"  {label:>5}: {format_metric('test/acc', acc):>8}   ({note})")
    print(f"\npictures: {result.run_dir / 'curves.png'}, {result.run_dir / 'kernels.png'}, "
          f"{result.run_dir / 'kernels_16x16.png'}")  # fmt: skip
    print(f"run folder: {result.run_dir}")
    return accuracies
