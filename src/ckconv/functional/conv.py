"""Convolution with kernels as long as the input: FFT and direct paths with one convention.

``conv(input, weight)`` is a cross-correlation (the ``torch.nn.functional.conv{1,2,3}d``
convention) whose output has the input's spatial size:

* centred: equals ``F.conv{1,2,3}d(input, weight, padding="same")`` — the tap at index
  ``(K - 1) // 2`` is applied at the output position (left padding ``(K - 1) // 2``,
  right padding ``K // 2``);
* causal (1D): equals ``F.conv1d(F.pad(input, (K - 1, 0)), weight)`` — the last tap is the
  current sample, output ``t`` depends on inputs ``<= t`` only.

Kernels may be longer than the input (taps that cannot reach any output are ignored).

Boundary conditions (``padding_mode``, one for every axis or one per spatial axis, as in
``torch.nn.Conv{1,2,3}d``): ``"zeros"`` (the above: linear convolution) or ``"circular"``
(a periodic axis): ``y[i] = sum_j x[(i + j - c) mod L] w[j]`` with the same centre
``c = (K - 1) // 2``, i.e. ``F.conv{1,2,3}d(F.pad(input, pads, mode="circular"), weight)``
with the ``padding="same"`` pads on that axis.  A kernel longer than the axis is folded onto
one period (:func:`~ckconv.functional.fft_engine.wrap_kernel`), so every length works (torch's
circular padding stops at pads of ``L``).  The FFT path transforms a circular axis at its own
length.  Causal convolutions are zero-padded (1D only).

Two back-ends give the same numbers: ``direct`` (``F.conv{1,2,3}d``) and ``fft`` (the engine
of :mod:`ckconv.functional.fft_engine`).  ``method="auto"`` picks direct for small effective
kernels (after dropping taps that cannot reach an output) and FFT otherwise, from crossover
constants per device kind (:data:`CROSSOVER`; ``benchmarks/bench_crossover.py --device``
measures them).

The FFT engine has two paths, chosen by device (:func:`~ckconv.functional.fft_engine.engine_path`):
``"blocked"`` on the CPU (cache-sized row blocks with reused buffers) and ``"batched"`` on
every other device and under ``torch.compile`` (one transform over all rows, chunked only
when the temporaries exceed a memory budget).  :func:`plan_conv` returns the whole decision
(method, path, FFT sizes, dtypes, chunking) as a :class:`ConvPlan` without computing anything,
so it can be asked for any device, including ``meta``.

Mixed precision: float16/bfloat16 inputs, and any call under ``torch.autocast``, run the
transforms in float32 and return the input's dtype (the autocast dtype under autocast, as
``F.conv1d`` does); under autocast the input, weight and bias may differ in floating dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ckconv._checks import padding_modes
from ckconv.functional.fft_engine import (
    NONFINITE_INPUT,
    BackwardMode,
    EnginePath,
    all_finite,
    batched_chunking,
    batched_fft_conv,
    block_fft_conv,
    blocked_row_blocks,
    compute_dtype,
    effective_taps,
    engine_path,
    fft_size,
    padding_for,
    plan_for,
    wrap_kernel,
)

__all__ = [
    "CROSSOVER",
    "DIRECT_MAX_TAPS",
    "DIRECT_MAX_TAPS_CUDA",
    "DIRECT_MAX_TAPS_INFERENCE",
    "DIRECT_MAX_TAPS_INFERENCE_CUDA",
    "ConvPlan",
    "Crossover",
    "boundary_pad",
    "circular_axes",
    "conv",
    "crossover_for",
    "direct_conv",
    "fft_conv",
    "fft_size",
    "mix",
    "padding_for",
    "plan_conv",
    "select_method",
    "stream_conv",
    "validate_conv_args",
]

Method = Literal["auto", "fft", "direct"]
#: ``"zeros"`` or ``"circular"`` for every axis, or a sequence with one per spatial axis.
PaddingMode = str | Sequence[str]
Path = Literal["direct", "blocked", "batched"]
_METHODS = ("auto", "fft", "direct")
_PATHS = ("auto", "blocked", "batched")
_BACKWARD_MODES = ("auto", "save_spectrum", "recompute")

#: ``method="auto"`` on the CPU uses direct convolution when the effective kernel (taps that can
#: reach an output) has at most this many taps and gradients are needed, keyed by
#: ``(data_dim, "depthwise" | "dense")`` ("depthwise": one input channel per group).
#: Measured forward+backward with ``benchmarks/bench_crossover.py`` (table in its docstring):
#: PyTorch's CPU backward of a depthwise ``F.convNd`` is slow, so training crosses over early.
DIRECT_MAX_TAPS: dict[tuple[int, str], int] = {
    (1, "depthwise"): 11,
    (1, "dense"): 21,
    (2, "depthwise"): 15,
    (2, "dense"): 121,
    (3, "depthwise"): 27,
    (3, "dense"): 125,
}

#: The same limits on the CPU when no gradient is needed (inference): the direct forward alone
#: stays faster than the FFT up to much larger kernels.
DIRECT_MAX_TAPS_INFERENCE: dict[tuple[int, str], int] = {
    (1, "depthwise"): 151,
    (1, "dense"): 55,
    (2, "depthwise"): 289,
    (2, "dense"): 169,
    (3, "depthwise"): 512,
    (3, "dense"): 216,
}

#: Defaults for CUDA (and every other non-CPU device), **not measured yet** (no GPU was at
#: hand): on a GPU the batched FFT path costs a few memory-bound passes over the data
#: whatever the kernel length, while cuDNN's direct convolution costs grow with the taps;
#: the limits keep the CPU's ordering (training below inference, dense below depthwise) at
#: the kernel sizes where direct GPU convolutions are commonly reported to stop winning
#: (~64 taps in 1D, 7x7 in 2D).  Replace them with the output of
#: ``python benchmarks/bench_crossover.py --device cuda``.
DIRECT_MAX_TAPS_CUDA: dict[tuple[int, str], int] = {
    (1, "depthwise"): 63,
    (1, "dense"): 31,
    (2, "depthwise"): 49,
    (2, "dense"): 49,
    (3, "depthwise"): 125,
    (3, "dense"): 27,
}

#: Inference defaults for CUDA, not measured yet (see :data:`DIRECT_MAX_TAPS_CUDA`).
DIRECT_MAX_TAPS_INFERENCE_CUDA: dict[tuple[int, str], int] = {
    (1, "depthwise"): 127,
    (1, "dense"): 63,
    (2, "depthwise"): 121,
    (2, "dense"): 81,
    (3, "depthwise"): 343,
    (3, "dense"): 125,
}


@dataclass(frozen=True)
class Crossover:
    """Largest effective kernel (in taps) for which ``method="auto"`` uses direct
    convolution on one device kind, for training (``training``) and inference
    (``inference``), keyed by ``(data_dim, "depthwise" | "dense")``.  ``measured`` says
    whether the numbers come from ``benchmarks/bench_crossover.py`` on that device kind."""

    training: Mapping[tuple[int, str], int]
    inference: Mapping[tuple[int, str], int]
    measured: bool

    def limit(self, data_dim: int, kind: str, needs_grad: bool) -> int:
        return (self.training if needs_grad else self.inference)[(data_dim, kind)]


#: Crossover constants per device kind (``torch.device.type``); kinds not listed (``mps``,
#: ``xpu``, ``meta``, ...) use the ``"cuda"`` entry (see :func:`crossover_for`).
CROSSOVER: dict[str, Crossover] = {
    "cpu": Crossover(DIRECT_MAX_TAPS, DIRECT_MAX_TAPS_INFERENCE, measured=True),
    "cuda": Crossover(DIRECT_MAX_TAPS_CUDA, DIRECT_MAX_TAPS_INFERENCE_CUDA, measured=False),
}


def crossover_for(device: torch.device | str) -> Crossover:
    """The :class:`Crossover` of ``device``'s kind (the CUDA defaults for non-CPU kinds
    without their own entry)."""
    return CROSSOVER.get(torch.device(device).type, CROSSOVER["cuda"])


@dataclass(frozen=True)
class ConvPlan:
    """What :func:`conv` will do for one call (see :func:`plan_conv`); nothing is computed.

    Attributes:
        method: ``"direct"`` (``F.convNd``) or ``"fft"``.
        path: ``"direct"``, ``"blocked"`` (FFT, cache-sized row blocks looped over in Python:
            the CPU) or ``"batched"`` (FFT, one transform over all rows: other devices and
            ``torch.compile``).
        device_type: ``torch.device.type`` of the input.
        compute_dtype: dtype of the arithmetic (FFT: float32 for float16/bfloat16/float32
            and under autocast, float64 for float64).
        output_dtype: dtype of the result (the autocast dtype under autocast).
        fft_sizes: transform size per spatial dimension (``None`` on the direct path).
        row_chunks: pieces the forward pass processes the ``N * C`` rows in: the number of
            row blocks on the blocked path; ``1`` on the batched path unless its temporaries
            exceed the memory budget; ``1`` on the direct path.
        chunk: batched path: ``(batch elements, channel groups)`` per chunk; else ``None``.
    """

    method: Literal["direct", "fft"]
    path: Path
    device_type: str
    compute_dtype: torch.dtype
    output_dtype: torch.dtype
    fft_sizes: tuple[int, ...] | None
    row_chunks: int
    chunk: tuple[int, int] | None


def mix(y: torch.Tensor, mixer: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The pointwise ``(C_out, C_in)`` map over channels (a 1x1 convolution), plus bias: the
    mixer of every separable layer and the models' pointwise linears.

    Shape:
        - y: ``(N, C_in, *spatial)``
        - Output: ``(N, C_out, *spatial)``
    """
    n = y.shape[0]
    spatial = y.shape[2:]
    y = y.flatten(2)
    # One batched product with the (C_out, C_in) mixer broadcast over the batch (a view, no
    # copy), bias fused: plain matmul with a mixer that requires grad took a transposed-copy
    # path measured 2.4-2.8x slower at (8, 140, 4096).
    m = mixer.expand(n, -1, -1)
    out = torch.bmm(m, y) if bias is None else torch.baddbmm(bias.view(1, -1, 1), m, y)
    return out.view(n, mixer.shape[0], *spatial)


