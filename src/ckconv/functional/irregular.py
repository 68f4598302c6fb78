"""Continuous convolutions over irregularly sampled 1D sequences with real timestamps.

Times are measured in *training samples*: the regular training grid is ``t = 0, 1, 2, ...``
(so a sequence subsampled by ``seq[::2]`` has times ``0, 2, 4, ...``).  A kernel of ``K``
training samples maps the offset ``o = t_in - t_out`` to the position
``p = anchor + o * 2 / (K - 1)`` (``anchor = +1`` causal, the centre tap otherwise), exactly the
positions the grid path samples; pairs with ``p`` outside ``[-1, 1]`` lie outside the trained
domain.  On the regular grid this path equals :func:`ckconv.functional.ckconv`.

Everything is batched and vectorised: per batch element the pairwise offsets form an
``(M, N)`` matrix, processed in chunks of output samples so memory stays bounded.  With kernel
nets that expose ``hidden_features`` / ``output_linear`` (every :class:`~ckconv.kernelnets.KernelNet`)
the input is contracted with the hidden features first and the output layer applied once (the
PointConv factorisation), so no ``C_out x C_in`` kernel is built per pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from ckconv._checks import (
    ArgumentValueError,
    bool_mask,
    choice,
    finite_tensor,
    open_unit,
    positive_int,
    tensor,
)
from ckconv._checks import weighting as check_weighting
from ckconv.functional.conv import mix
from ckconv.functional.masks import crop_counts, gaussian_mask
from ckconv.grids import grid_step

__all__ = ["density_weights", "irregular_ckconv"]

OutOfDomain = Literal["mask", "error"]
_EPS = 1e-6


def density_weights(times: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Local sample spacing (in training samples) of every observed sample.

    The mean of the gaps to the previous and next observed samples in time (one side at the
    ends; 1 for a lone sample).  On the training grid every weight is 1; on a grid subsampled by
    ``n`` every weight is ``n``, which reproduces the ``sr_train / sr_test`` scaling of CKConv
    eq. 5.

    Times need not be sorted: the samples are put in time order first and the weights returned
    in the input's order, so any permutation of the samples gets the same weights.  Samples at
    the same time share the spacing of that time (each gets its share; together they weigh what
    one sample there would).

    Shape:
        - times: ``(B, N)``, any order
        - mask: ``(B, N)`` bool, ``True`` where observed
        - Output: ``(B, N)`` (0 where not observed)
    """
    if mask is None:
        mask = torch.ones_like(times, dtype=torch.bool)
    # time order, unobserved samples last (stable: equal times keep their order)
    key = torch.where(mask, times, torch.full_like(times, float("inf")))
    order = torch.sort(key, dim=-1, stable=True).indices
    w_sorted = _sorted_spacing(times.gather(-1, order), mask.gather(-1, order))
    return torch.empty_like(w_sorted).scatter_(-1, order, w_sorted)


