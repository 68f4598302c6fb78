"""Associative recall (H3 / Hyena papers): the generator's defining property, seeding, options."""

from __future__ import annotations

import pytest
import torch

from ckconv.data.registry import TASKS, make_datasets
from ckconv.data.synthetic import AssociativeRecall, associative_recall_batch


@pytest.mark.parametrize(("length", "vocab"), [(9, 6), (256, 20), (257, 30), (65, 5)])
def test_the_answer_is_the_value_paired_with_the_query_earlier(length, vocab):
    """Brute force over every sequence: parse the pairs from the end, find each occurrence of
    the query key, and check every one of them is followed by the target's value token."""
    x, y = associative_recall_batch(200, length, vocab, torch.Generator().manual_seed(length))
    n_keys = vocab // 2
    assert x.shape == (200, length) and y.shape == (200,)
    assert x.min() >= 0 and x.max() < vocab and y.min() >= 0 and y.max() < vocab - n_keys
    for seq, target in zip(x.tolist(), y.tolist()):
        query, body = seq[-1], seq[:-1]
        start = len(body) % 2  # an even length starts with one filler value
        keys, values = body[start::2], body[start + 1 :: 2]
        assert all(k < n_keys for k in [*keys, query]) and all(v >= n_keys for v in values)
        answers = {v - n_keys for k, v in zip(keys, values) if k == query}
        assert answers == {target}  # the query occurs, always with the target's value
        # the map is per sequence: a key always carries the same value within it
        for k in set(keys):
            assert len({v for kk, v in zip(keys, values) if kk == k}) == 1


def test_dataset_is_seeded_per_split_and_index():
    a = AssociativeRecall(33, vocab_size=10, num_samples=5, split="train", seed=3)
    b = AssociativeRecall(33, vocab_size=10, num_samples=5, split="train", seed=3)
    c = AssociativeRecall(33, vocab_size=10, num_samples=5, split="val", seed=3)
    assert all(torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1] for i in range(5))
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(5))
    assert (a.vocab_size, a.num_classes) == (10, 5)
    state = torch.random.get_rng_state()
    AssociativeRecall(33, vocab_size=10)
    assert torch.equal(torch.random.get_rng_state(), state)  # construction leaves the global RNG


def test_bad_options_name_the_argument():
    with pytest.raises(ValueError, match="vocab_size must be at least 4"):
        AssociativeRecall(33, vocab_size=3)
    with pytest.raises(ValueError, match="length must be at least 3"):
        associative_recall_batch(1, 2, 10)


def test_task_entry_takes_length_and_vocab_size():
    info = TASKS["associative_recall"]
    assert {"length", "vocab_size", "num_train", "num_eval", "seed"} <= info.options
    splits = make_datasets("associative_recall", None, length=17, vocab_size=8, num_train=4)
    x, _ = splits["train"][0]
    assert x.shape == (17,) and x.dtype == torch.int64 and splits["train"].num_classes == 4
    assert len(splits["train"]) == 4 and splits["val"].vocab_size == 8
