"""Transforms: missing samples (mask and timestamp routes, SPEC 3.7), sampling-rate changes,
normalisation with training statistics, and collate functions for variable-length sequences.

Per-sample randomness (which samples are dropped) comes from a generator seeded by
``(seed, index)``: the same index always gets the same drop pattern, whatever the access order,
the number of workers or the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ckconv.data._common import check_rate

__all__ = [
    "ChannelNormalize",
    "DropSamples",
    "MapDataset",
    "PaddedBatch",
    "Subsample",
    "TimestampBatch",
    "channel_stats",
    "drop_keep_mask",
    "index_generator",
    "mask_route",
    "pad_collate",
    "resample_timestamps",
    "resize_image",
    "subsample",
    "timestamp_collate",
    "timestamp_route",
]


def index_generator(seed: int, index: int) -> torch.Generator:
    """A torch generator seeded from ``(seed, index)`` (independent streams per index)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def drop_keep_mask(
    length: int, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Boolean ``(length,)`` mask that keeps all but ``int(length * rate)`` random positions
    (the same count as Kidger et al. 2020: drops whole time steps, every channel at once)."""
    rate = check_rate("rate", rate)
    n_drop = int(length * rate)
    keep = torch.ones(length, dtype=torch.bool)
    if n_drop:
        keep[torch.randperm(length, generator=generator)[:n_drop]] = False
    return keep


def mask_route(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mask-channel route: zero the dropped steps and append an "observed" channel.

    Shape:
        - Input x: ``(C, L)``; keep: ``(L,)`` bool.
        - Output: ``(C + 1, L)``; the last channel is 1 where observed, 0 where dropped.
    """
    if x.dim() != 2 or keep.shape != (x.shape[-1],):
        raise ValueError(
            f"expected x (C, L) and keep (L,), got {tuple(x.shape)} and {tuple(keep.shape)}"
        )
    observed = keep.to(x.dtype)
    return torch.cat([x * observed, observed.unsqueeze(0)], dim=0)


def timestamp_route(
    x: torch.Tensor, keep: torch.Tensor, times: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Timestamp route: keep only the observed steps together with their sample times.

    ``times`` defaults to the step indices ``0, 1, ..., L-1`` (float). Returns
    ``(values (C, K), times (K,), mask (K,))`` where K is the number of kept steps; ``mask`` is
    all True here and marks padding once :func:`timestamp_collate` batches unequal K.
    """
    if x.dim() != 2 or keep.shape != (x.shape[-1],):
        raise ValueError(
            f"expected x (C, L) and keep (L,), got {tuple(x.shape)} and {tuple(keep.shape)}"
        )
    if times is None:
        times = torch.arange(x.shape[-1], dtype=x.dtype if x.is_floating_point() else torch.float32)
    elif times.shape != keep.shape:
        raise ValueError(f"times must have shape {tuple(keep.shape)}, got {tuple(times.shape)}")
    k = int(keep.sum())
    return x[:, keep], times[keep], torch.ones(k, dtype=torch.bool)


def resample_timestamps(
    item: tuple[torch.Tensor, torch.Tensor, torch.Tensor], rate: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A timestamp-route input at ``rate = 1/n`` times its sampling rate.

    Keeps every n-th observed sample (the first one included, as ``seq[::n]``) and expresses the
    times in samples of the new rate (``t / n``), the unit the training app converts back with
    ``t / rate`` before the model sees them. Going finer (``rate > 1``) would need samples that
    were never observed, so only ``1/n`` is accepted.

    Shape:
        - item: ``values (C, K)``, ``times (K,)``, ``mask (K,)`` bool.
        - Output: ``values (C, K')``, ``times (K',)``, ``mask (K',)`` with ``K' = ceil(K_obs / n)``.
    """
    values, times, mask = item
    rate = float(rate)
    inv = 1.0 / rate if rate > 0 else float("inf")
    if not (0 < rate <= 1) or abs(inv - round(inv)) > 1e-9:
        raise ValueError(
            f"timestamped samples can only be resampled at rate 1/n (n = 1, 2, ...), got {rate}"
        )
    n = round(inv)
    kept = torch.nonzero(mask, as_tuple=True)[0][::n]
    return values[:, kept], times[kept] / n, mask[kept]


class DropSamples(Dataset):
    """Drop a fraction of the time steps of every sequence of ``dataset`` (seeded, reproducible).

    Items of ``dataset`` must be ``(x, y)`` with ``x`` of shape ``(C, L)``. The same ``int(L*rate)``
    steps are dropped in every channel (Kidger et al. 2020; CKConv Table 4).

    Args:
        dataset: the source dataset.
        rate: fraction dropped, e.g. 0.3, 0.5, 0.7.
        route: ``"mask"`` -> ``(x_zeroed_with_observed_channel (C+1, L), y)``;
            ``"timestamps"`` -> ``((values (C, K), times (K,), mask (K,)), y)``.
        seed: with the item index, seeds which steps are dropped.
        times: optional ``(L,)`` sample times for the timestamp route (default: step index).
    """

    def __init__(
        self,
        dataset: Dataset,
        rate: float,
        route: str = "mask",
        seed: int = 0,
        times: torch.Tensor | None = None,
    ) -> None:
        self.rate = check_rate("rate", rate)
        if route not in ("mask", "timestamps"):
            raise ValueError(f"route must be 'mask' or 'timestamps', got {route!r}")
        self.dataset = dataset
        self.route = route
        self.seed = int(seed)
        self.times = times

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        keep = drop_keep_mask(x.shape[-1], self.rate, index_generator(self.seed, index))
        if self.route == "mask":
            return mask_route(x, keep), y
        times = None if self.times is None else self.times[: x.shape[-1]]
        return timestamp_route(x, keep, times), y

    def __repr__(self) -> str:
        return f"DropSamples(rate={self.rate}, route={self.route!r}, seed={self.seed}, dataset={self.dataset!r})"


def subsample(x: torch.Tensor, n: int) -> torch.Tensor:
    """Lower the sampling rate by ``n`` along the last dimension: ``x[..., ::n]`` (keeps the first
    sample, as in CKConv appendix E.2 and Gu et al. 2020)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return x[..., :: int(n)]


class Subsample:
    """Transform form of :func:`subsample` (``seq[::n]``)."""

    def __init__(self, n: int) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        self.n = int(n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return subsample(x, self.n)

    def __repr__(self) -> str:
        return f"Subsample(n={self.n})"


def resize_image(
    x: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    scale: float | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample an image ``(C, H, W)`` (or batch ``(N, C, H, W)``) to ``size`` or by ``scale``.

    Down-sampling uses antialiasing (a low-pass before decimation); ``mode`` is passed to
    :func:`torch.nn.functional.interpolate` (``"bilinear"``, ``"bicubic"``, ``"nearest"``, ...).
    """
    if (size is None) == (scale is None):
        raise ValueError("pass exactly one of size or scale")
    single = x.dim() == 3
    if x.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    xb = x.unsqueeze(0) if single else x
    h, w = xb.shape[-2:]
    if size is None:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    elif isinstance(size, int):
        size = (size, size)
    antialias = mode in ("bilinear", "bicubic") and (size[0] < h or size[1] < w)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(xb.float(), size=size, mode=mode, antialias=antialias, **kwargs)
    return out[0] if single else out


def channel_stats(
    samples: Iterable[torch.Tensor], ignore_nan: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std over samples ``(C, ...)`` of any trailing shape.

    Accumulates in float64 so large datasets do not lose precision; NaNs (missing values) are
    skipped when ``ignore_nan``. Pass only the *training* split.
    """
    total = sq = count = None
    for x in samples:
        x = torch.as_tensor(x).to(torch.float64).reshape(x.shape[0], -1)
        if ignore_nan:
            finite = ~torch.isnan(x)
            x = torch.where(finite, x, torch.zeros((), dtype=x.dtype))
            n = finite.sum(dim=1).to(torch.float64)
        else:
            n = torch.full((x.shape[0],), float(x.shape[1]), dtype=torch.float64)
        if total is None:
            total, sq, count = x.sum(1), (x * x).sum(1), n
        else:
            total, sq, count = total + x.sum(1), sq + (x * x).sum(1), count + n
    if total is None:
        raise ValueError("channel_stats needs at least one sample")
    if bool((count == 0).any()):
        raise ValueError(
            f"some channels have no observed values: {torch.nonzero(count == 0).flatten().tolist()}"
        )
    mean = total / count
    var = (sq / count - mean * mean).clamp_min(0.0)
    return mean.float(), var.sqrt().float()


class ChannelNormalize:
    """``(x - mean[c]) / (std[c] + eps)`` per channel of ``x`` ``(C, ...)``; NaNs stay NaN."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, eps: float = 1e-5) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std = torch.as_tensor(std, dtype=torch.float32).flatten()
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"mean and std shapes differ: {tuple(self.mean.shape)} vs {tuple(self.std.shape)}"
            )
        self.eps = float(eps)

    @classmethod
    def fit(cls, samples: Iterable[torch.Tensor], eps: float = 1e-5) -> ChannelNormalize:
        """Statistics from ``samples`` (the training split)."""
        return cls(*channel_stats(samples), eps=eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.mean.numel():
            raise ValueError(f"expected {self.mean.numel()} channels, got shape {tuple(x.shape)}")
        shape = (-1,) + (1,) * (x.dim() - 1)
        return (x - self.mean.view(shape)) / (self.std.view(shape) + self.eps)

    def __repr__(self) -> str:
        return f"ChannelNormalize(channels={self.mean.numel()}, eps={self.eps})"


class MapDataset(Dataset):
    """Apply ``fn`` to the input of every ``(x, y)`` item of ``dataset``."""

    def __init__(self, dataset: Dataset, fn: Callable) -> None:
        self.dataset = dataset
        self.fn = fn

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return self.fn(x), y


class PaddedBatch(NamedTuple):
    """A batch of variable-length sequences padded at the end.

    ``x`` ``(B, C, L_max)``, ``y`` stacked targets, ``lengths`` ``(B,)`` int64 and ``mask``
    ``(B, L_max)`` bool (True on real samples).
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor

    def model_inputs(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the model gets: ``model(x)``; the padding is trailing zeros, as missing samples
        are on the mask route."""
        return self.x, {}


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_value: float = 0.0
) -> PaddedBatch:
    """Collate ``(x (C, L_i), y)`` items into a :class:`PaddedBatch` (for ``DataLoader``)."""
    if not batch:
        raise ValueError("pad_collate got an empty batch")
    xs = [b[0] for b in batch]
    channels = {x.shape[0] for x in xs}
    if len(channels) != 1 or any(x.dim() != 2 for x in xs):
        raise ValueError(
            f"pad_collate expects (C, L) inputs with equal C, got {[tuple(x.shape) for x in xs]}"
        )
    lengths = torch.tensor([x.shape[-1] for x in xs], dtype=torch.int64)
    lmax = int(lengths.max())
    out = xs[0].new_full((len(xs), xs[0].shape[0], lmax), pad_value)
    for i, x in enumerate(xs):
        out[i, :, : x.shape[-1]] = x
    mask = torch.arange(lmax).unsqueeze(0) < lengths.unsqueeze(1)
    ys = torch.stack([torch.as_tensor(b[1]) for b in batch])
    return PaddedBatch(out, ys, lengths, mask)


class TimestampBatch(NamedTuple):
    """Batched timestamp-route samples: ``values (B, C, K_max)``, ``times (B, K_max)``,
    ``mask (B, K_max)`` (False on padding) and ``y``.

    Like :class:`PaddedBatch` it says what the model gets (:meth:`model_inputs`); the training
    app feeds every batch type with that method this way.
    """

    values: torch.Tensor
    times: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor

    def model_inputs(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the model gets: ``model(values, times=times, mask=mask)``."""
        return self.values, {"times": self.times, "mask": self.mask}


def timestamp_collate(batch) -> TimestampBatch:
    """Collate ``((values (C, K_i), times (K_i,), mask (K_i,)), y)`` items, padding with zeros;
    padded times repeat each sequence's last time so they stay non-decreasing."""
    if not batch:
        raise ValueError("timestamp_collate got an empty batch")
    vals = [b[0][0] for b in batch]
    kmax = max(v.shape[-1] for v in vals)
    values = vals[0].new_zeros((len(vals), vals[0].shape[0], kmax))
    times = torch.zeros(len(vals), kmax, dtype=batch[0][0][1].dtype)
    mask = torch.zeros(len(vals), kmax, dtype=torch.bool)
    for i, ((v, t, m), _) in enumerate(batch):
        k = v.shape[-1]
        values[i, :, :k] = v
        times[i, :k] = t
        if 0 < k < kmax:
            times[i, k:] = t[-1]
        mask[i, :k] = m
    ys = torch.stack([torch.as_tensor(b[1]) for b in batch])
    return TimestampBatch(values, times, mask, ys)