def _sorted_spacing(times: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`density_weights` of samples already in time order."""
    inf = torch.full_like(times, float("inf"))
    prev_incl = torch.cummax(torch.where(mask, times, -inf), dim=-1).values
    next_incl = torch.cummin(torch.where(mask, times, inf).flip(-1), dim=-1).values.flip(-1)
    prev_excl = torch.cat([-inf[..., :1], prev_incl[..., :-1]], dim=-1)
    next_excl = torch.cat([next_incl[..., 1:], inf[..., :1]], dim=-1)
    left = times - prev_excl
    right = next_excl - times
    lf, rf = torch.isfinite(left), torch.isfinite(right)
    both = (left + right) / 2
    w = torch.where(
        lf & rf, both, torch.where(lf, left, torch.where(rf, right, torch.ones_like(times)))
    )
    return torch.where(mask, w, torch.zeros_like(w))


def _check(input, times, mask, output_times, output_mask):
    tensor("input", input, floating=True)
    if input.dim() != 3:
        raise ArgumentValueError(
            f"input must have shape (B, C, N) for timestamps, got {tuple(input.shape)}", "input"
        )
    b, _, n = input.shape
    if n == 0 or b == 0:
        raise ArgumentValueError(
            f"input must be non-empty, got shape {tuple(input.shape)}", "input"
        )
    tensor("times", times, floating=True)
    if times.shape != (b, n):
        raise ArgumentValueError(
            f"times must have shape (B, N) = {(b, n)} (one time per sample of input), got "
            f"{tuple(times.shape)}",
            "times",
        )
    if mask is not None:
        bool_mask("mask", mask, (b, n))
    if output_times is not None:
        tensor("output_times", output_times, floating=True)
        if output_times.dim() != 2 or output_times.shape[0] != b:
            raise ArgumentValueError(
                f"output_times must have shape (B, M) with B={b}, got {tuple(output_times.shape)}",
                "output_times",
            )
    if output_mask is not None:
        if output_times is None:
            raise ArgumentValueError(
                "output_mask given without output_times; mask marks the input's samples",
                "output_mask",
            )
        bool_mask("output_mask", output_mask, tuple(output_times.shape))
    finite_tensor("times", times, where=mask)
    finite_tensor("input", input)
    if output_times is not None:
        finite_tensor("output_times", output_times, where=output_mask)


def irregular_ckconv(
    input: torch.Tensor,
    times: torch.Tensor,
    kernel_net: Callable[[torch.Tensor], torch.Tensor],
    kernel_size: int,
    bias: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    output_times: torch.Tensor | None = None,
    output_mask: torch.Tensor | None = None,
    mixer: torch.Tensor | None = None,
    causal: bool = True,
    weighting: Literal["none", "density"] = "none",
    out_of_domain: OutOfDomain = "mask",
    mask_mu: torch.Tensor | None = None,
    mask_sigma: torch.Tensor | None = None,
    mask_threshold: float = 0.1,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """CKConv / FlexConv over samples at arbitrary times (1D).

    Args:
        input: ``(B, C_in, N)`` values; unobserved entries must be finite (e.g. 0) and masked.
        times: ``(B, N)`` sample times in training samples (see module doc).
        kernel_net: as for :func:`ckconv.functional.ckconv`.
        kernel_size: kernel samples at the training rate.
        bias: ``(C_out,)``.
        mask: ``(B, N)`` bool, observed samples (default: all).
        output_times / output_mask: where to produce outputs (default: the input's samples).
        mixer: ``(C_out, C_in)`` makes the layer depthwise-separable.
        causal: outputs see only samples at earlier or equal times.
        weighting: ``"density"`` weights each sample by its local spacing
            (:func:`density_weights`), a Riemann sum robust to very non-uniform sampling.
        out_of_domain: pairs whose offset is outside the kernel's trained extent are dropped
            (``"mask"``) or raise (``"error"``).
        mask_mu, mask_sigma, mask_threshold: a FlexConv Gaussian mask (``(1,)`` each, as
            :func:`~ckconv.functional.flexconv`): the kernel is multiplied by it and offsets
            beyond its crop are dropped, as on the grid.  ``None``: no mask.
        chunk_size: output samples per chunk (default: keeps the pair block near 2**22 entries).

    Shape:
        - Output: ``(B, C_out, M)`` (``M = N`` by default); zero at unobserved outputs.
    """
    _check(input, times, mask, output_times, output_mask)
    choice("out_of_domain", out_of_domain, ("mask", "error"))
    positive_int("kernel_size", kernel_size)
    open_unit("mask_threshold", mask_threshold)
    if mask_sigma is not None:
        finite_tensor("mask_sigma", mask_sigma.detach())
    weighting = check_weighting(weighting, ("none", "density"))
    if (mask_mu is None) != (mask_sigma is None):
        raise ValueError("pass both mask_mu and mask_sigma (a Gaussian mask) or neither")
    bsz, _, n = input.shape
    if output_times is None:
        output_times, output_mask = times, mask
    if mask is None:
        mask = torch.ones(bsz, n, dtype=torch.bool, device=input.device)
    if output_mask is None:
        output_mask = torch.ones_like(output_times, dtype=torch.bool)
    dtype = input.dtype
    times, output_times = times.to(dtype), output_times.to(dtype)
    w_in = density_weights(times, mask) if weighting == "density" else mask.to(dtype)
    x = input * w_in.unsqueeze(1)  # (B, C, N): weights folded into the input once
    pairs = _PairRule(kernel_size, causal, out_of_domain, mask_mu, mask_sigma, mask_threshold)
    if chunk_size is None:
        chunk_size = max(1, (1 << 22) // max(1, bsz * n))
    outs = []
    for start in range(0, output_times.shape[1], chunk_size):
        rows = slice(start, start + chunk_size)
        pos, pair_w = pairs(times, mask, output_times[:, rows], output_mask[:, rows])
        outs.append(_sum_over_pairs(kernel_net, pos, pair_w, x, separable=mixer is not None))
    y = torch.cat(outs, dim=-1)
    if mixer is not None:
        y = mix(y, mixer, bias)
    elif bias is not None:
        y = y + bias.view(1, -1, 1)
    return y * output_mask.unsqueeze(1).to(dtype)


class _PairRule:
    """Which (output, input) sample pairs a kernel of ``kernel_size`` training samples sees,
    where (its kernel-net position) and with what weight (the FlexConv mask, if any)."""

    def __init__(self, kernel_size, causal, out_of_domain, mask_mu, mask_sigma, mask_threshold):
        self.kernel_size, self.causal, self.out_of_domain = kernel_size, causal, out_of_domain
        self.mask_mu, self.mask_sigma = mask_mu, mask_sigma
        self.step = grid_step(kernel_size)
        if causal:
            self.anchor = 1.0
        else:
            self.anchor = -1.0 + ((kernel_size - 1) // 2) * self.step if kernel_size > 1 else 0.0
        # FlexConv crop, in offset units (identical to the grid crop)
        self.max_offset = None
        if mask_sigma is not None:
            sigma = float(mask_sigma.detach().abs()[0])
            (self.max_offset,) = crop_counts([self.step], [sigma], mask_threshold, causal=causal)

    def __call__(self, times, mask, t_out, out_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions ``(B, m, N, 1)`` and weights ``(B, m, N)`` of the pairs of the outputs
        at ``t_out (B, m)`` (weight 0: not a pair)."""
        offsets = times.unsqueeze(1) - t_out.unsqueeze(2)  # (B, m, N): t_in - t_out
        pos = self.anchor + offsets * self.step
        inside = (pos >= -1.0 - _EPS) & (pos <= 1.0 + _EPS)
        valid = mask.unsqueeze(1) & out_mask.unsqueeze(2)
        if self.causal:
            valid = valid & (offsets <= _EPS)
        if self.out_of_domain == "error" and not torch.compiler.is_compiling():
            bad = valid & ~inside
            if bool(bad.any()):
                worst = float(offsets[bad].abs().max())
                raise ValueError(
                    f"sample offsets up to {worst:g} training samples lie outside the kernel's "
                    f"trained extent ({self.kernel_size - 1} samples); pass out_of_domain='mask' "
                    "to drop them"
                )
        valid = valid & inside
        if self.max_offset is not None:
            valid = valid & (offsets.abs() <= self.max_offset * (1 + 1e-9) + _EPS)
        pair_w = valid.to(times.dtype)
        pos = pos.clamp(-1.0, 1.0).unsqueeze(-1)  # (B, m, N, 1)
        if self.mask_sigma is not None:
            mu, sigma = self.mask_mu.to(times.dtype), self.mask_sigma.to(times.dtype)
            pair_w = pair_w * gaussian_mask(pos, mu, sigma)
        return pos, pair_w


def _sum_over_pairs(kernel_net, pos, pair_w, x, *, separable: bool) -> torch.Tensor:
    """``y[b, o, m] = sum_n pair_w k(pos)[o, c] x[b, c, n]`` over the pairs of one chunk of
    outputs: ``(B, C_out, m)`` (separable: ``(B, C_in, m)``, before the mixer).  Kernel nets with
    ``hidden_features`` / ``output_linear`` contract the input with the hidden features first
    and apply the output layer once."""
    c_in = x.shape[1]
    if not (hasattr(kernel_net, "hidden_features") and hasattr(kernel_net, "output_linear")):
        k = kernel_net(pos) * pair_w.unsqueeze(-1)  # (B, m, N, C_k)
        if separable:
            return torch.einsum("bmnc,bcn->bcm", k, x)
        c_out = k.shape[-1] // c_in
        return torch.einsum("bmnoc,bcn->bom", k.unflatten(-1, (c_out, c_in)), x)
    h = kernel_net.hidden_features(pos) * pair_w.unsqueeze(-1)  # (B, m, N, H)
    a = torch.einsum("bmnh,bcn->bmch", h, x)  # (B, m, C_in, H)
    s = torch.einsum("bmn,bcn->bmc", pair_w, x)  # (B, m, C_in)
    lin = kernel_net.output_linear
    weight = lin.weight  # (C_k, H)
    if separable:
        y = torch.einsum("bmch,ch->bcm", a, weight)
        if lin.bias is not None:
            y = y + (s * lin.bias).transpose(1, 2)
        return y
    c_out = weight.shape[0] // c_in
    y = torch.einsum("bmch,och->bom", a, weight.view(c_out, c_in, -1))
    if lin.bias is not None:
        y = y + torch.einsum("bmc,oc->bom", s, lin.bias.view(c_out, c_in))
    return y
