"""Batch samplers that shard a *global* batch over processes and resume mid-epoch exactly.

Training: epoch ``e`` visits ``randperm(n)`` drawn from a generator seeded with ``(seed, e)``
(or ``0..n-1`` without shuffling; :class:`EpochOrder`), cut into global batches of ``batch_size``; process ``r`` of
``world_size`` takes items ``r, r + world_size, ...`` of every global batch. The union of the
processes' micro-batches at a step is therefore the global batch a single process would see with
the same seed, which is what makes a torchrun job equivalent to one process with the same global
batch. ``resume_at(epoch, batches_done)`` makes the next iteration of that epoch skip the batches a
killed run had already trained on.

Evaluation: every item exactly once, contiguous shards, no padding (metrics must not count an
item twice).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["EpochOrder", "EvalBatchSampler", "TrainBatchSampler"]


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class EpochOrder(Sampler[int]):
    """The global order of ``num_samples`` items in an epoch: ``randperm`` seeded with
    ``(seed, epoch)``, or ``0..n-1`` without shuffling. ``set_epoch`` (called by Lightning on
    ``batch_sampler.sampler``) selects the epoch."""

    def __init__(self, num_samples: int, *, seed: int = 0, shuffle: bool = True) -> None:
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The order of ``epoch``."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        words = np.random.SeedSequence([self.seed, int(epoch)]).generate_state(2)
        gen = torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))
        return torch.randperm(self.num_samples, generator=gen)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch).tolist())


class TrainBatchSampler(Sampler[list[int]]):
    """Shuffled global batches, this process's share of each, resumable mid-epoch.

    Args:
        num_samples: dataset length.
        batch_size: global batch size (divisible by ``world_size``).
        seed: seeds the per-epoch permutation (the same on every process).
        shuffle: draw a new permutation every epoch.
        drop_last: drop the last incomplete global batch. Without it, the last batch is trimmed to
            a multiple of ``world_size`` so every process gets the same number of items.
        rank, world_size: this process and the number of processes.

    Examples:
        >>> s = TrainBatchSampler(10, 4, shuffle=False)
        >>> list(s)
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        >>> [list(TrainBatchSampler(10, 4, shuffle=False, rank=r, world_size=2)) for r in (0, 1)]
        [[[0, 2], [4, 6], [8]], [[1, 3], [5, 7], [9]]]
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.world_size = _check_int("world_size", world_size, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size={world_size}, got {rank}")
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {world_size} processes"
            )
        self.sampler = EpochOrder(self.num_samples, seed=seed, shuffle=shuffle)
        self.drop_last = bool(drop_last)
        self._resume: tuple[int, int] | None = None
        # progress of the epoch being trained, what a checkpoint stores
        self.progress_epoch = 0
        self.progress_batches = 0
        if len(self) == 0:
            raise ValueError(
                f"{num_samples} samples give no training batch of {batch_size} "
                f"(drop_last={drop_last}, {world_size} processes)"
            )

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        if self.drop_last:
            return full
        return full + (1 if rest >= self.world_size else 0)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (Lightning calls ``batch_sampler.sampler.set_epoch``)."""
        self.sampler.set_epoch(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Skip the first ``batches_done`` batches the next time ``epoch`` is iterated."""
        self._resume = (int(epoch), int(batches_done))
        self.progress_epoch, self.progress_batches = int(epoch), int(batches_done)

    def mark(self, epoch: int, batches_done: int) -> None:
        """Record training progress (the checkpoint state): ``batches_done`` of ``epoch``."""
        self.progress_epoch, self.progress_batches = int(epoch), int(batches_done)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.progress_epoch, "batches_done": self.progress_batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.resume_at(state["epoch"], state["batches_done"])

    def __iter__(self) -> Iterator[list[int]]:
        epoch = self.epoch
        skip = 0
        if self._resume is not None and self._resume[0] == epoch:
            skip = self._resume[1]
        self._resume = None
        order = self.sampler.order(epoch).tolist()
        n, bs, w = self.num_samples, self.batch_size, self.world_size
        for b in range(skip, len(self)):
            batch = order[b * bs : min((b + 1) * bs, n)]
            if len(batch) % w:
                batch = batch[: len(batch) - len(batch) % w]
            yield batch[self.rank :: w]

    def __repr__(self) -> str:
        return (
            f"TrainBatchSampler(num_samples={self.num_samples}, batch_size={self.batch_size}, "
            f"shuffle={self.sampler.shuffle}, drop_last={self.drop_last}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )


class EvalBatchSampler(Sampler[list[int]]):
    """Each item exactly once: process ``r`` takes a contiguous shard, in batches.

    Shards differ in size by at most one item; a process may get no batch when there are fewer
    items than processes.

    Examples:
        >>> [list(EvalBatchSampler(5, 2, rank=r, world_size=2)) for r in (0, 1)]
        [[[0, 1], [2]], [[3, 4]]]
    """

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1):
        self.num_samples = _check_int("num_samples", num_samples, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.world_size = _check_int("world_size", world_size, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size={world_size}, got {rank}")
        base, extra = divmod(self.num_samples, self.world_size)
        self.start = self.rank * base + min(self.rank, extra)
        self.stop = self.start + base + (1 if self.rank < extra else 0)

    def __len__(self) -> int:
        return math.ceil((self.stop - self.start) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for lo in range(self.start, self.stop, self.batch_size):
            yield list(range(lo, min(lo + self.batch_size, self.stop)))
