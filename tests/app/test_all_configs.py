"""Every shipped config trains, shrunk to one epoch of two batches, on data of its task's format
(files fabricated in the published layouts, generated data kept small, installed data as is).

The default selection runs one config per data format; the rest run under ``-m slow``."""

from __future__ import annotations

import math

import pytest

from ckconv.app.config import CONFIG_DIR, list_configs, load_config

SHRINK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.batch_size=4",
    "trainer.eval_batch_size=8",
    "trainer.progress_bar=false",
    "trainer.checkpoint_every_n_steps=0",
]

#: one config per data format (the cheapest), run in the default selection; formats whose
#: shipped configs are all slow to shrink (CIFAR-100, STL-10, ListOps, IMDB, Pathfinder,
#: ModelNet CCNNs; character PTB's CKCNN: 25 to 265 s each on a loaded 2-core machine) run under
#: -m slow only
FAST = {
    "generated sequences": "ckcnn_copy_memory_100",
    "scikit-learn digits": "ckcnn_seq_digits",
    "aeon .ts (timestamps)": "ckcnn_japanese_vowels_drop30_timestamps",
    "MNIST IDX": "ckcnn_smnist",
    "CIFAR-10 pickles": "ccnn_4_140_lra_image2d",
    "Speech Commands WAV": "ckcnn_speech_mfcc",
    "PhysioNet .psv": "ckcnn_physionet_sepsis",
    "UEA CharacterTrajectories": "ckcnn_character_trajectories_drop30",
    "generated point clouds": "point_ccnn_shapes",
}
SHIPPED = list_configs()
SLOW = sorted(set(SHIPPED) - set(FAST.values()))


def test_every_task_of_the_shipped_configs_has_data_here(fabricate, tmp_path):
    """Each task a shipped config uses is fabricated, generated small or installed (digits,
    aeon's problems); the fast selection names only shipped configs."""
    from ckconv.data.registry import list_tasks

    assert set(FAST.values()) <= set(SHIPPED)
    installed = {r.name for r in list_tasks(tmp_path) if r.source == "installed"}
    tasks = {load_config(CONFIG_DIR / f"{n}.yaml").task.name for n in SHIPPED}
    assert all(t in installed or fabricate.makes(t) for t in tasks), sorted(
        t for t in tasks if t not in installed and not fabricate.makes(t)
    )


def _train_shrunk(name, tmp_path, fabricate):
    from ckconv.app.training import train

    task = load_config(CONFIG_DIR / f"{name}.yaml").task.name
    data = fabricate.task_data(task, tmp_path / "data")
    cfg = load_config(CONFIG_DIR / f"{name}.yaml",
                      [*data, *SHRINK, f"trainer.out_dir={tmp_path / 'runs'}"])  # fmt: skip
    result = train(cfg)
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()
    tested = [v for k, v in result.metrics.items() if k.startswith("test/")]
    assert tested and all(math.isfinite(v) for v in tested), result.metrics


@pytest.mark.parametrize("name", sorted(FAST.values()))
def test_one_config_per_format_trains_shrunk(name, tmp_path, fabricate):
    _train_shrunk(name, tmp_path, fabricate)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_every_shipped_config_trains_shrunk(name, tmp_path, fabricate):
    _train_shrunk(name, tmp_path, fabricate)