_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype ``torch.autocast`` casts to on ``device``'s kind, or ``None`` when autocast
    is off there."""
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind) or not torch.is_autocast_enabled(kind):
        return None
    return torch.get_autocast_dtype(kind)


def _check_dtype(name: str, t: torch.Tensor, input: torch.Tensor, mixed: bool) -> None:
    if t.dtype == input.dtype:
        return
    if mixed and t.dtype in _AUTOCAST_DTYPES and input.dtype in _AUTOCAST_DTYPES:
        return
    raise TypeError(f"{name} dtype {t.dtype} does not match input dtype {input.dtype}")


def validate_conv_args(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    groups: int,
    causal: bool,
    check_finite: bool = True,
) -> int:
    """Check shapes, dtypes and values; return the number of spatial dimensions.

    Under ``torch.autocast`` on the input's device, the input, weight and bias may be any mix
    of float16, bfloat16 and float32 (autocast casts them, as it does for ``F.conv1d``).
    """
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    data_dim = weight.dim() - 2
    if data_dim not in (1, 2, 3):
        raise ValueError(
            "weight must have shape (C_out, C_in/groups, *kernel) with 1, 2 or 3 kernel "
            f"dimensions, got shape {tuple(weight.shape)}"
        )
    if input.dim() != data_dim + 2:
        raise ValueError(
            f"input must have shape (N, C_in, *spatial) with {data_dim} spatial dimension(s) "
            f"to match weight of shape {tuple(weight.shape)}, got shape {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    mixed = autocast_dtype(input.device) is not None
    _check_dtype("weight", weight, input, mixed)
    if weight.device != input.device:
        raise ValueError(f"weight is on {weight.device} but input is on {input.device}")
    if causal and data_dim != 1:
        raise ValueError(f"causal convolution is 1-D only, got {data_dim} spatial dimensions")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    n, c_in = input.shape[:2]
    c_out = weight.shape[0]
    if n == 0 or c_in == 0 or any(s == 0 for s in input.shape[2:]):
        raise ValueError(
            f"input must be non-empty in every dimension, got shape {tuple(input.shape)}"
        )
    if any(s == 0 for s in weight.shape):
        raise ValueError(
            f"weight must be non-empty in every dimension, got shape {tuple(weight.shape)}"
        )
    if c_in != weight.shape[1] * groups:
        raise ValueError(
            f"input has {c_in} channels but weight of shape {tuple(weight.shape)} with "
            f"groups={groups} expects {weight.shape[1] * groups}"
        )
    if c_out % groups != 0:
        raise ValueError(f"weight has {c_out} output channels, not divisible by groups={groups}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if bias.shape != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},), got {tuple(bias.shape)}")
        _check_dtype("bias", bias, input, mixed)
        if bias.device != input.device:
            raise ValueError(f"bias is on {bias.device} but input is on {input.device}")
    if check_finite:
        _check_values(input, weight)
    return data_dim


def _check_values(input: torch.Tensor, weight: torch.Tensor, input_too: bool = True) -> None:
    """ValueError naming ``input`` / ``weight`` if it holds NaN or inf (``input_too=False``:
    the weight only, the engine checks the input as it transforms it)."""
    # (meta tensors have no values to check)
    if input.device.type == "meta" or torch.compiler.is_compiling():
        return
    with torch.no_grad():
        if input_too and not all_finite(input):
            raise ValueError(NONFINITE_INPUT)
        if not all_finite(weight):
            raise ValueError("weight (the convolution kernel) contains NaN or inf values")


def circular_axes(
    padding_mode: PaddingMode, data_dim: int, causal: bool = False
) -> tuple[bool, ...]:
    """Which spatial axes ``padding_mode`` makes periodic (checked, naming ``padding_mode``)."""
    modes = padding_modes("padding_mode", padding_mode, data_dim, causal=causal)
    return tuple(m == "circular" for m in modes)


def boundary_pad(
    input: torch.Tensor,
    lefts: Sequence[int],
    rights: Sequence[int],
    circular: Sequence[bool],
) -> torch.Tensor:
    """Pad each spatial axis of ``input`` by ``(lefts[d], rights[d])`` with its boundary
    condition: zeros, or periodic (``F.pad(mode="circular")``, pads at most the axis length)
    where ``circular[d]``.  What a "valid" ``F.conv{1,2,3}d`` then needs for a same-size
    output (the direct path and baked layers).
    """
    zero_pads: list[int] = []
    wrap_pads: list[int] = []
    for left, right, circ in zip(reversed(lefts), reversed(rights), reversed(circular)):
        # F.pad: last dimension first
        zero_pads.extend((0, 0) if circ else (left, right))
        wrap_pads.extend((left, right) if circ else (0, 0))
    x = F.pad(input, zero_pads)
    if any(circular):
        x = F.pad(x, wrap_pads, mode="circular")
    return x


def direct_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Same-size cross-correlation through ``F.conv{1,2,3}d`` (no validation; see :func:`conv`).

    Taps that cannot reach any output (kernels longer than the input) are dropped first; on
    circular axes the kernel is folded onto one period and the input padded periodically.
    """
    data_dim = weight.dim() - 2
    spatial = tuple(input.shape[2:])
    circular = circular_axes(padding_mode, data_dim, causal)
    weight = wrap_kernel(weight, spatial, circular)
    taps, lefts, rights = effective_taps(spatial, tuple(weight.shape[2:]), causal, circular)
    for d, (first, last) in enumerate(taps):
        if first != 0 or last != weight.shape[2 + d] - 1:
            weight = weight.narrow(2 + d, first, last - first + 1)
    x = boundary_pad(input, lefts, rights, circular)
    convnd = (F.conv1d, F.conv2d, F.conv3d)[data_dim - 1]
    return convnd(x, weight, bias, groups=groups)


