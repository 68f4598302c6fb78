"""Batch samplers: global batches split over processes, exact mid-epoch resume, eval coverage."""

import pytest
import torch

from ckconv.app.sampling import EpochOrder, EvalBatchSampler, TrainBatchSampler


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world", [2, 4])
def test_processes_share_exactly_the_single_process_global_batches(world, drop_last):
    n, bs = 103, 8
    single = TrainBatchSampler(n, bs, seed=3, drop_last=drop_last)
    parts = [TrainBatchSampler(n, bs, seed=3, drop_last=drop_last, rank=r, world_size=world)
             for r in range(world)]  # fmt: skip
    for epoch in (0, 5):
        for s in (single, *parts):
            s.set_epoch(epoch)
        ref = list(single)
        shards = [list(p) for p in parts]
        assert all(len(s) == len(ref) for s in shards)  # every process takes the same steps
        for step, batch in enumerate(ref):
            union = sorted(i for s in shards for i in s[step])
            sizes = {len(s[step]) for s in shards}
            assert len(sizes) == 1  # equal micro-batches: the gradient mean is the global mean
            if len(batch) % world == 0:
                assert union == sorted(batch)
            else:  # the last batch is trimmed to a multiple of the process count
                assert set(union) <= set(batch) and len(batch) - len(union) < world


def test_epochs_have_different_seeded_orders_and_cover_the_data():
    order = EpochOrder(50, seed=1)
    a = order.order(0)
    b = order.order(1)
    assert sorted(a.tolist()) == list(range(50)) and not torch.equal(a, b)
    assert torch.equal(EpochOrder(50, seed=1).order(1), b)  # reproducible across objects
    assert not torch.equal(EpochOrder(50, seed=2).order(1), b)
    assert EpochOrder(5, shuffle=False).order(3).tolist() == [0, 1, 2, 3, 4]


def test_resume_skips_exactly_the_trained_batches_of_that_epoch_only():
    s = TrainBatchSampler(40, 6, seed=0)
    s.set_epoch(2)
    full = list(s)
    s.load_state_dict({"epoch": 2, "batches_done": 3})
    s.set_epoch(2)
    assert list(s) == full[3:]
    assert list(s) == full  # the skip applies once
    s.load_state_dict({"epoch": 1, "batches_done": 3})
    s.set_epoch(2)  # a resume point of an earlier epoch does not affect this one
    assert list(s) == full


def test_progress_marks_are_the_checkpoint_state():
    s = TrainBatchSampler(40, 6)
    s.mark(4, 2)
    assert s.state_dict() == {"epoch": 4, "batches_done": 2}


def test_bad_sizes_are_reported():
    with pytest.raises(ValueError, match="not divisible"):
        TrainBatchSampler(40, 6, world_size=4)
    with pytest.raises(ValueError, match="no training batch"):
        TrainBatchSampler(5, 8, drop_last=True)
    with pytest.raises(ValueError, match="rank"):
        TrainBatchSampler(40, 8, rank=2, world_size=2)


@pytest.mark.parametrize("n", [0, 1, 7, 64])
@pytest.mark.parametrize("world", [1, 3])
def test_eval_sampler_visits_every_item_exactly_once(n, world):
    seen = [i for r in range(world) for b in EvalBatchSampler(n, 4, rank=r, world_size=world)
            for i in b]  # fmt: skip
    assert sorted(seen) == list(range(n))
    for r in range(world):
        s = EvalBatchSampler(n, 4, rank=r, world_size=world)
        assert len(list(s)) == len(s)
