"""Hyena on periodic axes (``padding_mode``): the short and the long filters against a float64
``F.pad(mode="circular")`` oracle, shift equivariance of the operator and the network, the
functional twin, checkpoints, errors."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

import ckconv.functional as CF
from ckconv._checks import ArgumentValueError
from ckconv.deploy import BakedConv, bake
from ckconv.kernelnets import SIREN
from ckconv.models import HyenaNet, ModelSpec, load_checkpoint, save_checkpoint
from ckconv.nn import DepthwiseCKConv, Hyena, ShortConv


def _pad(x: torch.Tensor, kernel: tuple[int, ...], modes: tuple[str, ...]) -> torch.Tensor:
    """Pad every axis for a 'same' cross-correlation (left (K-1)//2), each with its own mode."""
    for d, (k, mode) in enumerate(zip(kernel, modes)):
        left = (k - 1) // 2
        pad = [0, 0] * len(kernel)
        axis = len(kernel) - 1 - d  # F.pad lists the last axis first
        pad[2 * axis : 2 * axis + 2] = [left, k - 1 - left]
        x = F.pad(x, pad, mode="circular" if mode == "circular" else "constant")
    return x


def _oracle(x, weight, bias, modes):
    conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
    return conv(_pad(x, tuple(weight.shape[2:]), modes), weight, bias, groups=x.shape[1])


@pytest.mark.parametrize(
    "size,modes",
    [
        ((9,), ("circular",)),
        ((6, 7), ("zeros", "circular")),
        ((5, 4, 6), ("circular", "zeros", "circular")),
    ],
)
def test_short_filter_equals_the_circular_oracle(size, modes):
    torch.manual_seed(0)
    short = ShortConv(4, 3, len(size), padding_mode=modes).double()
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    torch.testing.assert_close(short(x), _oracle(x, short.weight, short.bias, modes))


@pytest.mark.parametrize("size", [(11,), (12,)])
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_long_filter_covers_one_period_and_equals_the_oracle(size, method):
    torch.manual_seed(1)
    long = DepthwiseCKConv(
        3, kernel_size="full", input_size=size, padding_mode="circular", method=method
    ).double()
    assert long.kernel_size == size  # "full" on a periodic axis is one period
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    w = long.kernel(None, size, dtype=torch.float64)
    torch.testing.assert_close(long(x), _oracle(x, w, long.bias, ("circular",)))


def _hyena(size, modes, **kw):
    torch.manual_seed(2)
    return Hyena(
        4,
        order=2,
        data_dim=len(size),
        input_size=size,
        padding_mode=modes,
        filter=functools.partial(SIREN, hidden=8),
        **kw,
    ).double()


@pytest.mark.parametrize(
    "size,modes,dim", [((16,), "circular", -1), ((6, 9), ("zeros", "circular"), -1)]
)
def test_hyena_is_equivariant_to_shifts_along_a_circular_axis(size, modes, dim):
    op = _hyena(size, modes)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    for shift in (1, 4):
        torch.testing.assert_close(
            op(torch.roll(x, shift, dims=dim)), torch.roll(op(x), shift, dims=dim)
        )
    zeros = _hyena(size, "zeros")  # the control: zero padding sees the edges
    gap = zeros(torch.roll(x, 4, dims=dim)) - torch.roll(zeros(x), 4, dims=dim)
    assert gap.abs().max() > 1e-3


def test_functional_twin_equals_the_module_on_mixed_axes():
    op = _hyena((6, 9), ("zeros", "circular"))
    x = torch.randn(2, 4, 6, 9, dtype=torch.float64)
    twin = CF.hyena(
        x,
        op.in_weight,
        op.short_filter.weight,
        [f.kernel_net for f in op.long_filters],
        op.kernel_size,
        op.out_weight,
        in_bias=op.in_bias,
        short_bias=op.short_filter.bias,
        long_biases=[f.bias for f in op.long_filters],
        out_bias=op.out_bias,
        padding_mode=("zeros", "circular"),
    )
    torch.testing.assert_close(twin, op(x), rtol=1e-10, atol=1e-12)


def test_network_is_equivariant_and_its_checkpoint_rebuilds_the_boundary(tmp_path):
    kwargs = {
        "in_channels": 2,
        "out_channels": 3,
        "data_dim": 2,
        "input_size": [6, 9],
        "hidden_channels": 8,
        "num_blocks": 2,
        "filter_hidden": 8,
        "padding_mode": ["zeros", "circular"],
    }
    spec = ModelSpec("hyena", {**kwargs, "head": "none"})
    torch.manual_seed(3)
    model = spec.build().eval()
    x = torch.randn(2, 2, 6, 9)
    torch.testing.assert_close(
        model(torch.roll(x, 3, dims=-1)), torch.roll(model(x), 3, dims=-1), rtol=1e-4, atol=1e-5
    )
    back = load_checkpoint(save_checkpoint(tmp_path / "m.ckpt", model, spec))
    torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)
    assert all(b.mixer.padding_mode == ("zeros", "circular") for b in back.blocks)
    pooled = HyenaNet(**{**kwargs, "input_size": (6, 9)}).eval()
    torch.testing.assert_close(pooled(torch.roll(x, 5, dims=-1)), pooled(x), rtol=1e-4, atol=1e-5)


def test_baked_hyena_keeps_the_boundary():
    op = _hyena((6, 9), ("zeros", "circular")).eval()
    baked = bake(op, (6, 9))
    assert all(isinstance(f, BakedConv) for f in baked.long_filters)
    assert all(f.padding_mode == ("zeros", "circular") for f in baked.long_filters)
    x = torch.randn(2, 4, 6, 9, dtype=torch.float64)
    torch.testing.assert_close(baked(x), op(x))
    # the frozen operator is still equivariant along the periodic axis
    torch.testing.assert_close(baked(torch.roll(x, 2, dims=-1)), torch.roll(baked(x), 2, dims=-1))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Hyena(4, causal=True, input_size=8, padding_mode="circular"),
        lambda: Hyena(4, input_size=8, padding_mode="reflect"),
        lambda: HyenaNet(1, 2, input_size=8, causal=True, padding_mode="circular"),
        lambda: HyenaNet(1, 2, 2, input_size=(8, 8), padding_mode=("circular",)),
    ],
)
def test_bad_padding_mode_names_the_argument(build):
    with pytest.raises(ArgumentValueError, match="padding_mode") as err:
        build()
    assert err.value.argument == "padding_mode"