def fft_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    backward_mode: BackwardMode = "auto",
    memory_budget: int | None = None,
    path: Literal["auto", "blocked", "batched"] = "auto",
    padding_mode: PaddingMode = "zeros",
    check_input: bool = False,
) -> torch.Tensor:
    """Same-size cross-correlation through real FFTs of even 5-smooth sizes (no validation).

    The signal is zero-padded to a linear (non-circular) size and the inverse transform is
    always given its size, so odd lengths are exact; a circular axis (``padding_mode``) is
    transformed at its own length.  ``path`` (default: by device, see
    :func:`~ckconv.functional.fft_engine.engine_path`): ``"blocked"`` runs block by block over
    the ``N * C`` rows with reused buffers, ``"batched"`` transforms all rows at once (both
    give the same numbers on any device).  ``backward_mode`` (``"auto"``, ``"save_spectrum"``,
    ``"recompute"``) and ``memory_budget``: see :func:`conv`.  ``check_input``: raise
    ``ValueError`` if the input holds NaN or inf (the blocked path reads it off its transforms).
    """
    if path not in _PATHS:
        raise ValueError(f"path must be 'auto', 'blocked' or 'batched', got {path!r}")
    if path == "auto":
        path = engine_path(input.device)
    circular = circular_axes(padding_mode, weight.dim() - 2, causal)
    kwargs = dict(
        groups=groups, causal=causal, backward_mode=backward_mode, memory_budget=memory_budget
    )
    if path == "blocked":
        return block_fft_conv(
            input, weight, bias, circular=circular, check_input=check_input, **kwargs
        )
    if check_input:
        _check_values(input, weight)
    return batched_fft_conv(input, weight, bias, circular=circular, **kwargs)


