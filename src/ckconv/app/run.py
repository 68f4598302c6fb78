"""Training and evaluation runs: everything ``ckconv train`` and ``ckconv eval`` do.

One process or many: under ``torchrun`` each process reads its rank from the environment, the
global batch is split evenly over the processes (DDP, gloo on CPU, nccl on GPUs), rank 0 names the
run folder and is the only one that writes to it, and every process seeds with ``seed + rank``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ckconv.app.config import Config, ConfigError, config_from_dict, config_to_dict, dump_config
from ckconv.app.run_dir import RunPaths, atomic_write_text, new_run_dir, write_json
from ckconv.app.tasks import TaskBundle, build_model_from_config, build_task

__all__ = [
    "DistEnv",
    "RunResult",
    "dist_env",
    "evaluate",
    "evaluate_model",
    "load_model",
    "prepare",
    "resample_input",
    "train",
]


# Lightning warnings that do not apply to runs built here: the batch sampler is resumable (but
# not through Lightning's loader protocol), loaders default to no worker processes, tiny test
# runs log less often than they have steps, and resumed runs reuse their checkpoint folder.
_EXPECTED_WARNINGS = (
    r".*resuming from a checkpoint that ended before the epoch ended.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*isinstance\(treespec, LeafSpec\).*",
)


class _DropAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


@contextlib.contextmanager
def _expected_warnings_silenced(quiet: bool = False):
    """Silence the warnings above (and, with ``quiet``, Lightning's info lines)."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    added = []
    for handler in lightning_log.handlers:
        if not any(isinstance(f, _DropAdvert) for f in handler.filters):
            handler.addFilter(flt := _DropAdvert())
            added.append((handler, flt))
    if quiet:
        lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        lightning_log.setLevel(level)
        for handler, flt in added:
            handler.removeFilter(flt)


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a torchrun job (a single process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def is_zero(self) -> bool:
        return self.rank == 0

    @property
    def num_nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))


def dist_env() -> DistEnv:
    """Read ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE`` (set by torchrun)."""
    env = os.environ

    def get(name: str, default: int) -> int:
        try:
            return int(env.get(name, default))
        except ValueError:
            raise ValueError(f"environment variable {name}={env[name]!r} is not an int") from None

    world = get("WORLD_SIZE", 1)
    return DistEnv(
        rank=get("RANK", 0),
        local_rank=get("LOCAL_RANK", 0),
        world_size=world,
        local_world_size=get("LOCAL_WORLD_SIZE", world),
    )


def _use_gpu(cfg: Config) -> bool:
    acc = cfg.trainer.accelerator
    return acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())


def _init_distributed(cfg: Config, env: DistEnv) -> None:
    """Join the torchrun job's process group (Lightning reuses an initialised group)."""
    if env.world_size <= 1 or torch.distributed.is_initialized():
        return
    backend = "nccl" if _use_gpu(cfg) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(env.local_rank)
    torch.distributed.init_process_group(backend=backend, init_method="env://")


def _broadcast(obj: Any) -> Any:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def seed_everything(seed: int, rank: int) -> None:
    """Seed python, numpy and torch with ``seed + rank`` (quietly)."""
    from lightning.fabric.utilities.seed import seed_everything as _seed

    _seed(seed + rank, workers=True, verbose=False)


def _check_output(model: nn.Module, bundle: TaskBundle) -> None:
    """One forward pass on two training items before any training: sizes that cannot work fail
    here, with the config key to change."""
    import inspect

    from ckconv.app.datamodule import collate_fn
    from ckconv.app.module import split_batch

    ds = bundle.datasets["train"]
    items = [ds[i] for i in range(min(2, len(ds)))]
    batch = collate_fn(bundle.collate)(items)
    x, keywords, y = split_batch(batch)
    if "times" in keywords:
        params = inspect.signature(model.forward).parameters
        if not {"times", "mask", "weighting"} <= set(params):
            raise ConfigError(
                f"model.name: {type(model).__name__} cannot take sample times; task "
                f"{bundle.name!r} gives timestamped inputs (task.route: timestamps). Use a "
                "continuous model (ckcnn, ccnn) or task.route: mask"
            )
        keywords["weighting"] = bundle.weighting
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x, **keywords)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(
            f"model: a forward pass on task {bundle.name!r} inputs failed: {err}"
        ) from None
    finally:
        model.train(was_training)
    o = bundle.objective
    if o.classification:
        want = (x.shape[0], bundle.out_channels, *y.shape[1:])
    else:
        want = tuple(y.shape)
    if tuple(out.shape) != tuple(want):
        hint = " (per-step task: set model.head: none)" if o.per_step else ""
        raise ConfigError(
            f"model.head: the model outputs {tuple(out.shape)} for a batch of 2, the task "
            f"{bundle.name!r} needs {tuple(want)}{hint}"
        )


