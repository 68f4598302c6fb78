"""``ckconv train``: train a config in a new run folder, or continue a run from its last
checkpoint.

One process or many: under ``torchrun`` each process reads its rank from the environment, the
global batch is split evenly over the processes (DDP, gloo on CPU, nccl on GPUs), rank 0 names the
run folder and is the only one that writes to it, and every process seeds with ``seed + rank``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckconv.app.config import Config, config_from_dict, dump_config
from ckconv.app.env import DistEnv, broadcast, dist_env, init_distributed
from ckconv.app.errors import CheckpointError
from ckconv.app.metrics import metric_of
from ckconv.app.prepare import Prepared, prepare
from ckconv.app.quiet import expected_warnings_silenced
from ckconv.app.run_dir import RunPaths, atomic_write_text, new_run_dir, write_json
from ckconv.app.trainer import make_trainer, scalar_metrics

__all__ = ["RunResult", "train"]


@dataclass
class RunResult:
    """What a finished run reports (also written to ``summary.json``).

    ``metrics`` holds the last validation's ``val/*`` values (epoch ``last_val_epoch``) and
    the test metrics of ``best_checkpoint`` (``trainer.test_after_fit``). ``best_checkpoint``
    is the epoch ``best_epoch`` (counted from 1), where ``monitor`` had its best value
    ``best_value``: the validation ``ckconv eval --checkpoint best.ckpt --split val`` gives.
    The last four are filled by the process that writes the run folder (rank 0).
    """

    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    monitor: str | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    last_val_epoch: int | None = None


def _resolve_resume(resume: str | os.PathLike) -> tuple[Path, Path]:
    from ckconv.app.checkpoint import resolve_checkpoint

    ckpt = resolve_checkpoint(resume, prefer="last", name="--resume")
    if not ckpt.is_file():
        raise FileNotFoundError(f"--resume: no run folder or checkpoint at {str(ckpt)!r}")
    return ckpt.parent.parent, ckpt


def _resumed(resume, overrides) -> tuple[Config, Path, Path, int]:
    """The saved config (with ``overrides``), run folder, checkpoint and step of a resumed run."""
    import yaml

    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.config import apply_overrides

    run_dir, ckpt_path = _resolve_resume(resume)
    saved = RunPaths(run_dir).config
    if not saved.is_file():
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} has no config.yaml")
    data = yaml.safe_load(saved.read_text())
    cfg = config_from_dict(apply_overrides(data, overrides or []))
    contents = load_checkpoint(ckpt_path)
    if not isinstance(contents.get("global_step"), int):
        raise CheckpointError(f"{ckpt_path}: no global_step inside (not a ckconv train checkpoint)")
    return cfg, run_dir, ckpt_path, contents["global_step"]


def _check_resumable(prepared: Prepared, ckpt_path: Path) -> None:
    """The checkpoint's weights fit the model its run's config builds (else a
    :class:`CheckpointError` naming the file, before Lightning starts)."""
    import copy

    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.models.checkpoint import load_weights

    state = load_checkpoint(ckpt_path)["state_dict"]
    load_weights(
        copy.deepcopy(prepared.module),
        state,
        str(ckpt_path),
        "the model its run's config.yaml builds",
    )


def _new_run_dir(cfg: Config, env: DistEnv) -> Path:
    """Rank 0 names the folder (a timestamp) and tells the others; an error reaches them all."""
    named: tuple[str, str] = ("", "")
    if env.is_zero:
        try:
            named = (str(new_run_dir(cfg.trainer.out_dir, cfg.name, cfg.trainer.version)), "")
        except OSError as err:
            named = ("", str(err))
    folder, error = broadcast(named)
    if error:
        raise FileExistsError(error)
    return Path(folder)


_LOSS = "val/loss"  # what the module logs as the validation loss; best.ckpt's tie-breaker


def _monitor(cfg: Config, prepared: Prepared) -> tuple[str, str]:
    """The metric the best checkpoint is chosen by, and whether it is minimised or maximised."""
    monitor = cfg.trainer.monitor or f"val/{prepared.bundle.objective.metric}"
    mode = cfg.trainer.monitor_mode
    return monitor, metric_of(monitor).mode if mode == "auto" else mode


def _callbacks(cfg: Config, prepared: Prepared, paths: RunPaths, keep_before: int | None):
    """The best/last checkpoint callbacks (best first) and the loggers of a run."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    from ckconv.app.callbacks import (
        BestCheckpoint,
        EpochLines,
        LastCheckpoint,
        progress_bars_wanted,
    )
    from ckconv.app.csvlog import ResumableCSVLogger

    monitor, mode = _monitor(cfg, prepared)
    best = BestCheckpoint(
        # an equal monitored value with a lower validation loss replaces best.ckpt
        tie_break=None if monitor == _LOSS else _LOSS,
        dirpath=paths.checkpoints,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks = [best, LastCheckpoint(paths.last, cfg.trainer.checkpoint_every_n_steps)]
    loggers: list = [ResumableCSVLogger(paths.metrics, keep_before_step=keep_before)]
    if cfg.optim.scheduler != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if not progress_bars_wanted(cfg.trainer.progress_bar):
        callbacks.append(EpochLines())
    if cfg.trainer.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(paths.root), name="tensorboard", version=""))
    return callbacks, loggers


