"""The base of every continuous convolution: grid (CKConv, FlexConv, and their timestamp
route) and point (PointConv, PointFlexConv).

:class:`ContinuousConv` owns what all of them share -- the kernel network (resolved from the
``kernel_net`` argument), the optional learned mask part (:class:`~ckconv.nn.GaussianMask`),
the CCNN ``init_gain`` re-weighting, the separable mixer and the bias -- and generates the
layer's kernel in one method, :meth:`ContinuousConv.kernel`.  The regularisers
(:func:`~ckconv.nn.kernel_l2`, :func:`~ckconv.nn.aliasing_penalty`), the optimiser grouping
(:func:`~ckconv.nn.param_groups`), the kernel plots, ``bake`` and ``stream`` find layers by
this type (:func:`continuous_convs`), so a new layer built on it is seen by all of them.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ckconv._checks import WEIGHTINGS, positive_int, positive_number
from ckconv._checks import weighting as check_weighting
from ckconv.functional.ckconv import conv_dtype, generate_kernel, kernel_compute_dtype
from ckconv.functional.conv import autocast_dtype
from ckconv.grids import RateLike
from ckconv.nn._params import register_mixer_and_bias

__all__ = [
    "ContinuousConv",
    "KernelNetArg",
    "autocast_dtype",
    "continuous_convs",
    "conv_dtype",
    "kernel_compute_dtype",
    "resolve_kernel_net",
    "walk",
]

#: A ready kernel network (``positions (..., D) -> (..., C)``) or a factory
#: ``f(in_dims, out_channels) -> nn.Module`` (use :func:`functools.partial` for its options).
KernelNetArg = nn.Module | Callable[[int, int], nn.Module] | None


def resolve_kernel_net(
    kernel_net: KernelNetArg,
    data_dim: int,
    n_out: int,
    separable: bool,
    default: Callable[[], nn.Module],
    factory: dict[str, Any],
) -> nn.Module:
    """Turn a layer's ``kernel_net`` argument into a module and check its sizes.

    ``None`` builds ``default()``; a module is used as is; a factory is called as
    ``f(data_dim, n_out)`` and moved to ``factory``'s device/dtype.  The net must map ``data_dim``
    coordinates to ``n_out`` values (``in_channels`` for separable layers, else
    ``out_channels * in_channels``).
    """
    if kernel_net is None:
        net = default()
    elif isinstance(kernel_net, nn.Module):
        net = kernel_net
    elif callable(kernel_net):
        net = kernel_net(data_dim, n_out)
        if not isinstance(net, nn.Module):
            raise TypeError(
                f"kernel_net factory must return an nn.Module, got {type(net).__name__}"
            )
        net = net.to(**{k: v for k, v in factory.items() if v is not None})
    else:
        raise TypeError(
            "kernel_net must be an nn.Module, a factory f(in_dims, out_channels) or None, "
            f"got {type(kernel_net).__name__}"
        )
    for attr, expected in (("in_dims", data_dim), ("out_channels", n_out)):
        got = getattr(net, attr, expected)
        if got != expected:
            what = "in_channels" if separable else "out_channels * in_channels"
            raise ValueError(
                f"kernel_net.{attr} is {got}, expected {expected}"
                + (f" ({what})" if attr == "out_channels" else " (the layer's data_dim)")
            )
    return net


def walk(
    module: nn.Module, stop: tuple[type, ...], prefix: str = ""
) -> Iterator[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of ``module`` and its descendants in module order, not
    descending into instances of ``stop`` (they are yielded, their insides are not)."""
    yield prefix, module
    if isinstance(module, stop):
        return
    for name, child in module.named_children():
        yield from walk(child, stop, f"{prefix}.{name}" if prefix else name)


