"""``ckconv eval``: rebuild a trained model from its checkpoint and measure it on a split,
optionally at another sampling rate."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from torch import nn

from ckconv.app.config import Config, ConfigError, config_from_dict, config_to_dict
from ckconv.app.env import dist_env, init_distributed, seed_everything
from ckconv.app.errors import CheckpointError
from ckconv.app.quiet import expected_warnings_silenced
from ckconv.app.resample import resample_input
from ckconv.app.tasks import TaskBundle, build_model_from_config, build_task
from ckconv.app.trainer import make_trainer, scalar_metrics

__all__ = ["check_rate_applies", "evaluate", "evaluate_model", "load_model"]

_SPLITS = ("train", "val", "test")


def load_model(
    checkpoint: str | os.PathLike,
    overrides: list[tuple[str, Any]] | None = None,
    datasets: dict[str, Any] | None = None,
) -> tuple[nn.Module, Config, TaskBundle]:
    """Rebuild the trained network of a ``ckconv train`` checkpoint (``weights_only`` load).

    ``overrides`` may change the stored config's ``task.*`` / ``trainer.*`` keys (e.g. the data
    root on another machine). Returns the model with its weights (eval mode), the config and the
    task bundle. ``datasets`` replace the task's (a run trained with ``train(cfg, datasets=...)``
    has no files to read again). The model comes from the checkpoint's model spec; checkpoints
    written before they stored one are rebuilt from the config and the task's input sizes.
    ``checkpoint`` may be a run folder (its best checkpoint,
    :func:`ckconv.app.checkpoint.resolve_checkpoint`).
    """
    from ckconv.app.checkpoint import load_checkpoint, resolve_checkpoint
    from ckconv.app.config import apply_overrides
    from ckconv.app.module import CHECKPOINT_KEY
    from ckconv.models.checkpoint import ModelSpec, load_weights, model_from_checkpoint

    checkpoint = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    extra = ckpt.get(CHECKPOINT_KEY) or {}
    if "config" not in extra:
        raise CheckpointError(
            f"{checkpoint}: no ckconv config inside (not written by `ckconv train`)"
        )
    for key, _ in overrides or []:
        if not key.startswith(("task.", "trainer.")):
            raise ConfigError(f"{key}: only task.* and trainer.* keys can change after training")
    cfg = config_from_dict(apply_overrides(extra["config"], overrides or []))
    bundle = build_task(cfg, datasets)
    if ModelSpec.of(ckpt, str(checkpoint)) is not None:
        model = model_from_checkpoint(ckpt, str(checkpoint))
    else:  # written before checkpoints stored their model spec
        model = build_model_from_config(cfg, bundle).eval()
        load_weights(model, ckpt["state_dict"], str(checkpoint), "the model its config builds")
    return model, cfg, bundle


def evaluate(
    checkpoint: str | os.PathLike,
    *,
    split: str = "test",
    rate: float | None = None,
    resample: bool = True,
    overrides: list[tuple[str, Any]] | None = None,
    batch_size: int | None = None,
    progress_bar: bool = True,
    blur: bool = False,
    datasets: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Metrics of a checkpoint on a split, optionally at another sampling rate.

    ``datasets`` (as for :func:`ckconv.app.train`) replace the task's recorded data.

    ``rate`` (``sr_eval / sr_train``) is passed to the model; with ``resample`` the split's inputs
    are resampled to that rate first (zero-shot evaluation at another resolution). ``overrides``
    change the stored config's ``task`` options (e.g. a data root on another machine).
    ``blur``: blur the kernels when going finer (``rate > 1``; CKConv App. E.3).
    """
    if split not in _SPLITS:
        raise ValueError(f"--split must be train, val or test, got {split!r}")
    model, cfg, bundle = load_model(checkpoint, overrides, datasets)
    rate = check_rate_applies(cfg, bundle, rate)
    init_distributed(cfg, dist_env())
    input_rate = rate if resample else None
    return evaluate_model(model, cfg, bundle, split=split, rate=rate, input_rate=input_rate,
                          batch_size=batch_size, progress_bar=progress_bar, blur=blur)  # fmt: skip


