"""Optimiser groups and learning-rate schedules of the papers."""

import math

import pytest
import torch

from ckconv.app.config import OptimConfig
from ckconv.app.optim import (
    build_optimizer,
    build_scheduler,
    cosine_warmup_factor,
    optimizer_groups,
    warmup_steps,
)
from ckconv.models import CCNN
from ckconv.nn import CKConv, GaussianMask


@pytest.fixture
def model():
    return CCNN(1, 3, 1, input_size=16, hidden_channels=4, num_blocks=2)


def test_three_groups_found_by_module_type(model):
    cfg = OptimConfig(lr=0.1, weight_decay=0.01, mask_lr=0.5, kernel_net_weight_decay=0.0)
    groups = {g["name"]: g for g in optimizer_groups(model, cfg)}
    masks = {id(p) for m in model.modules() if isinstance(m, GaussianMask) for p in m.parameters()}
    kernel = {id(p) for m in model.modules() if isinstance(m, CKConv)
              for p in m.kernel_net.parameters()}  # fmt: skip
    assert {id(p) for p in groups["mask"]["params"]} == masks and masks
    assert {id(p) for p in groups["kernel_net"]["params"]} == kernel and kernel
    everything = {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["default"]["params"]} == everything - masks - kernel
    assert (groups["mask"]["lr"], groups["mask"]["weight_decay"]) == (0.5, 0.0)
    assert (groups["default"]["lr"], groups["default"]["weight_decay"]) == (0.1, 0.01)
    assert groups["kernel_net"]["weight_decay"] == 0.0


@pytest.mark.parametrize(("name", "cls"), [("adam", torch.optim.Adam),
                                           ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])  # fmt: skip
def test_optimizers(model, name, cls):
    opt = build_optimizer(model, OptimConfig(optimizer=name, lr=0.3))
    assert isinstance(opt, cls) and all(g["lr"] == 0.3 for g in opt.param_groups)


def test_cosine_with_linear_warmup_matches_the_closed_form():
    warm, total = 4, 20
    f = [cosine_warmup_factor(s, warm, total, 0.1) for s in range(total + 1)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    for s in range(warm, total + 1):
        expect = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        assert f[s] == pytest.approx(expect)
    assert f[-1] == pytest.approx(0.1)


def test_schedulers_step_the_learning_rate_of_every_group(model):
    cfg = OptimConfig(lr=1.0, mask_lr=0.1, scheduler="cosine", warmup_epochs=1.0)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=2, total_steps=6, monitor="val/acc",
                            mode="max")["scheduler"]  # fmt: skip
    lrs = []
    for _ in range(6):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert [row[0] for row in lrs] == pytest.approx([0.5, 1.0, 1.0, 0.8535534, 0.5, 0.1464466])
    assert all(row[-1] == pytest.approx(row[0] * 0.1) for row in lrs)  # mask lr keeps its ratio
    plateau = build_scheduler(opt, OptimConfig(scheduler="plateau", plateau_patience=3),
                              steps_per_epoch=2, total_steps=6, monitor="val/bpc", mode="min")  # fmt: skip
    assert plateau["monitor"] == "val/bpc" and plateau["interval"] == "epoch"
    assert plateau["scheduler"].mode == "min" and plateau["scheduler"].patience == 3
    assert build_scheduler(opt, OptimConfig(scheduler="none"), steps_per_epoch=1, total_steps=1,
                           monitor="m", mode="max") is None  # fmt: skip


def test_a_warmup_longer_than_the_run_is_shortened_to_half_of_it(model):
    """A config's 10 warm-up epochs in a run shrunk to 5 epochs of 4 steps: the lr ramps over
    10 of the 20 steps, reaches the peak, and the cosine part still decays to the floor."""
    cfg = OptimConfig(lr=1.0, scheduler="cosine", warmup_epochs=10.0)
    steps, note = warmup_steps(cfg, steps_per_epoch=4, total_steps=20)
    assert steps == 10 and "optim.warmup_epochs=10" in note and "2.5 epoch(s)" in note
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4, total_steps=20, monitor="val/acc",
                            mode="max")["scheduler"]  # fmt: skip
    lrs = []
    for _ in range(21):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[20] == pytest.approx(0.0, abs=1e-12)
    # a warm-up that fits is kept as given, without a note
    assert warmup_steps(cfg, steps_per_epoch=4, total_steps=400) == (40, "")
    assert warmup_steps(OptimConfig(scheduler="plateau", warmup_epochs=10.0), 4, 8) == (0, "")


def test_point_ccnn_kernel_nets_get_no_weight_decay():
    """The app's optimiser builder groups a point CCNN like a grid one: with weight_decay > 0
    its kernel-net parameters (found by the ContinuousConv base) get none, its masks their own."""
    from ckconv.models import PointCCNN
    from ckconv.nn import PointFlexConv

    model = PointCCNN.preset("ccnn_4_16", 6, 40)
    cfg = OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=0.05, mask_lr=1e-2)
    opt = build_optimizer(model, cfg)
    convs = [m for m in model.modules() if isinstance(m, PointFlexConv)]
    assert convs
    nets = {id(p) for c in convs for p in c.kernel_net.parameters()}
    masks = {id(c.kernel_mask.sigma) for c in convs}
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert set(decay) == {id(p) for p in model.parameters()}
    assert all(decay[i] == 0.0 for i in nets)
    assert sum(p.numel() for c in convs for p in c.kernel_net.parameters()) == 2720
    assert all(decay[i] == 0.0 for i in masks)
    others = set(decay) - nets - masks
    assert others and all(decay[i] == 0.05 for i in others)