def train(
    cfg: Config | None = None,
    *,
    resume: str | os.PathLike | None = None,
    overrides: list[tuple[str, Any]] | None = None,
    extra_callbacks: list | None = None,
    datasets: dict[str, Any] | None = None,
) -> RunResult:
    """Train ``cfg`` in a new run folder, or continue the run at ``resume`` (a run folder or a
    checkpoint) from its last checkpoint, applying ``overrides`` to the saved config.

    ``datasets`` trains on your own in-memory datasets instead of ``task.name``'s: a dict with
    the keys ``"train"`` (required), ``"val"`` and ``"test"`` (each missing one is 15 % of
    ``train``, held out stratified by class and seeded by ``cfg.seed``) of ``torch`` datasets
    whose items are ``(x, y)`` as the task table's (``x`` ``(C, *spatial)`` float, ``y`` an
    int64 class or float targets: classification or regression is read from them). ``task.name``
    then only names the task; ``cfg=None`` is
    :func:`ckconv.app.tasks.default_config` (a model sized from the data). Evaluate such a checkpoint with
    ``ckconv.app.evaluate(..., datasets=...)``.
    """
    env = dist_env()
    ckpt_path: Path | None = None
    keep_before: int | None = None
    if resume is not None:
        cfg, run_dir, ckpt_path, keep_before = _resumed(resume, overrides)
    elif cfg is None:
        if datasets is None:
            raise ValueError("train() needs a config, datasets or a run to resume")
        from ckconv.app.tasks import default_config

        cfg = default_config(["task.name=datasets"])
    init_distributed(cfg, env)
    prepared = prepare(cfg, env, datasets)
    cfg = prepared.cfg
    if ckpt_path is not None:
        _check_resumable(prepared, ckpt_path)
    if resume is None:
        run_dir = _new_run_dir(cfg, env)
    paths = RunPaths(run_dir)
    if env.is_zero:
        atomic_write_text(paths.config, dump_config(cfg))
        # a process killed while writing leaves its temporary file behind
        for debris in paths.checkpoints.glob(".*.tmp"):
            debris.unlink()
    callbacks, loggers = _callbacks(cfg, prepared, paths, keep_before)
    callbacks += list(extra_callbacks or [])
    with expected_warnings_silenced():
        trainer = make_trainer(cfg, env, callbacks=callbacks, loggers=loggers, root=run_dir)
    if env.is_zero:
        n = sum(p.numel() for p in prepared.model.parameters())
        print(f"training in {run_dir}")
        print(f"task {cfg.task.name}: {len(prepared.bundle.datasets['train'])} train items, "
              f"model {cfg.model.name} ({n:,} parameters), {env.world_size} process(es)")  # fmt: skip
        for note in prepared.notes:
            print(f"note: {note}")
    result, seconds = _fit_and_test(trainer, prepared, paths, ckpt_path)
    if env.is_zero:
        _record_best_and_last(result, paths, callbacks[0])
        _finish(prepared, paths, result, seconds)
    return result


def _fit_and_test(trainer, prepared: Prepared, paths: RunPaths, ckpt_path: Path | None):
    """Fit (from ``ckpt_path`` when resuming), then test the best checkpoint if the config asks."""
    t0 = time.perf_counter()
    with expected_warnings_silenced():
        trainer.fit(
            prepared.module,
            datamodule=prepared.datamodule,
            ckpt_path=str(ckpt_path) if ckpt_path else None,
            weights_only=True,
        )
    fit_seconds = time.perf_counter() - t0
    metrics = scalar_metrics(trainer.callback_metrics)
    best_path = paths.best if paths.best.is_file() else None
    if prepared.cfg.trainer.test_after_fit:
        with expected_warnings_silenced():
            results = trainer.test(
                prepared.module,
                datamodule=prepared.datamodule,
                ckpt_path=str(best_path) if best_path else None,
                weights_only=True,
                verbose=False,
            )
        for row in results:
            metrics.update(scalar_metrics(row))
    last = paths.last if paths.last.is_file() else None
    return RunResult(paths.root, metrics, best_path, last), fit_seconds


def _record_best_and_last(result: RunResult, paths: RunPaths, best) -> None:
    """Fill in which epoch ``best.ckpt`` holds (its own ``epoch`` field) with the monitored
    value that chose it, and the epoch of the last validation (``metrics.csv``'s last row of
    ``val/*`` values: the ones in ``result.metrics``); resumed runs included."""
    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.csvlog import read_metrics

    result.monitor = best.monitor
    score = best.best_model_score
    result.best_value = None if score is None else float(score)
    if result.best_checkpoint is not None:
        epoch = load_checkpoint(result.best_checkpoint).get("epoch")
        result.best_epoch = epoch + 1 if isinstance(epoch, int) else None
    validated = [
        row
        for row in read_metrics(paths.metrics)
        if row.get("epoch") and any(k.startswith("val/") and v for k, v in row.items())
    ]
    if validated:
        result.last_val_epoch = int(validated[-1]["epoch"]) + 1


def _finish(prepared: Prepared, paths: RunPaths, result: RunResult, seconds: float) -> None:
    from ckconv.app.plots import plot_curves, plot_kernels

    plot_curves(paths.metrics, paths.curves)
    plot_kernels(prepared.model, paths.kernels)
    summary = {
        "task": prepared.cfg.task.name,
        "model": prepared.cfg.model.name,
        "parameters": sum(p.numel() for p in prepared.model.parameters()),
        "fit_seconds": round(seconds, 2),
        "best_val": result.best_value,
        "metrics": result.metrics,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        # which epochs the numbers above are: best_val is best.ckpt's (epoch best_epoch,
        # counted from 1), metrics' val/* the last validation's (epoch last_val_epoch)
        "monitor": result.monitor,
        "best_epoch": result.best_epoch,
        "last_val_epoch": result.last_val_epoch,
    }
    write_json(paths.summary, summary)
