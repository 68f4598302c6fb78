"""Kernel grids and rate arithmetic (SPEC §3.1, §3.6)."""

from fractions import Fraction

import pytest
import torch

from ckconv.grids import as_rates, axis_positions, kernel_grid, rate_scale


@pytest.mark.parametrize("k", [1, 2, 5, 8, 33])
@pytest.mark.parametrize("causal", [False, True])
def test_training_rate_is_linspace(k, causal):
    pos = axis_positions(k, causal=causal, dtype=torch.float64)
    if k == 1:
        assert pos.tolist() == [1.0 if causal else 0.0]
    else:
        torch.testing.assert_close(pos, torch.linspace(-1, 1, k, dtype=torch.float64))


def test_grid_is_ij_meshgrid_coordinate_last_non_square():
    g = kernel_grid((3, 5), dtype=torch.float64)
    assert g.shape == (3, 5, 2)
    torch.testing.assert_close(g[:, 0, 0], torch.linspace(-1, 1, 3, dtype=torch.float64))
    torch.testing.assert_close(g[0, :, 1], torch.linspace(-1, 1, 5, dtype=torch.float64))
    assert kernel_grid((2, 3, 4)).shape == (2, 3, 4, 3)


@pytest.mark.parametrize("k", [9, 10, 33, 784])
@pytest.mark.parametrize("rate", [0.5, 0.25, 2.0, 3.0])
def test_subsampled_grid_is_aligned_with_training_grid(k, rate):
    train = axis_positions(k, causal=True, dtype=torch.float64)
    new = axis_positions(k, causal=True, rate=rate, dtype=torch.float64)
    step = (2.0 / (k - 1)) / rate
    assert new[-1] == 1.0  # the current sample stays the anchor
    torch.testing.assert_close(new.diff(), torch.full_like(new.diff(), step))
    assert new[0] >= -1 - 1e-12 and new[0] - step < -1 + 1e-12
    if rate < 1 and float(1 / rate).is_integer():  # seq[::n] keeps samples of the training grid
        n = round(1 / rate)
        torch.testing.assert_close(new, train.flip(0)[::n].flip(0))


@pytest.mark.parametrize("k", [7, 8, 9, 10])
@pytest.mark.parametrize("rate", [0.5, 1 / 3, 2.0, 2.5])
def test_centred_grid_keeps_same_padding_anchor(k, rate):
    pos = axis_positions(k, rate=rate, dtype=torch.float64)
    anchor = -1 + ((k - 1) // 2) * 2 / (k - 1)
    assert abs(pos[(len(pos) - 1) // 2].item() - anchor) < 1e-12
    assert pos.min() >= -1 - 1e-12 and pos.max() <= 1 + 1e-12


def test_rates_parse_fractions_and_strings():
    assert as_rates("1/2", 2) == (0.5, 0.5)
    assert as_rates([Fraction(1, 4), 2], 2) == (0.25, 2.0)
    assert rate_scale([0.5, 0.25], 2) == 8.0
    for bad in ["0", "-1", "abc", float("nan")]:
        with pytest.raises(ValueError, match="rate"):
            as_rates(bad, 1)
    with pytest.raises(ValueError, match="2 entries"):
        as_rates([1.0], 2)


def test_bad_sizes_and_causal_nd_are_refused():
    with pytest.raises(ValueError, match="positive"):
        kernel_grid((3, 0))
    with pytest.raises(ValueError, match="causal"):
        kernel_grid((3, 3), causal=True)


def test_circular_axis_positions_one_tap_per_offset_of_a_period():
    from ckconv.grids import circular_axis_positions

    for size in (7, 8):
        # the training grid at the training rate
        assert torch.equal(
            circular_axis_positions(size, period=size, dtype=torch.float64),
            torch.linspace(-1, 1, size, dtype=torch.float64),
        )
        for rate in (2, 3):
            pos = circular_axis_positions(size, rate=rate, period=rate * size, dtype=torch.float64)
            h = 2 / (size - 1)
            assert pos.numel() == rate * size  # the whole period, once
            assert pos.min() >= -1 - h / 2 - 1e-12 and pos.max() <= 1 + h / 2 + 1e-12
            # distinct offsets: positions differ modulo the period size * h
            anchor = -1 + ((size - 1) // 2) * h
            wrapped = torch.remainder(pos - anchor, size * h)
            assert torch.unique(torch.round(wrapped * rate / h)).numel() == rate * size
    # a kernel shorter than the period: offsets beyond its cells get no tap
    assert circular_axis_positions(5, period=9).numel() == 5
