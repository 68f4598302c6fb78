"""Generated tasks: copy memory, adding problem (CKConv appendix C), associative recall (H3 and
Hyena papers) and the target functions of the kernel-fitting study (CKConv Sec. 4.2, Fig. 4).

Samples are generated on access from a generator seeded by ``(seed, split, index)``, so a dataset
of any length costs no memory, every access of an index returns the same sample, and the splits
never share a seed. For batches, the ``*_batch`` functions generate many samples at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv._checks import positive_int
from ckconv.data._common import SPLITS, check_split

__all__ = [
    "FITTING_TARGETS",
    "KERNEL_TARGETS",
    "AddingProblem",
    "AssociativeRecall",
    "CopyMemory",
    "KernelFitting",
    "adding_problem_batch",
    "associative_recall_batch",
    "copy_memory_batch",
    "kernel_fitting_target",
]


def _generator(seed: int, split: str, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _check_positive(name: str, value: int) -> int:
    return positive_int(name, value)


def copy_memory_batch(
    batch_size: int, length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the copy memory task with memory length ``T = length``.

    Each input has ``T + 20`` steps: 10 digits drawn from {1, ..., 8}, ``T - 1`` zeros and 11 nines
    (the last nine is the cue to recall). The target is 0 everywhere except the last 10 steps,
    which repeat the 10 digits.

    Shape:
        - Output inputs: ``(batch_size, 1, T + 20)`` float32 (digit values as one channel).
        - Output targets: ``(batch_size, T + 20)`` int64 classes in {0, ..., 9}.

    Examples:
        >>> x, y = copy_memory_batch(2, 100, torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([2, 1, 120]), torch.Size([2, 120]))
    """
    batch_size = _check_positive("batch_size", batch_size)
    length = _check_positive("length", length)
    digits = torch.randint(1, 9, (batch_size, 10), generator=generator)
    total = length + 20
    x = torch.zeros(batch_size, total, dtype=torch.int64)
    x[:, :10] = digits
    x[:, -11:] = 9
    y = torch.zeros(batch_size, total, dtype=torch.int64)
    y[:, -10:] = digits
    return x.to(torch.float32).unsqueeze(1), y


def adding_problem_batch(
    batch_size: int, length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of the adding problem of length ``T = length``.

    Channel 0 holds values uniform in [0, 1]; channel 1 is 0 except at two distinct random
    positions marked 1. The target is the sum of the two marked values. Always predicting 1 gives
    an expected squared error of Var(u1 + u2) = 1/6 (the papers quote "about 0.17").

    Shape:
        - Output inputs: ``(batch_size, 2, T)`` float32.
        - Output targets: ``(batch_size, 1)`` float32.

    Examples:
        >>> x, y = adding_problem_batch(4, 50, torch.Generator().manual_seed(0))
        >>> x.shape, y.shape, int(x[:, 1].sum())
        (torch.Size([4, 2, 50]), torch.Size([4, 1]), 8)
    """
    batch_size = _check_positive("batch_size", batch_size)
    length = _check_positive("length", length)
    if length < 2:
        raise ValueError(f"length must be at least 2 to place two markers, got {length}")
    values = torch.rand(batch_size, length, generator=generator)
    # Two distinct positions per row: the two smallest of i.i.d. uniform keys.
    keys = torch.rand(batch_size, length, generator=generator)
    positions = keys.topk(2, dim=1, largest=False).indices
    marker = torch.zeros(batch_size, length)
    marker.scatter_(1, positions, 1.0)
    target = values.gather(1, positions).sum(dim=1, keepdim=True)
    return torch.stack([values, marker], dim=1), target


def associative_recall_batch(
    batch_size: int, length: int, vocab_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of associative recall (the H3 and Hyena papers' synthetic task).

    The vocabulary splits into ``K = vocab_size // 2`` key tokens (ids ``0..K-1``) and
    ``V = vocab_size - K`` value tokens (ids ``K..vocab_size-1``).  Every sequence draws its own
    random map key -> value, then ``(length - 1) // 2`` key-value pairs (keys uniform, each
    followed by its value; a key may recur, always with the same value), and ends with a query
    key taken from one of its pairs.  An even ``length`` starts with one filler value token.
    The target is the query's value as a class ``0..V-1`` (value token id minus ``K``); chance
    is ``1 / V``.

    Shape:
        - Output inputs: ``(batch_size, length)`` int64 token ids.
        - Output targets: ``(batch_size,)`` int64 classes.

    Examples:
        >>> x, y = associative_recall_batch(2, 9, 6, torch.Generator().manual_seed(0))
        >>> x.shape, y.shape, bool((x[:, -1] < 3).all())
        (torch.Size([2, 9]), torch.Size([2]), True)
    """
    batch_size = _check_positive("batch_size", batch_size)
    length = _check_positive("length", length)
    vocab_size = _check_positive("vocab_size", vocab_size)
    if length < 3:
        raise ValueError(f"length must be at least 3 (a pair and a query), got {length}")
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4 (2 keys and 2 values), got {vocab_size}")
    n_keys = vocab_size // 2
    n_values = vocab_size - n_keys
    pairs = (length - 1) // 2
    mapping = torch.randint(0, n_values, (batch_size, n_keys), generator=generator)
    keys = torch.randint(0, n_keys, (batch_size, pairs), generator=generator)
    values = mapping.gather(1, keys) + n_keys
    asked = torch.randint(0, pairs, (batch_size, 1), generator=generator)
    query = keys.gather(1, asked)
    body = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * pairs)
    parts = [body, query]
    if (length - 1) % 2:
        filler = torch.randint(n_keys, vocab_size, (batch_size, 1), generator=generator)
        parts.insert(0, filler)
    x = torch.cat(parts, dim=1)
    y = mapping.gather(1, query)[:, 0]
    return x, y