def check_rate_applies(cfg: Config, bundle: TaskBundle, rate: Any, name: str = "--rate") -> Any:
    """The rate to pass to the model: ``rate`` itself, or None for a model that has none (a
    point-cloud model at rate 1). Another rate is refused for such a model: its positions are
    its input, so another density is another number of points per cloud (the task option
    ``num_points``, when the task has it), not a rate."""
    from ckconv.data.registry import TASKS
    from ckconv.models import model_entry

    if rate is None or not model_entry(cfg.model.name).takes("points"):
        return rate
    if float(rate) == 1.0:
        return None
    info = TASKS.get(bundle.name)
    points = (cfg.task.options or {}).get("num_points")
    if points is None and bundle.spec.input_size:  # the task's default
        points = int(bundle.spec.input_size[-1])
    hint = (
        f"; to evaluate at another point density, set the points per cloud instead, e.g. "
        f"task.num_points={2 * points if isinstance(points, int) else 2048}"
        + (f" (trained with {points})" if isinstance(points, int) else "")
        if info is not None and "num_points" in info.options
        else ""
    )
    raise ConfigError(
        f"{name}: {cfg.model.name} is a point-cloud model and takes no sampling rate{hint}"
    )


def _resampled(bundle: TaskBundle, split: str, input_rate: float | None):
    """The ``split`` dataset of ``bundle`` at ``input_rate`` (None or 1: as stored)."""
    from ckconv.data.transforms import MapDataset

    ds = bundle.datasets[split]
    if input_rate is None or float(input_rate) == 1.0:
        return ds
    r, tokens = float(input_rate), bundle.spec.tokens
    try:  # a rate the inputs cannot take fails here, not inside the data loader
        resample_input(ds[0][0], r, tokens)
    except ValueError as err:
        raise ConfigError(f"cannot evaluate task {bundle.name!r} at rate {r:g}: {err}") from None
    return MapDataset(ds, lambda x: resample_input(x, r, tokens))


def evaluate_model(
    model: nn.Module,
    cfg: Config,
    bundle: TaskBundle,
    *,
    split: str = "test",
    rate: float | None = None,
    input_rate: float | None = None,
    batch_size: int | None = None,
    progress_bar: bool = False,
    blur: bool = False,
) -> dict[str, float]:
    """Metrics of a model built by :func:`load_model` on ``bundle``'s ``split``.

    ``rate`` (``sr_eval / sr_train``) is passed to the model; the split's inputs are resampled by
    ``input_rate`` first (None or 1: as stored). The two differ when the stored data is not at the
    training rate (``ckconv sweep-rates`` evaluates every model on the native-rate data).
    Metrics are named after the split they were measured on (``val/acc`` for ``split="val"``).
    """
    from ckconv.app.datamodule import TaskDataModule
    from ckconv.app.module import TaskModule

    if split not in _SPLITS:
        raise ValueError(f"split must be train, val or test, got {split!r}")
    env = dist_env()
    seed_everything(cfg.seed, env.rank)
    module = TaskModule(
        model, bundle.objective, cfg.optim, config=config_to_dict(cfg), eval_rate=rate,
        eval_blur=blur,
    )  # fmt: skip
    data = _resampled(bundle, split, input_rate)
    datasets = {"train": bundle.datasets["train"], "val": data, "test": data}
    bs = batch_size or cfg.trainer.eval_batch_size or cfg.trainer.batch_size
    # (the training loader is not used; its batch only has to be valid)
    dm = TaskDataModule(datasets, batch_size=env.world_size, eval_batch_size=bs, seed=cfg.seed,
                        collate=bundle.collate, rank=env.rank, world_size=env.world_size)  # fmt: skip
    cfg = copy.deepcopy(cfg)
    cfg.trainer.progress_bar = progress_bar
    with expected_warnings_silenced(quiet=True):
        trainer = make_trainer(cfg, env, callbacks=[], loggers=False, root=Path.cwd())
        rows = trainer.test(module, datamodule=dm, verbose=False)
    out: dict[str, float] = {}
    for row in rows:  # Lightning's test loop logs test/<metric>: named after the real split
        out.update({_split_key(k, split): v for k, v in scalar_metrics(row).items()})
    return out


def _split_key(key: str, split: str) -> str:
    stage, sep, name = key.partition("/")
    return f"{split}/{name}" if sep and stage == "test" else key
