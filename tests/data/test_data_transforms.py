import pytest
import torch
from torch.utils.data import DataLoader

from ckconv.data._common import ArrayDataset, stratified_split
from ckconv.data.transforms import (
    ChannelNormalize,
    DropSamples,
    Subsample,
    channel_stats,
    drop_keep_mask,
    mask_route,
    pad_collate,
    resize_image,
    subsample,
    timestamp_collate,
    timestamp_route,
)


def _seq_dataset(n=8, c=3, length=20):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, length, generator=g)
    return ArrayDataset(x, torch.arange(n))


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.7])
def test_drop_counts_match_kidger(rate):
    keep = drop_keep_mask(182, rate, torch.Generator().manual_seed(0))
    assert int((~keep).sum()) == int(182 * rate)


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.7])
def test_mask_route(rate):
    ds = _seq_dataset()
    dropped = DropSamples(ds, rate, route="mask", seed=5)
    for i in range(len(ds)):
        x, y = ds[i]
        out, y2 = dropped[i]
        assert out.shape == (4, 20) and int(y2) == int(y)
        observed = out[-1]
        assert set(observed.unique().tolist()) <= {0.0, 1.0}
        assert int((observed == 0).sum()) == int(20 * rate)
        # observed steps are unchanged, dropped steps are zero in every channel
        torch.testing.assert_close(out[:3], x * observed)
    # reproducible per index, independent of access order; different across indices
    again = DropSamples(ds, rate, route="mask", seed=5)
    assert torch.equal(again[3][0], dropped[3][0])
    patterns = {tuple(dropped[i][0][-1].tolist()) for i in range(len(ds))}
    assert len(patterns) > 1
    other = DropSamples(ds, rate, route="mask", seed=6)
    assert any(not torch.equal(other[i][0], dropped[i][0]) for i in range(len(ds)))


def test_timestamp_route_keeps_times_and_batches():
    ds = _seq_dataset(n=4, length=10)
    times = torch.linspace(0.0, 4.5, 10)
    dropped = DropSamples(ds, 0.5, route="timestamps", seed=1, times=times)
    (values, t, mask), _ = dropped[2]
    x, _ = ds[2]
    assert values.shape == (3, 5) and t.shape == (5,) and mask.all()
    # each kept value sits at its original time
    idx = torch.round(t / 0.5).long()
    torch.testing.assert_close(values, x[:, idx])
    assert (t[1:] > t[:-1]).all()
    batch = next(iter(DataLoader(dropped, batch_size=4, collate_fn=timestamp_collate)))
    assert batch.values.shape == (4, 3, 5) and batch.times.shape == (4, 5) and batch.mask.all()


def test_timestamp_collate_pads_unequal_lengths():
    a = timestamp_route(torch.ones(2, 6), torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool))
    b = timestamp_route(torch.ones(2, 6), torch.tensor([0, 0, 1, 0, 0, 1], dtype=torch.bool))
    batch = timestamp_collate([(a, torch.tensor(0)), (b, torch.tensor(1))])
    assert batch.values.shape == (2, 2, 4)
    assert batch.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert batch.times[1].tolist() == [2.0, 5.0, 5.0, 5.0]
    assert batch.values[1, :, 2:].abs().sum() == 0


def test_mask_route_shape_errors():
    with pytest.raises(ValueError, match="expected x"):
        mask_route(torch.ones(2, 5), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="rate must be in"):
        DropSamples(_seq_dataset(), 1.0)
    with pytest.raises(ValueError, match="route must be"):
        DropSamples(_seq_dataset(), 0.3, route="both")


def test_subsample_keeps_first_sample_like_the_paper():
    seq = torch.arange(1, 183).reshape(1, 182)
    assert subsample(seq, 2)[0, :3].tolist() == [1, 3, 5] and subsample(seq, 2)[0, -1] == 181
    assert subsample(seq, 8)[0, -3:].tolist() == [161, 169, 177]  # CKConv appendix E.2
    assert Subsample(4)(seq)[0, -1] == 181
    with pytest.raises(ValueError, match="positive integer"):
        Subsample(0)


def test_resize_image():
    # a horizontal ramp f(w) = w: a symmetric (antialiased) filter returns the ramp at each output
    # pixel centre, which lies at input coordinate 2j + 0.5 for a 2x down-sampling
    ramp = torch.arange(16.0).expand(2, 16, 16).clone()
    small = resize_image(ramp, scale=0.5)
    assert small.shape == (2, 8, 8)
    centres = 2 * torch.arange(8.0) + 0.5
    torch.testing.assert_close(small[:, 3, 1:7], centres[1:7].expand(2, 6))
    # the antialias low-pass removes a Nyquist-frequency checkerboard (plain decimation would not)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2).float().unsqueeze(0)
    down = resize_image(checker, size=8)
    assert (down[:, 2:6, 2:6] - 0.5).abs().max() < 1e-5
    big = resize_image(torch.ones(3, 5, 7), size=(10, 14))
    torch.testing.assert_close(big, torch.ones(3, 10, 14))
    assert resize_image(torch.ones(4, 3, 8, 8), scale=2.0).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="exactly one of size or scale"):
        resize_image(ramp)


def test_channel_stats_match_float64_oracle_and_skip_nan():
    g = torch.Generator().manual_seed(0)
    xs = [
        torch.randn(3, int(n), generator=g) * 4 + 2
        for n in torch.randint(5, 30, (10,), generator=g)
    ]
    xs[0][1, :3] = float("nan")
    mean, std = channel_stats(xs)
    cat = torch.cat([x.double() for x in xs], dim=1)
    for c in range(3):
        v = cat[c][~torch.isnan(cat[c])]
        assert abs(mean[c].item() - v.mean().item()) < 1e-5
        assert abs(std[c].item() - v.std(unbiased=False).item()) < 1e-5
    norm = ChannelNormalize(mean, std)
    out = norm(xs[0])
    assert torch.isnan(out[1, :3]).all()
    ref = (xs[0][2] - mean[2]) / (std[2] + 1e-5)
    torch.testing.assert_close(out[2], ref)
    with pytest.raises(ValueError, match="expected 3 channels"):
        norm(torch.ones(2, 5))


def test_pad_collate_lengths_and_mask():
    batch = [(torch.ones(2, 3), torch.tensor(0)), (2 * torch.ones(2, 5), torch.tensor(1))]
    out = pad_collate(batch)
    assert out.x.shape == (2, 2, 5) and out.lengths.tolist() == [3, 5]
    assert out.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert out.x[0, :, 3:].abs().sum() == 0 and out.y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="equal C"):
        pad_collate([(torch.ones(2, 3), 0), (torch.ones(3, 3), 1)])


def test_stratified_split_is_deterministic_and_stratified():
    labels = [0] * 100 + [1] * 40 + [2] * 20
    a = stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    b = stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    assert all((x == y).all() for x, y in zip(a, b))
    together = sorted(i for p in a for i in p.tolist())
    assert together == list(range(160))
    counts = [[sum(labels[i] == c for i in p) for c in range(3)] for p in a]
    assert counts == [[70, 28, 14], [15, 6, 3], [15, 6, 3]]
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, (0.5, 0.2))
