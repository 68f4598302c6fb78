"""The LightningDataModule of a run: a task's splits behind sharded, resumable batch samplers."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ckconv.app.sampling import EvalBatchSampler, TrainBatchSampler

__all__ = ["COLLATES", "TaskDataModule", "collate_fn"]

#: Batch layouts of :func:`collate_fn`.
COLLATES = ("default", "pad", "timestamps")


def collate_fn(kind: str):
    """The collate function of a task's batch layout: ``"default"`` (torch's
    ``default_collate``), ``"pad"`` (variable-length sequences,
    :func:`~ckconv.data.transforms.pad_collate`) or ``"timestamps"`` (timestamp-route items,
    :func:`~ckconv.data.transforms.timestamp_collate`)."""
    if kind == "default":
        from torch.utils.data import default_collate

        return default_collate
    if kind == "pad":
        from ckconv.data.transforms import pad_collate

        return pad_collate
    if kind == "timestamps":
        from ckconv.data.transforms import timestamp_collate

        return timestamp_collate
    raise ValueError(f"collate must be one of {COLLATES}, got {kind!r}")


class TaskDataModule(L.LightningDataModule):
    """Train / val / test loaders of ``datasets`` for this process of ``world_size``.

    The training batch sampler's position is part of the checkpoint (:meth:`state_dict`), so a
    run resumed mid-epoch continues with the batch after the last one it trained on.

    Args:
        datasets: ``{"train": ..., "val": ..., "test": ...}``.
        batch_size: global training batch size.
        eval_batch_size: global evaluation batch size.
        seed: seeds the per-epoch shuffling (identical on every process).
        drop_last: drop the last incomplete training batch.
        num_workers: loader worker processes.
        collate: ``"default"``, ``"pad"`` (variable-length sequences) or ``"timestamps"``
            (timestamp-route items); see :func:`collate_fn`.
        rank, world_size: this process and the number of processes.
    """

    def __init__(
        self,
        datasets: dict[str, Dataset],
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        collate: str = "default",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        self.datasets = datasets
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.num_workers = num_workers
        collate_fn(collate)  # an unknown layout fails here, not at the first batch
        self.collate = collate
        self.rank = rank
        self.world_size = world_size
        self.train_sampler = TrainBatchSampler(
            len(datasets["train"]),
            batch_size,
            seed=seed,
            shuffle=True,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
        )
        for split in ("val", "test"):
            n = len(datasets[split])
            if n < world_size:
                raise ValueError(
                    f"the {split} split has {n} items, fewer than the {world_size} processes"
                )

    # -------------------------------------------------------------- loaders
    def _collate_fn(self):
        return None if self.collate == "default" else collate_fn(self.collate)

    def _loader(self, dataset: Dataset, batch_sampler: Any, salt: int) -> DataLoader:
        # A private generator: creating the loader iterator then draws no number from torch's
        # global generator (which a resumed run restores exactly).
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.rank * 10 + salt)
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs["persistent_workers"] = True
        collate = self._collate_fn()
        if collate is not None:
            kwargs["collate_fn"] = collate
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.num_workers,
            generator=generator,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], self.train_sampler, 0)

    def _eval_loader(self, split: str, salt: int) -> DataLoader:
        per_rank = max(1, math.ceil(self.eval_batch_size / self.world_size))
        sampler = EvalBatchSampler(
            len(self.datasets[split]), per_rank, rank=self.rank, world_size=self.world_size
        )
        return self._loader(self.datasets[split], sampler, salt)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val", 1)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test", 2)

    # -------------------------------------------------------------- resumable state
    def mark_progress(self, epoch: int, batches_done: int) -> None:
        """Record that ``batches_done`` batches of ``epoch`` have gone through training."""
        self.train_sampler.mark(epoch, batches_done)

    def state_dict(self) -> dict[str, Any]:
        return {"train_sampler": self.train_sampler.state_dict(), "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(
                f"the checkpoint was trained with seed {state['seed']}, this run has {self.seed}"
            )
        self.train_sampler.load_state_dict(state["train_sampler"])