class _GeneratedTask(Dataset):
    def __init__(self, length: int, num_samples: int, split: str, seed: int) -> None:
        self.length = _check_positive("length", length)
        self.num_samples = _check_positive("num_samples", num_samples)
        self.split = check_split(split)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.num_samples

    def _gen(self, index: int) -> torch.Generator:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        return _generator(self.seed, self.split, index % self.num_samples)

    def extra_repr(self) -> str:
        return f"length={self.length}, num_samples={self.num_samples}, split={self.split!r}, seed={self.seed}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class CopyMemory(_GeneratedTask):
    """The copy memory task (CKConv appendix C) as a dataset of ``num_samples`` sequences.

    Items are ``(x, y)`` with ``x`` of shape ``(1, length + 20)`` (float32) and ``y`` of shape
    ``(length + 20,)`` (int64, 10 classes per step); see :func:`copy_memory_batch`.

    Examples:
        >>> ds = CopyMemory(100, num_samples=10)
        >>> x, y = ds[0]
        >>> x.shape, y.shape, bool((y[-10:] == x[0, :10]).all())
        (torch.Size([1, 120]), torch.Size([120]), True)
    """

    num_classes = 10

    def __init__(self, length: int, num_samples: int = 10000, split: str = "train", seed: int = 0):
        super().__init__(length, num_samples, split, seed)

    def __getitem__(self, index: int):
        x, y = copy_memory_batch(1, self.length, self._gen(index))
        return x[0], y[0]


class AddingProblem(_GeneratedTask):
    """The adding problem (CKConv appendix C) as a dataset of ``num_samples`` sequences.

    Items are ``(x, y)`` with ``x`` of shape ``(2, length)`` and ``y`` of shape ``(1,)``; see
    :func:`adding_problem_batch`.
    """

    def __init__(self, length: int, num_samples: int = 10000, split: str = "train", seed: int = 0):
        super().__init__(length, num_samples, split, seed)
        if self.length < 2:
            raise ValueError(f"length must be at least 2, got {length}")

    def __getitem__(self, index: int):
        x, y = adding_problem_batch(1, self.length, self._gen(index))
        return x[0], y[0]


