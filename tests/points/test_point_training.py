"""The point CCNN learns the synthetic shapes task (examples/point_ccnn_shapes.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "point_ccnn_shapes.py"


def _example():
    spec = importlib.util.spec_from_file_location("point_ccnn_shapes", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_point_ccnn_learns_three_shapes():
    """3 classes (chance 33%), 240 training clouds of 128 points, 4 epochs of a 5k-parameter
    model: the test accuracy must clear 70% (measured 90-97% over seeds 0-2)."""
    result = _example().train_point_ccnn_on_shapes(
        num_classes=3,
        train_size=240,
        test_size=60,
        num_points=128,
        epochs=4,
        batch_size=16,
        hidden_channels=16,
        num_neighbors=8,
        threads=1,
        verbose=False,
    )
    assert result["test_accuracy"] >= 0.7, result["history"]
    assert result["history"][-1]["loss"] < result["history"][0]["loss"]


@pytest.mark.slow
def test_full_shapes_run_reaches_90_percent():
    """The full run of the example (8 classes, CCNN-4,32 with kernel hidden 8)."""
    result = _example().train_point_ccnn_on_shapes(threads=1, verbose=False)
    assert result["test_accuracy"] >= 0.9, result["history"]


def _transfer_example():
    path = _SCRIPT.with_name("point_ccnn_voxel_transfer.py")
    spec = importlib.util.spec_from_file_location("point_ccnn_voxel_transfer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_voxel_trained_model_classifies_raw_points_above_chance():
    """Train on occupied-voxel centres (32^3), test on raw points: 3 classes, chance 33%."""
    result = _transfer_example().train_voxel_to_points(
        num_classes=3,
        train_size=240,
        test_size=60,
        max_points=256,
        epochs=4,
        batch_size=16,
        hidden_channels=16,
        threads=1,
        verbose=False,
    )
    assert result["voxel_test_accuracy"] >= 0.7
    assert result["point_test_accuracy"] >= 0.5
