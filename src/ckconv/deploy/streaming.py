"""Causal streaming inference: feed a sequence chunk by chunk, get the offline outputs.

A causal convolution with a ``K``-tap kernel needs, besides the new samples, only the last
``K - 1`` inputs it has seen.  :class:`StreamingConv` is such a convolution with an explicit
state (those ``K - 1`` inputs); :func:`stream` turns a whole causal model (CKCNN, causal CCNN,
or your own network of per-step operations around causal CKConv/FlexConv layers) into a
:class:`Streamer` whose :meth:`Streamer.step` consumes chunks of any length (1 sample or many)
and returns, for every new sample ``t``, exactly what the offline forward returns for the
input up to ``t``.

Cost per chunk depends on the kernel length and the chunk length, never on how much has been
streamed: a direct (sliding-window) convolution for short kernels or short chunks, and for
long kernels a block overlap-save FFT with a precomputed kernel spectrum (blocks of ``B``
samples, one FFT of length ``>= K - 1 + B`` each).  FlexConv's learned crop keeps ``K`` small.

Why GroupNorm cannot stream: ``GroupNorm(1, C)`` (CKCNN's default ``norm="group"``, the
CKConv paper's "LN") normalises over the whole time axis, so an early output changes when
later samples arrive; build the model with ``norm="layer"`` (per step) or ``"batch"`` (a fixed
affine map in eval mode) to stream it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ckconv._checks import choice, positive_int
from ckconv.deploy._fixed import FixedKernelConv
from ckconv.functional.conv import DIRECT_MAX_TAPS, mix, stream_conv
from ckconv.functional.fft_engine import FFTPlan, good_fft_size, placed_spectrum
from ckconv.grids import RateLike
from ckconv.nn._params import register_mixer_and_bias

__all__ = ["Streamer", "StreamingConv", "stream"]

StreamMethod = Literal["auto", "direct", "fft"]

# Relative cost of one FFT flop against one direct-convolution multiply-add: the per-chunk
# choice between the two paths compares the estimated costs.  Measured by
# benchmarks/bench_stream.py --calibrate (2 vCPU, torch 2.13 CPU, float32, 1 thread): 0.5-3,
# median 1.7, for chunks of >= 256 samples (shorter chunks cost about the same fixed overhead
# on either path); with 1.5 the pick was never more than 1.3x slower than the faster path.
_FFT_COST = 1.5


class StreamingConv(FixedKernelConv):
    r"""A causal 1D convolution applied to a stream, with its state passed explicitly.

    ``forward(chunk, state) -> (output, new_state)`` (functional twin:
    :func:`ckconv.functional.stream_conv` with ``weight``; the FFT path gives the same
    numbers): ``state`` holds the last ``K - 1``
    inputs (zeros at the start, as the offline convolution's left padding); the output for
    the chunk's ``T`` samples equals the same-size causal convolution of the whole stream at
    those positions.  Build it from a trained layer with :meth:`from_conv`.

    Args:
        in_channels, out_channels: channels.
        kernel_size: taps ``K`` (the last tap is the current sample).
        separable: depthwise kernel ``(C_in, 1, K)`` and a ``(C_out, C_in)`` mixer.
        bias: learnable bias.
        method: ``"direct"`` (sliding window, ``O(T K)`` per chunk), ``"fft"`` (block
            overlap-save, ``O(T log K)``) or ``"auto"`` (the cheaper one for each chunk).
        block_size: samples per FFT block (default ``max(K, 64)``).

    Shape:
        - chunk: ``(N, C_in, T)``
        - state: ``(N, C_in, K - 1)``
        - Output: ``(N, C_out, T)`` and the new state

    Examples:
        >>> from ckconv.nn import CKConv
        >>> conv = CKConv(2, 3, kernel_size=40, causal=True).eval()
        >>> sc = StreamingConv.from_conv(conv)
        >>> x = torch.randn(1, 2, 100)
        >>> state = sc.initial_state(1)
        >>> outs = []
        >>> for chunk in x.split(7, dim=-1):
        ...     y, state = sc(chunk, state)
        ...     outs.append(y)
        >>> torch.allclose(torch.cat(outs, -1), conv(x), atol=1e-4)
        True
    """

    weight: torch.Tensor
    spectrum: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        separable: bool = False,
        bias: bool = True,
        method: StreamMethod = "auto",
        block_size: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            positive_int(name, value)
        choice("method", method, ("auto", "direct", "fft"))
        positive_int("block_size", block_size, allow_none=True)
        factory = {"device": device, "dtype": dtype}
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.separable = separable
        self.groups = in_channels if separable else 1
        self.method = method
        wshape = (
            (in_channels, 1, kernel_size) if separable else (out_channels, in_channels, kernel_size)
        )
        self.register_buffer("weight", torch.zeros(wshape, **factory))
        kind = "depthwise" if separable else "dense"
        # The FFT path only pays off for kernels longer than the direct crossover.
        use_fft = method == "fft" or (method == "auto" and kernel_size > DIRECT_MAX_TAPS[(1, kind)])
        if use_fft:
            self.block_size = block_size or max(kernel_size, 64)
            self.fft_length = good_fft_size(kernel_size - 1 + self.block_size)
            freq = self.fft_length // 2 + 1
            sshape = (in_channels, freq, 2) if separable else (freq, in_channels, out_channels, 2)
            self.register_buffer("spectrum", torch.zeros(sshape, **factory))
        else:
            self.block_size = block_size or max(kernel_size, 64)
            self.fft_length = 0
            self.register_buffer("spectrum", None)
        register_mixer_and_bias(
            self, in_channels, out_channels, separable=separable, bias=bias, factory=factory
        )
        self.reset_parameters()

    def _spectrum_of(self, weight: torch.Tensor) -> torch.Tensor:
        # valid cross-correlation of a segment with the kernel: the engine's placement
        # anchored at tap 0 (tap k at FFT index k), at the engine's FFT size
        k = self.kernel_size
        plan = FFTPlan(
            spatial=(self.block_size,),
            kernel=(k,),
            causal=False,
            groups=self.groups,
            in_channels=self.in_channels,
            out_channels=weight.shape[0],
            taps=((0, k - 1),),
            left=(0,),
            n=(self.fft_length,),
        )
        spec = placed_spectrum(weight.detach().double(), plan)  # (G, cog, cig, F)
        return spec[:, 0, 0] if self.separable else spec[0].permute(2, 1, 0)

    @classmethod
    def from_conv(
        cls,
        conv: nn.Module,
        *,
        rate: RateLike | None = None,
        method: StreamMethod = "auto",
        block_size: int | None = None,
    ) -> StreamingConv:
        """From a causal :class:`~ckconv.nn.CKConv` / FlexConv (its whole kernel at ``rate``)
        or a causal :class:`~ckconv.deploy.BakedConv` (its baked kernel; ``rate`` unused)."""
        from ckconv.deploy.baked import BakedConv
        from ckconv.nn import CKConv, ContinuousConv
        from ckconv.nn.hyena import ShortConv

        if isinstance(conv, ContinuousConv) and not isinstance(conv, CKConv):
            raise TypeError(
                f"a {type(conv).__name__} samples its kernel at data-dependent offsets, not on a "
                "time grid: it cannot stream"
            )
        if isinstance(conv, CKConv):
            if not conv.causal:
                raise ValueError(
                    f"streaming needs a causal convolution; this {type(conv).__name__} is centred "
                    "(causal=False): its outputs depend on future samples"
                )
            with torch.no_grad():
                weight = conv.kernel(rate)
        elif isinstance(conv, (BakedConv, ShortConv)):
            if not conv.causal:
                raise ValueError(
                    f"streaming needs a causal convolution; this {type(conv).__name__} is centred"
                )
            weight = conv.weight.detach()
        else:
            raise TypeError(
                "conv must be a causal CKConv/FlexConv, BakedConv or ShortConv, got "
                f"{type(conv).__name__}"
            )
        sc = cls(
            conv.in_channels,
            conv.out_channels,
            int(weight.shape[-1]),
            separable=conv.separable,
            bias=conv.bias is not None,
            method=method,
            block_size=block_size,
            device=weight.device,
            dtype=weight.dtype,
        )
        sc.set_kernel_(weight)
        if conv.mixer is None and sc.mixer is not None:
            sc.register_parameter("mixer", None)  # depthwise without mixer (Hyena's filters)
        with torch.no_grad():
            if conv.mixer is not None:
                sc.mixer.copy_(conv.mixer)
            if conv.bias is not None:
                sc.bias.copy_(conv.bias)
        return sc

    def initial_state(
        self,
        batch_size: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Zeros ``(batch_size, C_in, K - 1)``: nothing seen yet (the offline left padding)."""
        return torch.zeros(
            batch_size,
            self.in_channels,
            self.kernel_size - 1,
            device=device or self.weight.device,
            dtype=dtype or self.weight.dtype,
        )

    # -- the two paths -------------------------------------------------------------------
    def _direct_cost(self, t: int) -> float:
        per_tap = self.in_channels * (1 if self.separable else self.out_channels)
        return float(t * self.kernel_size * per_tap)

    def _fft_cost(self, t: int) -> float:
        n = self.fft_length
        blocks = math.ceil(t / self.block_size)
        transforms = (self.in_channels + self.out_channels) * 2.5 * n * math.log2(n)
        product = (n // 2 + 1) * 4 * self.in_channels * (1 if self.separable else self.out_channels)
        return _FFT_COST * blocks * (transforms + product)

    def chooses_fft(self, chunk_length: int) -> bool:
        """Whether a chunk of this many samples runs through the FFT path."""
        if self.spectrum is None or self.method == "direct":
            return False
        if self.method == "fft":
            return True
        return self._fft_cost(chunk_length) < self._direct_cost(chunk_length)

    def _valid_fft(self, buf: torch.Tensor, t: int) -> torch.Tensor:
        k, b, n = self.kernel_size, self.block_size, self.fft_length
        blocks = math.ceil(t / b)
        # overlap-save: block j covers outputs [j b, (j + 1) b) and reads inputs
        # [j b, j b + K - 1 + b) of buf (zeros after the chunk's end cannot reach them)
        buf = F.pad(buf, (0, blocks * b - t))
        segs = buf.unfold(-1, k - 1 + b, b)  # (N, C_in, blocks, K - 1 + b)
        xs = torch.fft.rfft(segs, n=n)
        spec = torch.view_as_complex(self.spectrum)
        if self.separable:
            ys = xs * spec.unsqueeze(1)
        else:  # (N, C_in, blocks, F) -> (F, N * blocks, C_in) @ (F, C_in, C_out); contiguous
            # operands keep CPU complex bmm off its slow per-matrix loop
            nb, ci = xs.shape[0], xs.shape[1]
            flat = xs.permute(3, 0, 2, 1).reshape(xs.shape[3], nb * blocks, ci).contiguous()
            ys = torch.matmul(flat, spec).reshape(xs.shape[3], nb, blocks, -1).permute(1, 3, 2, 0)
        out = torch.fft.irfft(ys, n=n)[..., :b]  # (N, C, blocks, b)
        return out.reshape(out.shape[0], out.shape[1], blocks * b)[..., :t]

    def forward(
        self, chunk: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolve the next ``chunk`` given the ``state`` after the previous one."""
        if not isinstance(chunk, torch.Tensor) or chunk.dim() != 3:
            raise ValueError(
                f"chunk must be a tensor (N, {self.in_channels}, T), got "
                f"{tuple(getattr(chunk, 'shape', ())) or type(chunk).__name__}"
            )
        n, c, t = chunk.shape
        if c != self.in_channels or t < 1:
            raise ValueError(
                f"chunk must have shape (N, {self.in_channels}, T >= 1), got {tuple(chunk.shape)}"
            )
        expected = (n, self.in_channels, self.kernel_size - 1)
        if not isinstance(state, torch.Tensor) or tuple(state.shape) != expected:
            raise ValueError(
                f"state must have shape {expected} (initial_state({n}) at the start of a stream), "
                f"got {tuple(getattr(state, 'shape', ())) or type(state).__name__}"
            )
        if chunk.dtype != self.weight.dtype or state.dtype != chunk.dtype:
            raise TypeError(
                f"chunk ({chunk.dtype}) and state ({state.dtype}) must have the kernel's dtype "
                f"{self.weight.dtype}"
            )
        if not self.chooses_fft(t):
            return stream_conv(chunk, state, self.weight, self.bias, mixer=self.mixer)
        buf = torch.cat([state, chunk], dim=-1)  # (N, C_in, K - 1 + T)
        y = self._valid_fft(buf, t)
        new_state = buf[..., buf.shape[-1] - (self.kernel_size - 1) :]
        if self.mixer is not None:
            return mix(y, self.mixer, self.bias), new_state
        return (y if self.bias is None else y + self.bias.view(1, -1, 1)), new_state

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.separable:
            s += ", separable=True"
        if self.bias is None:
            s += ", bias=False"
        s += f", method={self.method!r}"
        if self.spectrum is not None:
            s += f", block_size={self.block_size}"
        return s


class _StatefulConv(nn.Module):
    """A :class:`StreamingConv` that keeps its own state, standing in for a conv layer inside
    a model so the model's own forward runs on chunks (used by :class:`Streamer` only)."""

    def __init__(self, conv: StreamingConv, name: str) -> None:
        super().__init__()
        self.conv = conv
        self.name = name
        self.state: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, *, rate: Any = None, blur: bool = False, **kw: Any):
        if (
            rate is not None
            or blur
            or any(v is not None for k, v in kw.items() if k in ("times", "mask"))
        ):
            raise ValueError(
                "a streaming model samples its kernels once, in stream(model, rate=...); the "
                "forward keywords rate/blur/times/mask are not available while streaming"
            )
        if self.state is None:
            self.state = self.conv.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        elif self.state.shape[0] != x.shape[0]:
            raise ValueError(
                f"layer {self.name!r}: the stream was started with batch size "
                f"{self.state.shape[0]}, got a chunk of batch size {x.shape[0]}; call reset() "
                "to start a new stream"
            )
        y, self.state = self.conv(x, self.state)
        return y


class _StreamingHead(nn.Module):
    """Per-step read-out of a :class:`ckconv.models.common.Head` over a stream: the output at
    step ``t`` is what the head gives for the sequence up to ``t`` (``"mean"``: running mean)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.kind = head.kind
        self.linear = head.linear
        self.total: torch.Tensor | None = None  # running sum (float64) for "mean"
        self.count = 0

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            raise ValueError("masks (timestamped inputs) are not available while streaming")
        if self.kind == "mean":
            t = h.shape[-1]
            csum = h.double().cumsum(-1)
            if self.total is not None:
                csum = csum + self.total.unsqueeze(-1)
            counts = torch.arange(
                self.count + 1, self.count + t + 1, device=h.device, dtype=torch.float64
            )
            self.total = csum[..., -1]
            self.count += t
            h = (csum / counts).to(h.dtype)
        return self.linear(h)


def _per_step_types() -> tuple[type, ...]:
    from ckconv.models import CCNN, CKCNN, CCNNBlock, CKCNNBlock, HyenaBlock, HyenaNet
    from ckconv.models.common import ChannelLayerNorm, PointwiseLinear, Stem
    from ckconv.nn import Hyena

    return (
        Hyena,
        HyenaNet,
        HyenaBlock,
        CKCNN,
        CCNN,
        CKCNNBlock,
        CCNNBlock,
        Stem,
        PointwiseLinear,
        ChannelLayerNorm,
        nn.Embedding,
        nn.Identity,
        nn.ModuleList,
        nn.Sequential,
        nn.Dropout,
        nn.ReLU,
        nn.GELU,
        nn.SiLU,
        nn.Tanh,
        nn.Sigmoid,
        nn.LeakyReLU,
        nn.ELU,
    )


def _plan(model: nn.Module, trusted: tuple[type, ...]) -> tuple[list[str], list[str]]:
    """Names of the conv layers and heads to replace; raise on anything that mixes time."""
    from ckconv.deploy.baked import BakedConv
    from ckconv.models.common import Head
    from ckconv.nn import CKConv, ContinuousConv, ShortConv
    from ckconv.nn.base import walk

    per_step = _per_step_types()
    convs: list[str] = []
    heads: list[str] = []

    def where(name: str) -> str:
        return f"at {name!r}" if name else "(the model itself)"

    stops = (ContinuousConv, BakedConv, ShortConv, Head, nn.modules.batchnorm._BatchNorm)
    for name, mod in walk(model, stops):
        if isinstance(mod, (CKConv, BakedConv, ShortConv)):
            if mod.data_dim != 1 or not mod.causal:
                raise ValueError(
                    f"stream() needs causal 1D convolutions; the {type(mod).__name__} {where(name)} "
                    f"is {'centred' if not mod.causal else f'{mod.data_dim}-D'}"
                )
            convs.append(name)
        elif isinstance(mod, ContinuousConv):
            raise ValueError(
                f"stream() needs causal 1D convolutions on a time grid; the {type(mod).__name__} "
                f"{where(name)} samples its kernel at data-dependent offsets"
            )
        elif isinstance(mod, Head):
            heads.append(name)
        elif isinstance(mod, nn.GroupNorm):
            raise ValueError(
                f"stream() cannot reproduce GroupNorm {where(name)} (norm='group'): it normalises "
                "over the whole time axis, so an output changes when later samples arrive; build "
                "the model with norm='layer' (per step) or norm='batch' (eval mode) to stream it"
            )
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if not mod.track_running_stats or mod.running_mean is None:
                raise ValueError(
                    f"stream() needs BatchNorm with running statistics; the one {where(name)} "
                    "has track_running_stats=False and normalises over the time axis"
                )
        elif isinstance(mod, nn.modules.instancenorm._InstanceNorm):
            raise ValueError(f"stream() cannot reproduce {type(mod).__name__} {where(name)}")
        elif type(mod) is nn.LayerNorm:
            raise ValueError(
                f"stream() cannot tell what nn.LayerNorm {where(name)} normalises over a "
                "(N, C, T) tensor; use ckconv.models.common.ChannelLayerNorm (per step)"
            )
        elif not isinstance(mod, per_step + trusted):
            raise ValueError(
                f"stream() does not know whether {type(mod).__name__} {where(name)} acts on each "
                "time step separately; pass per_step_modules=(YourModule,) if its forward mixes "
                "time only through causal CKConv/FlexConv layers"
            )
    if not convs:
        raise ValueError(f"{type(model).__name__} has no causal CKConv/FlexConv to stream")
    return convs, heads


class Streamer:
    """A causal model run chunk by chunk (see :func:`stream`).

    ``step(chunk)`` takes the next samples (the model's input layout, time last: ``(N, C, T)``
    or ``(N, T)`` token ids) and returns the outputs for those ``T`` steps, ``(N, C_out, T)``:
    step ``t``'s column is the offline output for the input up to ``t`` (for ``head="none"``
    the per-step output, for ``"last"`` the logits read at ``t``, for ``"mean"`` the logits of
    the mean up to ``t``).  ``reset()`` starts a new stream.

    Attributes:
        model: the streaming copy of the model (eval mode, kernels sampled once).
        position: samples consumed since the last reset.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        rate: RateLike | None = None,
        method: StreamMethod = "auto",
        block_size: int | None = None,
        per_step_modules: Sequence[type] = (),
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        trusted = tuple(per_step_modules)
        conv_names, head_names = _plan(model, trusted)
        work = copy.deepcopy(model).eval()
        self._convs: list[_StatefulConv] = []
        self._heads: list[_StreamingHead] = []
        for name in conv_names:
            layer = work.get_submodule(name) if name else work
            sc = StreamingConv.from_conv(layer, rate=rate, method=method, block_size=block_size)
            wrapper = _StatefulConv(sc, name)
            self._convs.append(wrapper)
            if not name:
                work = wrapper
            else:
                work.set_submodule(name, wrapper)
        for name in head_names:
            head = _StreamingHead(work.get_submodule(name))
            self._heads.append(head)
            work.set_submodule(name, head)
        self.model = work
        self.position = 0

    def reset(self) -> None:
        """Forget everything seen: the next chunk starts a new stream (any batch size)."""
        for c in self._convs:
            c.state = None
        for h in self._heads:
            h.total = None
            h.count = 0
        self.position = 0

    @property
    def state_nbytes(self) -> int:
        """Bytes of streaming state held now (the last ``K - 1`` inputs of every layer)."""
        return sum(
            c.state.numel() * c.state.element_size() for c in self._convs if c.state is not None
        )

    def step(self, chunk: torch.Tensor) -> torch.Tensor:
        """Feed the next ``chunk`` (time last); return the outputs for its samples."""
        if not isinstance(chunk, torch.Tensor):
            raise TypeError(f"chunk must be a torch.Tensor, got {type(chunk).__name__}")
        if chunk.dim() < 2 or chunk.shape[-1] < 1:
            raise ValueError(
                f"chunk must be (N, C, T) or (N, T) token ids with T >= 1, got {tuple(chunk.shape)}"
            )
        with torch.no_grad():
            out = self.model(chunk)
        self.position += chunk.shape[-1]
        return out

    __call__ = step

    def __repr__(self) -> str:
        return f"Streamer(position={self.position}, model={self.model!r})"


def stream(
    model: nn.Module,
    *,
    rate: RateLike | None = None,
    method: StreamMethod = "auto",
    block_size: int | None = None,
    per_step_modules: Sequence[type] = (),
) -> Streamer:
    """A :class:`Streamer` for a causal model: outputs identical to the offline forward.

    Supported: CKCNN and causal CCNN (and models built from the same parts) whose norms act
    per time step — ``norm="layer"``, ``norm="batch"`` (eval statistics) or none.
    ``GroupNorm`` (``norm="group"``), centred convolutions and modules not known to act per
    step raise a clear error.  ``model`` itself is not changed; the streamer works on an eval
    copy whose kernels are sampled once at ``rate``.

    Args:
        model: the trained causal model (or a single causal CKConv/FlexConv).
        rate: sampling-rate ratio of the stream (as the models' ``rate=`` keyword).
        method: ``"auto"`` (per chunk: direct for short chunks/kernels, block FFT for long
            ones), ``"direct"`` or ``"fft"``.
        block_size: FFT block length (default ``max(K, 64)``).
        per_step_modules: your own module types whose forward treats each time step
            separately except through the causal convolutions inside them.

    Examples:
        >>> from ckconv.models import CKCNN
        >>> model = CKCNN(1, 4, input_size=32, hidden_channels=8, norm="layer", head="none")
        >>> model = model.eval()
        >>> s = stream(model)
        >>> x = torch.randn(2, 1, 50)
        >>> y = torch.cat([s.step(x[..., :1]), s.step(x[..., 1:20]), s.step(x[..., 20:])], -1)
        >>> torch.allclose(y, model(x), atol=1e-4)
        True
    """
    return Streamer(
        model, rate=rate, method=method, block_size=block_size, per_step_modules=per_step_modules
    )