@dataclass
class Prepared:
    """A run's parts, built and checked before training starts."""

    cfg: Config
    env: DistEnv
    bundle: TaskBundle
    model: nn.Module
    datamodule: Any
    module: Any
    steps_per_epoch: int
    total_steps: int


def prepare(cfg: Config, env: DistEnv | None = None) -> Prepared:
    """Build and check the task, model, data module and LightningModule of ``cfg`` (no training).

    Raises :class:`ConfigError` naming the key for anything that cannot run.
    """
    from ckconv.app.datamodule import TaskDataModule
    from ckconv.app.module import TaskModule

    env = env or dist_env()
    t = cfg.trainer
    if t.tensorboard:
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ConfigError(
                "trainer.tensorboard: needs the tensorboard package (pip install tensorboard)"
            )
    if t.batch_size % env.world_size:
        raise ConfigError(
            f"trainer.batch_size: {t.batch_size} is not divisible by the {env.world_size} "
            "training processes (it is the global batch size)"
        )
    seed_everything(cfg.seed, env.rank)
    bundle = build_task(cfg)
    model = build_model_from_config(cfg, bundle)
    _check_output(model, bundle)
    if env.world_size > 1 and t.sync_batchnorm and not _use_gpu(cfg):
        from ckconv.app.syncbn import convert_batchnorm

        model = convert_batchnorm(model)  # torch's SyncBatchNorm is GPU-only
    try:
        dm = TaskDataModule(
            bundle.datasets,
            batch_size=t.batch_size,
            eval_batch_size=t.eval_batch_size or t.batch_size,
            seed=cfg.seed,
            drop_last=t.drop_last,
            num_workers=t.num_workers,
            collate=bundle.collate,
            rank=env.rank,
            world_size=env.world_size,
        )
    except ValueError as err:
        raise ConfigError(f"trainer.batch_size: {err}") from None
    batches = len(dm.train_sampler)
    if t.limit_train_batches:
        batches = min(batches, t.limit_train_batches)
    steps_per_epoch = max(1, -(-batches // t.accumulate_grad_batches))
    total = steps_per_epoch * t.max_epochs
    if t.max_steps > 0:
        total = min(total, t.max_steps)
    module = TaskModule(
        model,
        bundle.objective,
        cfg.optim,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        config=config_to_dict(cfg),
    )
    return Prepared(cfg, env, bundle, model, dm, module, steps_per_epoch, total)


def _make_trainer(cfg: Config, env: DistEnv, *, callbacks: list, loggers: list | bool, root: Path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from ckconv.app.checkpoint import AtomicCheckpointIO

    t = cfg.trainer
    kwargs: dict[str, Any] = {}
    if env.world_size > 1:
        from lightning.pytorch.strategies import DDPStrategy

        kwargs["strategy"] = DDPStrategy(process_group_backend="nccl" if _use_gpu(cfg) else "gloo")
        kwargs["devices"] = env.local_world_size
        kwargs["num_nodes"] = env.num_nodes
        if t.sync_batchnorm and _use_gpu(cfg):
            kwargs["sync_batchnorm"] = True
    else:
        if t.devices not in ("auto", 1) or t.num_nodes != 1:
            raise ConfigError(
                f"trainer.devices={t.devices!r} / trainer.num_nodes={t.num_nodes}: start several "
                "processes with torchrun (see the README); a single process trains on one device"
            )
        kwargs["devices"] = 1
    return L.Trainer(
        accelerator=t.accelerator,
        precision=t.precision,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        limit_train_batches=t.limit_train_batches or None,
        limit_val_batches=t.limit_val_batches or None,
        check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=cfg.optim.grad_clip or None,
        gradient_clip_algorithm=cfg.optim.grad_clip_algorithm if cfg.optim.grad_clip else None,
        deterministic=t.deterministic,
        enable_progress_bar=t.progress_bar and env.is_zero,
        enable_model_summary=env.is_zero,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(root),
        **kwargs,
    )


@dataclass
class RunResult:
    """What a finished run reports (also written to ``summary.json``)."""

    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None


def _scalar_metrics(raw: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in raw.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _resolve_resume(resume: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(resume)
    if path.is_dir():
        ckpt = RunPaths(path).last
        if not ckpt.is_file():
            raise FileNotFoundError(f"--resume: {str(path)!r} has no checkpoints/last.ckpt")
        return path, ckpt
    if path.is_file():
        return path.parent.parent, path
    raise FileNotFoundError(f"--resume: no run folder or checkpoint at {str(path)!r}")


def train(
    cfg: Config | None = None,
    *,
    resume: str | os.PathLike | None = None,
    overrides: list[tuple[str, Any]] | None = None,
    extra_callbacks: list | None = None,
) -> RunResult:
    """Train ``cfg`` in a new run folder, or continue the run at ``resume`` (a run folder or a
    checkpoint) from its last checkpoint, applying ``overrides`` to the saved config."""
    import yaml
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from ckconv.app.callbacks import LastCheckpoint
    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.config import apply_overrides
    from ckconv.app.csvlog import ResumableCSVLogger

    env = dist_env()
    ckpt_path: Path | None = None
    keep_before: int | None = None
    if resume is not None:
        run_dir, ckpt_path = _resolve_resume(resume)
        saved = RunPaths(run_dir).config
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {str(run_dir)!r} has no config.yaml")
        data = yaml.safe_load(saved.read_text())
        cfg = config_from_dict(apply_overrides(data, overrides or []))
        keep_before = int(load_checkpoint(ckpt_path)["global_step"])
    elif cfg is None:
        raise ValueError("train() needs a config or a run to resume")
    _init_distributed(cfg, env)
    prepared = prepare(cfg, env)
    if resume is None:
        # rank 0 names the folder (a timestamp) and tells the others; an error reaches them all
        named: tuple[str, str] = ("", "")
        if env.is_zero:
            try:
                named = (str(new_run_dir(cfg.trainer.out_dir, cfg.name, cfg.trainer.version)), "")
            except OSError as err:
                named = ("", str(err))
        folder, error = _broadcast(named)
        if error:
            raise FileExistsError(error)
        run_dir = Path(folder)
    paths = RunPaths(run_dir)
    if env.is_zero:
        atomic_write_text(paths.config, dump_config(cfg))
        # a process killed while writing leaves its temporary file behind
        for debris in paths.checkpoints.glob(".*.tmp"):
            debris.unlink()
    objective = prepared.bundle.objective
    monitor = cfg.trainer.monitor or f"val/{objective.metric}"
    mode = cfg.trainer.monitor_mode
    if mode == "auto":
        if cfg.trainer.monitor is None:
            mode = objective.mode
        else:
            mode = "min" if monitor.endswith(("loss", "mse", "bpc")) else "max"
    best = ModelCheckpoint(
        dirpath=paths.checkpoints,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks = [best, LastCheckpoint(paths.last, cfg.trainer.checkpoint_every_n_steps)]
    loggers: list = [ResumableCSVLogger(paths.metrics, keep_before_step=keep_before)]
    if cfg.optim.scheduler != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    if cfg.trainer.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    callbacks += list(extra_callbacks or [])
    with _expected_warnings_silenced():
        trainer = _make_trainer(cfg, env, callbacks=callbacks, loggers=loggers, root=run_dir)
    if env.is_zero:
        n = sum(p.numel() for p in prepared.model.parameters())
        print(f"training in {run_dir}")
        print(f"task {cfg.task.name}: {len(prepared.bundle.datasets['train'])} train items, "
              f"model {cfg.model.name} ({n:,} parameters), {env.world_size} process(es)")  # fmt: skip
    t0 = time.perf_counter()
    with _expected_warnings_silenced():
        trainer.fit(
            prepared.module,
            datamodule=prepared.datamodule,
            ckpt_path=str(ckpt_path) if ckpt_path else None,
            weights_only=True,
        )
    fit_seconds = time.perf_counter() - t0
    metrics = _scalar_metrics(trainer.callback_metrics)
    best_path = paths.best if paths.best.is_file() else None
    if cfg.trainer.test_after_fit:
        with _expected_warnings_silenced():
            results = trainer.test(
                prepared.module,
                datamodule=prepared.datamodule,
                ckpt_path=str(best_path) if best_path else None,
                weights_only=True,
                verbose=False,
            )
        for row in results:
            metrics.update(_scalar_metrics(row))
    result = RunResult(run_dir, metrics, best_path, paths.last if paths.last.is_file() else None)
    if env.is_zero:
        _finish(prepared, paths, result, fit_seconds, best.best_model_score)
    return result


def _finish(prepared: Prepared, paths: RunPaths, result: RunResult, seconds: float, best) -> None:
    from ckconv.app.plots import plot_curves, plot_kernels

    plot_curves(paths.metrics, paths.curves)
    plot_kernels(prepared.model, paths.kernels)
    summary = {
        "task": prepared.cfg.task.name,
        "model": prepared.cfg.model.name,
        "parameters": sum(p.numel() for p in prepared.model.parameters()),
        "fit_seconds": round(seconds, 2),
        "best_val": None if best is None else float(best),
        "metrics": result.metrics,
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
    }
    write_json(paths.summary, summary)


# ----------------------------------------------------------------------------- evaluation


def resample_input(x: torch.Tensor, rate: float, tokens: bool = False) -> torch.Tensor:
    """One input ``(C, *spatial)`` at ``rate`` times its sampling rate (the extent is fixed).

    Sequences keep their first sample and the training grid: ``rate = 1/n`` keeps every n-th
    sample (``seq[::n]``, CKConv App. E.2); other rates give ``round(L * rate)`` samples at
    positions ``k / rate`` (in input steps), linearly interpolated and held at the last sample, so
    ``rate = m`` keeps every input sample at ``m``-th positions (``out[::m] == x``). Images /
    volumes: bilinear / trilinear resampling (antialiased when shrinking), sizes rounded.
    Timestamped items ``(values, times, mask)``: every n-th observed sample for ``rate = 1/n``
    (:func:`ckconv.data.transforms.resample_timestamps`; other rates raise).
    """
    import torch.nn.functional as F

    if tokens:
        raise ValueError("token sequences cannot be resampled")
    rate = float(rate)
    if not rate > 0 or rate == float("inf"):
        raise ValueError(f"rate must be a positive finite number, got {rate}")
    if isinstance(x, (tuple, list)):  # a timestamp-route item (values, times, mask)
        from ckconv.data.transforms import resample_timestamps

        return resample_timestamps(tuple(x), rate)
    dims = x.dim() - 1
    if dims == 1:
        inv = 1.0 / rate
        if rate < 1 and abs(inv - round(inv)) < 1e-9:
            from ckconv.data.transforms import subsample

            return subsample(x, round(inv))
        length = x.shape[-1]
        n = max(1, round(length * rate))
        pos = torch.arange(n, dtype=torch.float64) / rate
        left = pos.floor().clamp(max=length - 1)
        frac = (pos - left).clamp(0.0, 1.0).to(x.device, torch.float32)
        left = left.long().to(x.device)
        right = (left + 1).clamp(max=length - 1)
        x = x.float()
        return x[..., left] * (1.0 - frac) + x[..., right] * frac
    if dims == 2:
        from ckconv.data.transforms import resize_image

        return resize_image(x, scale=rate)
    size = [max(1, round(s * rate)) for s in x.shape[1:]]
    return F.interpolate(x[None].float(), size=size, mode="trilinear", align_corners=False)[0]


def load_model(
    checkpoint: str | os.PathLike, overrides: list[tuple[str, Any]] | None = None
) -> tuple[nn.Module, Config, TaskBundle]:
    """Rebuild the trained network of a ``ckconv train`` checkpoint (``weights_only`` load).

    ``overrides`` may change the stored config's ``task.*`` / ``trainer.*`` keys (e.g. the data
    root on another machine). Returns the model with its weights, the config and the task bundle.
    """
    from ckconv.app.checkpoint import load_checkpoint
    from ckconv.app.config import apply_overrides
    from ckconv.app.module import CHECKPOINT_KEY

    ckpt = load_checkpoint(checkpoint)
    extra = ckpt.get(CHECKPOINT_KEY) or {}
    if "config" not in extra:
        raise ValueError(f"{checkpoint}: no ckconv config inside (not written by `ckconv train`)")
    for key, _ in overrides or []:
        if not key.startswith(("task.", "trainer.")):
            raise ConfigError(f"{key}: only task.* and trainer.* keys can change after training")
    cfg = config_from_dict(apply_overrides(extra["config"], overrides or []))
    bundle = build_task(cfg)
    model = build_model_from_config(cfg, bundle)
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(
            f"{checkpoint}: the weights do not fit the model rebuilt from its config ({err})"
        ) from None
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
) -> dict[str, float]:
    """Metrics of a checkpoint on a split, optionally at another sampling rate.

    ``rate`` (``sr_eval / sr_train``) is passed to the model; with ``resample`` the split's inputs
    are resampled to that rate first (zero-shot evaluation at another resolution). ``overrides``
    change the stored config's ``task`` options (e.g. a data root on another machine).
    ``blur``: blur the kernels when going finer (``rate > 1``; CKConv App. E.3).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"--split must be train, val or test, got {split!r}")
    model, cfg, bundle = load_model(checkpoint, overrides)
    _init_distributed(cfg, dist_env())
    input_rate = rate if resample else None
    return evaluate_model(model, cfg, bundle, split=split, rate=rate, input_rate=input_rate,
                          batch_size=batch_size, progress_bar=progress_bar, blur=blur)  # fmt: skip


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
    Metrics are named ``test/<metric>`` whatever the split.
    """
    from ckconv.app.datamodule import TaskDataModule
    from ckconv.app.module import TaskModule
    from ckconv.data.transforms import MapDataset

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    env = dist_env()
    seed_everything(cfg.seed, env.rank)
    module = TaskModule(
        model, bundle.objective, cfg.optim, config=config_to_dict(cfg), eval_rate=rate,
        eval_blur=blur,
    )  # fmt: skip
    datasets = dict(bundle.datasets)
    if input_rate is not None and float(input_rate) != 1.0:
        r, tokens = float(input_rate), bundle.spec.tokens
        try:  # a rate the inputs cannot take fails here, not inside the data loader
            resample_input(datasets[split][0][0], r, tokens)
        except ValueError as err:
            raise ConfigError(
                f"cannot evaluate task {bundle.name!r} at rate {r:g}: {err}"
            ) from None
        datasets[split] = MapDataset(datasets[split], lambda x: resample_input(x, r, tokens))
    datasets = {"train": datasets["train"], "val": datasets[split], "test": datasets[split]}
    bs = batch_size or cfg.trainer.eval_batch_size or cfg.trainer.batch_size
    # (the training loader is not used; its batch only has to be valid)
    dm = TaskDataModule(datasets, batch_size=env.world_size, eval_batch_size=bs, seed=cfg.seed,
                        collate=bundle.collate, rank=env.rank, world_size=env.world_size)  # fmt: skip
    cfg = copy.deepcopy(cfg)
    cfg.trainer.progress_bar = progress_bar
    with _expected_warnings_silenced(quiet=True):
        trainer = _make_trainer(cfg, env, callbacks=[], loggers=False, root=Path.cwd())
        rows = trainer.test(module, datamodule=dm, verbose=False)
    out: dict[str, float] = {}
    for row in rows:
        out.update(_scalar_metrics(row))
    return out