def continuous_convs(module: nn.Module) -> list[tuple[str, ContinuousConv]]:
    """``(qualified name, layer)`` of every :class:`ContinuousConv` in ``module`` (the layers
    themselves, not layers nested inside them), in module order; ``""`` names ``module``."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(module).__name__}")
    return [(n, m) for n, m in walk(module, (ContinuousConv,)) if isinstance(m, ContinuousConv)]


class ContinuousConv(nn.Module, abc.ABC):
    r"""Base of every continuous convolution: a kernel network of relative positions, an
    optional learned mask part, a separable mixer and a bias.

    Subclasses call ``super().__init__(...)``, register their own state and call
    :meth:`reset_parameters`; they define where the kernel is sampled
    (:meth:`kernel_axes`), their default kernel network and their ``forward``.

    Args:
        in_channels, out_channels: channels of the input and output.
        data_dim: dimension of the positions.
        kernel_net: the kernel network or a factory ``f(in_dims, out_channels)``; ``None``
            builds the subclass's default.  Dense layers need ``C_out * C_in`` outputs,
            separable ones ``C_in``.
        separable: depthwise kernel followed by one pointwise ``(C_out, C_in)`` mixer.
        bias: learnable output bias.
        init_gain: CCNN kernel re-weighting (:meth:`reset_parameters`); ``None`` disables it.
        kernel_mask: a learned mask part that multiplies the kernel (and may crop it), e.g.
            :class:`~ckconv.nn.GaussianMask`; ``None`` for none.  Held as ``self.kernel_mask``.
        weighting: how the layer weights the samples it sums over where they are not on its
            grid (:data:`ckconv._checks.WEIGHTINGS`: ``"none"``, ``"mean"``, ``"density"``; the
            subclass lists what it supports in :attr:`weightings`).  A constructor argument for
            every layer: it is part of the model (the learned kernel's scale depends on it), so
            checkpoints that record the constructor's arguments rebuild it.

    Attributes:
        kernel_net, kernel_mask, mixer ``(C_out, C_in)`` or None, bias ``(C_out,)`` or None.
    """

    kernel_mask: nn.Module | None
    #: the ``weighting`` values this layer supports (a subset of ``WEIGHTINGS``)
    weightings: tuple[str, ...] = WEIGHTINGS

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_dim: int,
        *,
        kernel_net: KernelNetArg,
        separable: bool,
        bias: bool,
        init_gain: float | None,
        kernel_mask: nn.Module | None = None,
        weighting: str = "none",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.weighting = check_weighting(weighting, self.weightings)
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.data_dim = positive_int("data_dim", data_dim)
        positive_number("init_gain", init_gain, allow_none=True)
        if kernel_mask is not None and not isinstance(kernel_mask, nn.Module):
            raise TypeError(f"kernel_mask must be an nn.Module or None, got {type(kernel_mask)}")
        self.separable = bool(separable)
        self.init_gain = init_gain
        factory = {"device": device, "dtype": dtype}
        self.register_module("kernel_mask", kernel_mask)
        n_out = in_channels if self.separable else in_channels * out_channels
        net = resolve_kernel_net(
            kernel_net,
            data_dim,
            n_out,
            self.separable,
            lambda: self._default_kernel_net(n_out, factory),
            factory,
        )
        self._check_kernel_net(net)
        if init_gain is not None and not hasattr(net, "scale_output_"):
            raise TypeError(
                "kernel_net has no scale_output_() for the kernel re-weighting; subclass "
                "ckconv.kernelnets.KernelNet or pass init_gain=None"
            )
        self.kernel_net = net
        register_mixer_and_bias(
            self, in_channels, out_channels, separable=self.separable, bias=bias, factory=factory
        )

    # -- what subclasses define -----------------------------------------------------------
    @abc.abstractmethod
    def _default_kernel_net(self, n_out: int, factory: dict[str, Any]) -> nn.Module: ...

    def _check_kernel_net(self, net: nn.Module) -> None:
        """Hook: refuse kernel nets this layer cannot use (raise)."""

    @abc.abstractmethod
    def kernel_axes(
        self,
        rate: RateLike | None = None,
        input_size: Sequence[int] | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> list[torch.Tensor]:
        """Positions per dimension of the grid :meth:`kernel` samples (in the kernel net's
        coordinates, ``[-1, 1]``)."""
        ...

    def _kernel_scale(self, rate: RateLike | None) -> float:
        """Multiplier of the sampled kernel at ``rate`` (1 at the training rate)."""
        return 1.0

    @abc.abstractmethod
    def _init_fan(self, kernel: torch.Tensor) -> float:
        """``fan`` of the re-weighting: outputs have ``fan * E[k^2]`` times the input's
        variance for the kernel ``kernel`` generated at initialisation."""
        ...

    def nyquist_frequency(self) -> tuple[float, ...] | None:
        """Nyquist frequency (cycles per unit position) of the training grid per dimension,
        or None when the layer has no sampling grid (for :func:`~ckconv.nn.aliasing_penalty`)."""
        return None

    # -- the kernel -----------------------------------------------------------------------
    def _reference_tensor(self) -> torch.Tensor:
        """A tensor with the layer's device and floating dtype."""
        for t in (*self.kernel_net.parameters(), *self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return t
        return torch.empty(0)

    def kernel(
        self,
        rate: RateLike | None = None,
        input_size: Sequence[int] | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The kernel this layer generates, as a conv weight over :meth:`kernel_axes`:
        ``(C_out, C_in, *K)`` dense or ``(C_in, 1, *K)`` separable; masked by the mask part.

        The one place a layer samples its kernel net on a grid: ``forward`` (grid layers),
        the regularisers, the plots, ``bake`` and ``stream`` all use it.
        """
        ref = self._reference_tensor()
        device = torch.device(device or ref.device)
        dtype = dtype or ref.dtype
        # the precision policy (float32 kernel net for half dtypes) is generate_kernel's
        return generate_kernel(
            self.kernel_net,
            lambda work: self.kernel_axes(rate, input_size, device=device, dtype=work),
            self.in_channels,
            separable=self.separable,
            device=device,
            dtype=dtype,
            scale=self._kernel_scale(rate),
            mask=self.kernel_mask,
        )

    # -- initialisation -------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Re-initialise the mask part, the kernel net (with the re-weighting), mixer and bias.

        Re-weighting (CCNN §4.1): the generated kernel must have second moment
        ``init_gain**2 / fan`` so that feature maps keep their variance (grid layers:
        ``fan = C_in |Omega|``, separable ``|Omega|``, ``|Omega|`` the kernel samples inside
        the initial crop).  The paper multiplies the output layer by ``g / sqrt(fan)``, which
        assumes the kernel net outputs unit variance; kernel nets do not (a MAGNet's output RMS
        is far from 1, and a mask shrinks the kernel further).  So the output layer is scaled
        by ``g / (sqrt(fan) * rms)``, with ``rms`` the root-mean-square of :meth:`kernel` at
        initialisation: the constraint then holds exactly.  This runs here, once; it is never
        a forward-time side effect, and loading a state dict does not repeat it.
        """
        if self.kernel_mask is not None and hasattr(self.kernel_mask, "reset_parameters"):
            self.kernel_mask.reset_parameters()
        if hasattr(self.kernel_net, "reset_parameters"):
            self.kernel_net.reset_parameters()
        if self.init_gain is not None:
            with torch.no_grad():
                raw = self.kernel()
            rms = float(raw.double().square().mean().sqrt())
            if not math.isfinite(rms) or rms == 0.0:
                raise ValueError(
                    f"kernel_net generates a kernel with RMS {rms} at initialisation; the CCNN "
                    "re-weighting needs a finite non-zero kernel (or pass init_gain=None)"
                )
            fan = self._init_fan(raw)
            self.kernel_net.scale_output_(self.init_gain / (math.sqrt(fan) * rms))
        if self.mixer is not None:
            # unit-variance pointwise mixing: Var(w) = 1 / C_in
            nn.init.kaiming_uniform_(self.mixer, nonlinearity="linear")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Checkpoints written before the mask part was named ``kernel_mask`` store it under
        # ``mask.`` (which now means observed samples everywhere else): read them too.
        if self.kernel_mask is not None:
            old, new = prefix + "mask.", prefix + "kernel_mask."
            for key in [k for k in state_dict if k.startswith(old)]:
                state_dict.setdefault(new + key[len(old) :], state_dict.pop(key))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