class AssociativeRecall(_GeneratedTask):
    """Associative recall (H3 and Hyena papers) as a dataset of ``num_samples`` sequences.

    Items are ``(x, y)`` with ``x`` ``(length,)`` int64 token ids in ``[0, vocab_size)`` and
    ``y`` the class of the query's value (``0 .. num_classes - 1``); see
    :func:`associative_recall_batch`.

    Examples:
        >>> ds = AssociativeRecall(65, vocab_size=20, num_samples=4)
        >>> x, y = ds[0]
        >>> x.shape, ds.vocab_size, ds.num_classes
        (torch.Size([65]), 20, 10)
    """

    def __init__(
        self,
        length: int,
        vocab_size: int = 20,
        num_samples: int = 10000,
        split: str = "train",
        seed: int = 0,
    ):
        super().__init__(length, num_samples, split, seed)
        # checks length and vocab_size (its own generator: the global RNG stays untouched)
        associative_recall_batch(1, self.length, vocab_size, torch.Generator())
        self.vocab_size = int(vocab_size)
        self.num_classes = self.vocab_size - self.vocab_size // 2

    def __getitem__(self, index: int):
        x, y = associative_recall_batch(1, self.length, self.vocab_size, self._gen(index))
        return x[0], y[0]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, vocab_size={self.vocab_size}"


#: Names of the 1D target functions :func:`kernel_fitting_target` can generate.
def _gaussian(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.exp(-0.5 * (x / 0.15) ** 2)


def _step(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (x >= 0).to(x.dtype)


def _sawtooth(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # 8 jumps, all inside the domain (a half ramp at each end, both ends at 0)
    return 2.0 * torch.remainder(8.0 * (x + 1.0) / 2.0 + 0.5, 1.0) - 1.0


def _sine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.sin(2.0 * math.pi * 8.0 * x)


def _sine_chirp(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    s = (x + 1.0) / 2.0  # 0 .. 1 over the kernel
    return torch.sin(2.0 * math.pi * (2.0 * s + 14.0 * s * s))


def _noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.dtype)


#: Target kernels ``f(x)`` on ``x in [-1, 1]`` for the kernel-fitting study, from smooth and
#: simple to non-smooth and non-linear (CKConv Figs. 4 and 7): ``(description, f(x, generator))``.
KERNEL_TARGETS: dict[str, tuple[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]]] = {
    "gaussian": ("exp(-x^2 / (2 * 0.15^2))", _gaussian),
    "step": ("0 for x < 0, 1 for x >= 0", _step),
    "sawtooth": ("ramps from -1 to 1 (slope 8) with 8 jumps back to -1", _sawtooth),
    "sine": ("sin(2 pi 8 x): 16 periods", _sine),
    "sine_chirp": (
        "sin(2 pi (2 s + 14 s^2)), s = (x + 1) / 2: 2 to 30 cycles per unit s",
        _sine_chirp,
    ),
    "noise": ("white Gaussian noise N(0, 1), one value per sample", _noise),
}
#: The names of :data:`KERNEL_TARGETS`.
FITTING_TARGETS = tuple(KERNEL_TARGETS)


def kernel_fitting_target(name: str, length: int = 1000, seed: int = 0) -> torch.Tensor:
    """Target ``name`` of :data:`KERNEL_TARGETS` sampled at ``length`` points of [-1, 1]
    (``linspace``, the grid of a CKConv with ``kernel_size=length``); ``seed`` fixes
    ``"noise"``. The same targets ``ckconv fit-kernel`` fits (:mod:`ckconv.studies`).

    Shape:
        - Output: ``(length,)`` float32.
    """
    length = _check_positive("length", length)
    if name not in KERNEL_TARGETS:
        raise ValueError(f"name must be one of {FITTING_TARGETS}, got {name!r}")
    t = torch.linspace(-1.0, 1.0, length, dtype=torch.float64)
    generator = torch.Generator().manual_seed(int(seed))
    return KERNEL_TARGETS[name][1](t, generator).to(torch.float32)


class KernelFitting(Dataset):
    """One item: the grid ``x (1, length)`` (``linspace(-1, 1)``) and the target kernel
    ``y (1, length)`` :func:`kernel_fitting_target` samples on it (the ``kernel_fitting`` task)."""

    def __init__(self, target: str = "sine_chirp", length: int = 1000, seed: int = 0) -> None:
        self.y = kernel_fitting_target(target, length, seed).unsqueeze(0)
        self.x = torch.linspace(-1, 1, self.y.shape[-1]).unsqueeze(0)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        if index not in (0, -1):
            raise IndexError(index)
        return self.x, self.y
