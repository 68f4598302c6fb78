"""Shared pieces of the training-app tests: a tiny run config and subprocess helpers."""

import os
import shutil
import sys
from pathlib import Path

import pytest

# A CCNN with one block of 4 channels on scikit-learn digits (64-step sequences, offline):
# dropout (random numbers), BatchNorm (running statistics), FlexConv masks (their own optimiser
# group), kernel L2 and a warm-up schedule are all exercised, in seconds.
TINY = [
    "name=tiny",
    "task.name=digits",
    "model.name=ccnn",
    "model.hidden_channels=4",
    "model.num_blocks=1",
    "model.dropout=0.1",
    "optim.lr=0.01",
    "optim.kernel_l2=0.001",
    "optim.weight_decay=0.0001",
    "optim.warmup_epochs=1",
    "trainer.max_epochs=3",
    "trainer.batch_size=32",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.checkpoint_every_n_steps=4",
    "trainer.log_every_n_steps=1",
    "trainer.deterministic=true",
    "trainer.progress_bar=false",
]


def _ckconv_command() -> list[str]:
    """The installed ``ckconv`` command, or the module behind it."""
    exe = shutil.which("ckconv")
    return [exe] if exe else [sys.executable, "-m", "ckconv.app.cli"]


def _subprocess_env() -> dict[str, str]:
    """One thread per process: the same float reductions in every run, and no oversubscription
    on a shared 2-core machine."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                "MASTER_PORT"):  # fmt: skip
        env.pop(key, None)
    return env


@pytest.fixture
def tiny(tmp_path) -> list[str]:
    """The tiny config's overrides, writing runs under ``tmp_path``."""
    return [*TINY, f"trainer.out_dir={tmp_path / 'runs'}"]


def _run_folder(root: Path, name: str = "tiny", version: str | None = None) -> Path:
    base = root / "runs" / name
    if version is not None:
        return base / version
    (only,) = list(base.iterdir())
    return only


@pytest.fixture
def ckconv_command() -> list[str]:
    return _ckconv_command()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    return _subprocess_env()


@pytest.fixture
def run_folder():
    """``run_folder(tmp_path, name="tiny", version=None)``: a run's folder."""
    return _run_folder


def _accuracy_by_hand(model, dataset, *, rate=None, transform=None) -> float:
    """The fraction of ``dataset``'s items whose largest logit is the label: the model applied
    to the whole split at once, no data loader, Lightning or torchmetrics (the oracle for the
    app's ``test/acc``). ``transform`` is applied to each input, ``rate`` passed to the model."""
    import torch

    items = [dataset[i] for i in range(len(dataset))]
    x = torch.stack([item[0] if transform is None else transform(item[0]) for item in items])
    y = torch.stack([torch.as_tensor(item[1]) for item in items])
    model.eval()
    with torch.no_grad():
        out = model(x) if rate is None else model(x, rate=rate)
    return float((out.argmax(1) == y).double().mean())


@pytest.fixture
def accuracy_by_hand():
    """``accuracy_by_hand(model, dataset, rate=None, transform=None)``: see above."""
    return _accuracy_by_hand
