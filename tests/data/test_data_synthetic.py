import pytest
import torch

from ckconv.data.synthetic import (
    FITTING_TARGETS,
    AddingProblem,
    CopyMemory,
    adding_problem_batch,
    copy_memory_batch,
    kernel_fitting_target,
)


@pytest.mark.parametrize("length", [1, 100, 6000])
def test_copy_memory_layout(length):
    x, y = copy_memory_batch(64, length, torch.Generator().manual_seed(0))
    assert x.shape == (64, 1, length + 20) and y.shape == (64, length + 20)
    digits = x[:, 0, :10]
    assert ((digits >= 1) & (digits <= 8)).all()
    assert (x[:, 0, 10 : length + 9] == 0).all()  # T - 1 zeros
    assert (x[:, 0, -11:] == 9).all()  # 11 nines
    assert (y[:, :-10] == 0).all()
    assert torch.equal(y[:, -10:], digits.long())


def test_copy_memory_digits_cover_1_to_8():
    x, _ = copy_memory_batch(2000, 10, torch.Generator().manual_seed(1))
    assert set(x[:, 0, :10].unique().tolist()) == set(range(1, 9))


def test_adding_problem_definition_and_baseline_mse():
    x, y = adding_problem_batch(100_000, 20, torch.Generator().manual_seed(0))
    values, marker = x[:, 0], x[:, 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert (marker.sum(dim=1) == 2).all() and set(marker.unique().tolist()) == {0.0, 1.0}
    # oracle: the target is the float64 sum of the two marked values
    expected = (values.double() * marker.double()).sum(dim=1, keepdim=True)
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=1e-6)
    mse = ((y.double() - 1.0) ** 2).mean().item()
    # Var(u1 + u2) = 1/6 exactly; the papers quote "about 0.17" (0.1767).
    assert abs(mse - 1 / 6) < 0.003
    assert abs(mse - 0.1767) < 0.013


def test_adding_markers_spread_over_the_sequence():
    x, _ = adding_problem_batch(20000, 20, torch.Generator().manual_seed(3))
    per_position = x[:, 1].mean(dim=0)
    torch.testing.assert_close(per_position, torch.full((20,), 2 / 20), atol=0.01, rtol=0)


def test_datasets_are_reproducible_and_splits_differ():
    a = CopyMemory(30, num_samples=5, split="train", seed=7)
    b = CopyMemory(30, num_samples=5, split="train", seed=7)
    c = CopyMemory(30, num_samples=5, split="test", seed=7)
    assert torch.equal(a[3][0], b[3][0]) and torch.equal(a[3][1], b[3][1])
    assert not torch.equal(a[3][0], c[3][0])
    assert not torch.equal(a[0][0], a[1][0])
    d = AddingProblem(40, num_samples=3, split="val")
    x, y = d[2]
    assert x.shape == (2, 40) and y.shape == (1,)
    assert torch.allclose(y, (x[0] * x[1]).sum().reshape(1))
    assert len(d) == 3
    with pytest.raises(IndexError):
        d[3]


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_lengths_rejected(bad):
    with pytest.raises(ValueError, match="length"):
        CopyMemory(bad)


def test_fitting_targets():
    for name in FITTING_TARGETS:
        y = kernel_fitting_target(name, 500)
        assert y.shape == (500,) and torch.isfinite(y).all()
    step = kernel_fitting_target("step", 10)
    assert step.tolist() == [0.0] * 5 + [1.0] * 5
    saw = kernel_fitting_target("sawtooth", 801)
    assert saw.min() >= -1 and saw.max() < 1
    assert int((saw[1:] < saw[:-1]).sum()) == 8  # 8 jumps, all inside the domain
    # one definition: the kernel-fitting study fits exactly these targets
    from ckconv.studies.fit_kernel import make_target

    for name in FITTING_TARGETS:
        torch.testing.assert_close(
            make_target(name, 300, seed=3)[1], kernel_fitting_target(name, 300, 3)
        )
    with pytest.raises(ValueError, match="name must be one of"):
        kernel_fitting_target("cosine", 10)
