"""``padding_mode`` on the CCNN: a circular axis makes the network equivariant to circular shifts
along it (per-position outputs) and its pooled output invariant; checkpoints rebuild it."""

from __future__ import annotations

import pytest
import torch

from ckconv._checks import ArgumentValueError
from ckconv.models import CCNN, ModelSpec, load_checkpoint, save_checkpoint
from ckconv.nn import FlexConv

KW = {"hidden_channels": 8, "num_blocks": 2, "kernel_hidden": 8, "mask_init_sigma": 0.5}


def _model(data_dim, size, padding_mode, **kw):
    torch.manual_seed(0)
    return CCNN(2, 3, data_dim, input_size=size, padding_mode=padding_mode, **KW, **kw).double()


@pytest.mark.parametrize(
    "data_dim,size,padding_mode,dim",
    [
        (1, (17,), "circular", -1),
        (1, (16,), "circular", -1),
        (2, (6, 9), ("zeros", "circular"), -1),  # bounded rows, periodic columns
        (2, (7, 6), ("circular", "zeros"), -2),
    ],
)
def test_circular_axis_gives_shift_equivariant_features_and_invariant_pooling(
    data_dim, size, padding_mode, dim
):
    per_position = _model(data_dim, size, padding_mode, head="none").eval()
    pooled = _model(data_dim, size, padding_mode).eval()
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    for shift in (1, 3):
        rolled = torch.roll(x, shift, dims=dim)
        torch.testing.assert_close(
            per_position(rolled),
            torch.roll(per_position(x), shift, dims=dim),
            rtol=1e-9,
            atol=1e-10,
        )
        torch.testing.assert_close(pooled(rolled), pooled(x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("padding_mode", ["zeros", ("circular", "zeros")])
def test_a_zero_padded_axis_is_not_shift_equivariant(padding_mode):
    # the control: along a bounded axis the features see the edges, so the property above
    # is a property of the circular axis, not of the network
    model = _model(2, (6, 9), padding_mode, head="none").eval()
    x = torch.randn(2, 2, 6, 9, dtype=torch.float64)
    gap = model(torch.roll(x, 2, dims=-1)) - torch.roll(model(x), 2, dims=-1)
    assert gap.abs().max() > 1e-3


def test_every_flexconv_gets_the_mode_and_the_default_is_unchanged():
    model = _model(2, (6, 9), ["zeros", "circular"])
    convs = [m for m in model.modules() if isinstance(m, FlexConv)]
    assert len(convs) == KW["num_blocks"]
    assert all(c.padding_mode == ("zeros", "circular") for c in convs)
    default = CCNN(2, 3, 2, input_size=(6, 9), **KW)
    assert all(m.padding_mode == "zeros" for m in default.modules() if isinstance(m, FlexConv))


def test_checkpoint_rebuilds_the_boundary(tmp_path):
    kwargs = {
        "in_channels": 2,
        "out_channels": 3,
        "data_dim": 2,
        "input_size": [6, 9],
        "padding_mode": ["zeros", "circular"],
        **KW,
    }
    spec = ModelSpec("ccnn", kwargs)
    torch.manual_seed(1)
    model = spec.build().eval()
    path = save_checkpoint(tmp_path / "m.ckpt", model, spec)
    back = load_checkpoint(path)
    assert [m.padding_mode for m in back.modules() if isinstance(m, FlexConv)] == [
        ("zeros", "circular")
    ] * KW["num_blocks"]
    x = torch.randn(2, 2, 6, 9)
    torch.testing.assert_close(back(x), model(x), rtol=0, atol=0)
    # and the reloaded model keeps the property (a zero-padded rebuild would not)
    torch.testing.assert_close(back(torch.roll(x, 4, dims=-1)), back(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"padding_mode": "reflect"}, r"padding_mode must be 'zeros' or 'circular'.*'reflect'"),
        ({"padding_mode": ("circular",), "data_dim": 2}, r"padding_mode .*sequence of 2"),
        ({"padding_mode": "circular", "causal": True}, r"padding_mode='circular' with causal=True"),
    ],
)
def test_bad_padding_mode_names_the_argument(kwargs, match):
    data_dim = kwargs.pop("data_dim", 1)
    size = (8,) * data_dim
    with pytest.raises(ArgumentValueError, match=match) as err:
        CCNN(1, 2, data_dim, input_size=size, **KW, **kwargs)
    assert err.value.argument == "padding_mode"