def select_method(
    input_shape: tuple[int, ...] | torch.Size,
    weight_shape: tuple[int, ...] | torch.Size,
    *,
    groups: int = 1,
    causal: bool = False,
    needs_grad: bool = True,
    device: torch.device | str = "cpu",
    padding_mode: PaddingMode = "zeros",
) -> str:
    """The back-end ``method="auto"`` uses for these shapes: ``"direct"`` or ``"fft"``.

    Direct when the effective kernel (taps that can reach an output; on a circular axis at
    most one period) has at most
    :meth:`Crossover.limit` taps for ``device``'s kind (:func:`crossover_for`; on the CPU
    :data:`DIRECT_MAX_TAPS`, or :data:`DIRECT_MAX_TAPS_INFERENCE` when ``needs_grad`` is
    false).
    """
    data_dim = len(weight_shape) - 2
    spatial = tuple(input_shape[2:])
    circular = circular_axes(padding_mode, data_dim, causal)
    kernel = tuple(min(k, L) if c else k for k, L, c in zip(weight_shape[2:], spatial, circular))
    taps, _, _ = effective_taps(spatial, kernel, causal, circular)
    count = 1
    for first, last in taps:
        count *= last - first + 1
    kind = "depthwise" if weight_shape[1] == 1 else "dense"
    limit = crossover_for(device).limit(data_dim, kind, needs_grad)
    return "direct" if count <= limit else "fft"


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def plan_conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    method: Method = "auto",
    memory_budget: int | None = None,
    padding_mode: PaddingMode = "zeros",
) -> ConvPlan:
    """The :class:`ConvPlan` :func:`conv` follows for these arguments (no validation, nothing
    computed: works on ``meta`` tensors).

    Examples:
        >>> x = torch.empty(8, 140, 16000, device="meta")
        >>> w = torch.empty(140, 1, 16000, device="meta")
        >>> p = plan_conv(x, w, groups=140, causal=True)
        >>> p.method, p.path, p.fft_sizes, p.row_chunks
        ('fft', 'batched', (32768,), 1)
    """
    device = input.device
    amp = autocast_dtype(device)
    mixed = amp is not None and input.dtype != torch.float64
    output_dtype = amp if mixed else input.dtype
    if method == "auto":
        method = select_method(  # type: ignore[assignment]
            input.shape,
            weight.shape,
            groups=groups,
            causal=causal,
            needs_grad=_needs_grad(input, weight, bias),
            device=device,
            padding_mode=padding_mode,
        )
    if method == "direct":
        return ConvPlan("direct", "direct", device.type, output_dtype, output_dtype, None, 1, None)
    circular = circular_axes(padding_mode, weight.dim() - 2, causal)
    fft = plan_for(input, weight.shape, groups, causal, circular)
    dtype = compute_dtype(input.dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    path: EnginePath = engine_path(device)
    if path == "blocked":
        blocks = blocked_row_blocks(fft, input.shape[0], itemsize)
        return ConvPlan("fft", "blocked", device.type, dtype, output_dtype, fft.n, blocks, None)
    chunk = batched_chunking(fft, input.shape[0], itemsize, memory_budget)
    pieces = -(-input.shape[0] // chunk[0]) * -(-fft.groups // chunk[1])
    return ConvPlan("fft", "batched", device.type, dtype, output_dtype, fft.n, pieces, chunk)


def _autocast_off(device_type: str):
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def conv(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    groups: int = 1,
    causal: bool = False,
    method: Method = "auto",
    backward_mode: BackwardMode = "auto",
    memory_budget: int | None = None,
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Same-size N-D convolution (cross-correlation) for long kernels, centred or causal.

    Args:
        input: ``(N, C_in, *spatial)`` with 1, 2 or 3 spatial dimensions.
        weight: ``(C_out, C_in / groups, *kernel)``; the kernel may be longer than the input
            and non-square.
        bias: optional ``(C_out,)``.
        groups: as in ``torch.nn.functional.conv1d`` (``groups == C_in == C_out`` is depthwise).
        causal: 1D only; output ``t`` sees inputs ``<= t`` (the last tap is the current sample).
        method: ``"fft"``, ``"direct"`` (``F.convNd``) or ``"auto"`` (direct for small
            effective kernels, by device kind, see :func:`select_method`).
        backward_mode: FFT path only: ``"save_spectrum"`` keeps the input spectrum for the
            backward pass (fewer transforms), ``"recompute"`` transforms the input again
            (least memory), ``"auto"``: on the blocked (CPU) path saves it when it fits in
            ``memory_budget`` bytes, on the batched path saves it.
        memory_budget: bytes the FFT path may use beyond its output: on the blocked (CPU)
            path the spectra ``backward_mode="auto"`` may keep (default
            :data:`ckconv.functional.fft_engine.DEFAULT_MEMORY_BUDGET`); on the batched path
            the transform temporaries of one chunk of rows (default
            :data:`ckconv.functional.fft_engine.BATCHED_CHUNK_BYTES`).
        padding_mode: boundary condition, ``"zeros"`` (linear convolution) or ``"circular"``
            (periodic axis; a kernel longer than the axis is folded onto one period), for every
            axis or a sequence with one per spatial axis, e.g. ``("circular", "zeros")``.
            ``causal`` needs ``"zeros"``.

    The gradients are differentiable again (double backward) on every path.  See
    :func:`plan_conv` for what a call will do (method, path, sizes, dtypes, chunks), and the
    module docstring for mixed precision.

    Shape:
        - Input: ``(N, C_in, *spatial)``
        - Weight: ``(C_out, C_in / groups, *kernel)``
        - Output: ``(N, C_out, *spatial)``

    Examples:
        >>> x, w = torch.randn(2, 3, 100), torch.randn(4, 3, 100)
        >>> y = conv(x, w, causal=True)
        >>> torch.allclose(y, F.conv1d(F.pad(x, (99, 0)), w), atol=1e-4)
        True
        >>> w = torch.randn(4, 3, 9)
        >>> y = conv(x, w, padding_mode="circular")
        >>> torch.allclose(y, F.conv1d(F.pad(x, (4, 4), mode="circular"), w), atol=1e-4)
        True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be 'auto', 'fft' or 'direct', got {method!r}")
    if backward_mode not in _BACKWARD_MODES:
        raise ValueError(
            f"backward_mode must be 'auto', 'save_spectrum' or 'recompute', got {backward_mode!r}"
        )
    data_dim = validate_conv_args(input, weight, bias, groups, causal, check_finite=False)
    circular_axes(padding_mode, data_dim, causal)  # checked before any work
    if memory_budget is not None and (
        isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 0
    ):
        raise ValueError(
            f"memory_budget must be a non-negative int (bytes) or None, got {memory_budget!r}"
        )
    plan = plan_conv(
        input,
        weight,
        bias,
        groups=groups,
        causal=causal,
        method=method,
        memory_budget=memory_budget,
        padding_mode=padding_mode,
    )
    # The blocked depthwise engine reads the input's finiteness off its transforms (no pass of
    # its own over the input); every other path checks here, before any work.
    engine_checks = plan.path == "blocked" and weight.shape[1] == 1
    _check_values(input, weight, input_too=not engine_checks)
    if plan.path == "direct":
        # F.convNd follows autocast itself (casts to the autocast dtype).
        return direct_conv(
            input, weight, bias, groups=groups, causal=causal, padding_mode=padding_mode
        )
    with _autocast_off(plan.device_type):
        dt = plan.compute_dtype
        out = fft_conv(
            input.to(dt),
            weight.to(dt),
            None if bias is None else bias.to(dt),
            groups=groups,
            causal=causal,
            backward_mode=backward_mode,
            memory_budget=memory_budget,
            path=plan.path,  # type: ignore[arg-type]
            padding_mode=padding_mode,
            check_input=engine_checks,
        )
    return out.to(plan.output_dtype)


def _valid_causal_conv1d(buf: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The outputs of a ``K``-tap causal convolution whose window fits in ``buf``: output
    ``t`` reads ``buf[..., t : t + K]`` (no padding); ``(N, C_out, L - K + 1)``.

    ``weight`` ``(C_out, C_in, K)`` dense or ``(C_in, 1, K)`` depthwise (one kernel per channel).
    """
    depthwise = weight.shape[1] == 1 and weight.shape[0] == buf.shape[1] and buf.shape[1] > 1
    if buf.shape[-1] == weight.shape[-1]:
        # one output: a dot product with the window (about 10x faster on CPU than F.conv1d
        # with a single output position, benchmarks/bench_stream.py)
        if depthwise:
            return (buf * weight[:, 0]).sum(-1, keepdim=True)
        flat = buf.reshape(buf.shape[0], -1)  # (N, C_in * K), matching weight's layout
        return torch.matmul(flat, weight.reshape(weight.shape[0], -1).t()).unsqueeze(-1)
    return F.conv1d(buf, weight, groups=buf.shape[1] if depthwise else 1)


def stream_conv(
    chunk: torch.Tensor,
    state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    mixer: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a causal 1D convolution over a stream (the functional twin of
    :class:`ckconv.deploy.StreamingConv`): ``state`` holds the last ``K - 1`` inputs (zeros at
    the start), the output for the chunk's ``T`` samples equals the causal :func:`conv` of the
    whole stream there.  ``mixer`` ``(C_out, C_in)`` makes it separable (``weight``
    ``(C_in, 1, K)``), as in :func:`~ckconv.functional.ckconv`.

    Shape:
        - chunk: ``(N, C_in, T)``; state: ``(N, C_in, K - 1)``
        - Output: ``(N, C_out, T)`` and the new state ``(N, C_in, K - 1)``
    """
    k = weight.shape[-1]
    if state.shape[-1] != k - 1 or state.shape[:2] != chunk.shape[:2]:
        raise ValueError(
            f"state must have shape {(*chunk.shape[:2], k - 1)} (the last K - 1 inputs), got "
            f"{tuple(state.shape)}"
        )
    buf = torch.cat([state, chunk], dim=-1)
    y = _valid_causal_conv1d(buf, weight)
    new_state = buf[..., buf.shape[-1] - (k - 1) :]
    if mixer is not None:
        return mix(y, mixer, bias), new_state
    return (y if bias is None else y + bias.view(1, -1, 1)), new_state
