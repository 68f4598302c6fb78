"""Inputs at another sampling rate: the transform ``ckconv eval --rate`` and the rate tables
(:mod:`ckconv.app.rates`) apply to a split before evaluating."""

from __future__ import annotations

import torch

__all__ = ["resample_input"]


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
