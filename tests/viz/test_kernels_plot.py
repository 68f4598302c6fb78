"""Kernel pictures, FlexConv mask sizes, and the `ckconv plot kernels` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ckconv.nn import CKConv, FlexConv
from ckconv.viz import (
    continuous_convs,
    format_mask_table,
    mask_sizes,
    plot_kernels,
    plot_mask_sizes,
    save_figure,
)


def _crop_count(sigma: float, threshold: float, kernel_size: int, causal: bool = False) -> int:
    """Samples from the mask centre to its crop edge: the mask exp(-x^2 / 2 sigma^2) is >= tau for
    |x| <= sigma sqrt(-2 ln tau) (SPEC 3.4), on a grid of step 2 / (K - 1).  Centred crops keep
    the taps inside; causal crops round up (ckconv.functional.masks.crop_counts)."""
    ratio = sigma * math.sqrt(-2.0 * math.log(threshold)) / (2.0 / (kernel_size - 1))
    return math.ceil(ratio - 1e-9) if causal else math.floor(ratio + 1e-9)


def _set_sigma(conv: FlexConv, sigma: float) -> None:
    with torch.no_grad():
        conv.kernel_mask.sigma.fill_(sigma)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = CKConv(2, 3, kernel_size=51)
        self.blocks = nn.Sequential(
            FlexConv(3, 3, kernel_size=101, separable=True),
            nn.ReLU(),
            FlexConv(3, 2, kernel_size=101, causal=True),
        )

    def forward(self, x):
        return self.blocks(self.first(x))


def test_mask_sizes_follow_the_learned_sigma():
    torch.manual_seed(0)
    net = Net()
    _set_sigma(net.blocks[0], 0.3)
    _set_sigma(net.blocks[2], 0.12)
    rows = mask_sizes(net)
    assert [r.layer for r in rows] == ["blocks.0", "blocks.2"]
    centred, causal = rows
    n = _crop_count(0.3, 0.1, 101)
    assert centred.cropped_size == (2 * n + 1,) and centred.kernel_size == (101,)
    assert centred.sigma == pytest.approx((0.3,))
    assert centred.fraction == pytest.approx((2 * n + 1) / 101)
    assert causal.cropped_size == (_crop_count(0.12, 0.1, 101, causal=True) + 1,)  # from +1 back
    table = format_mask_table(rows).splitlines()
    assert len(table) == 4 and "blocks.0" in table[2] and f"{2 * n + 1}" in table[2]


def test_mask_sizes_of_anisotropic_2d_masks():
    conv = FlexConv(1, 1, data_dim=2, kernel_size=(41, 81))
    with torch.no_grad():
        conv.kernel_mask.sigma.copy_(torch.tensor([0.2, 0.05]))
    (row,) = mask_sizes(conv)
    assert row.layer == "(model)"
    assert row.cropped_size == (
        2 * _crop_count(0.2, 0.1, 41) + 1,
        2 * _crop_count(0.05, 0.1, 81) + 1,
    )


def test_1d_pictures_show_each_layers_kernel_over_its_positions():
    torch.manual_seed(0)
    net = Net()
    _set_sigma(net.blocks[0], 0.3)
    fig = plot_kernels(net, max_channels=4)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3  # one per continuous convolution (colour bars have no images)
    for image, (name, conv) in zip(images, continuous_convs(net)):
        kernel = conv.kernel().detach()
        rows = kernel[:, 0] if conv.separable else kernel.reshape(-1, kernel.shape[-1])
        data = np.asarray(image.get_array())
        np.testing.assert_allclose(data, rows[:4].numpy(), rtol=1e-6)
        vmin, vmax = image.get_clim()
        assert vmax == pytest.approx(float(rows.abs().max())) and vmin == -vmax
        assert image.axes.get_title(loc="left").startswith(name)
    # the centred FlexConv's crop is drawn where it lies: 2n+1 samples around 0
    n = _crop_count(0.3, 0.1, 101)
    left, right, _, _ = images[1].get_extent()
    assert left == pytest.approx(-n * 0.02 - 0.01) and right == pytest.approx(n * 0.02 + 0.01)
    # the causal one ends at +1
    assert images[2].get_extent()[1] == pytest.approx(1.0 + 0.01)


def test_kernels_at_a_finer_rate_are_sampled_on_the_finer_grid():
    conv = CKConv(1, 2, kernel_size=11)
    fig = plot_kernels(conv, rate=2.0)
    (image,) = [ax.images[0] for ax in fig.axes if ax.images]
    data = np.asarray(image.get_array())
    assert data.shape == (2, 21)  # step 0.2 / 2 over [-1, 1]
    np.testing.assert_allclose(data, conv.kernel(2.0)[:, 0].detach().numpy(), rtol=1e-6)
    assert image.get_extent()[:2] == pytest.approx((-1.05, 1.05))
    assert "2x the training resolution" in fig.texts[0].get_text()
    with pytest.raises(ValueError, match="rate must be a finite number > 0 or None, got -1"):
        plot_kernels(conv, rate=-1.0)


def test_2d_and_3d_kernels_are_drawn_as_tiles():
    conv2 = FlexConv(4, 2, data_dim=2, kernel_size=15, separable=True)  # 4 depthwise kernels
    _set_sigma(conv2, 0.5)
    fig = plot_kernels(conv2, max_tiles=3)
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 3
    k = conv2.kernel().detach()
    np.testing.assert_allclose(
        np.asarray(tiles[1].images[0].get_array()), k[1, 0].numpy(), rtol=1e-6
    )
    conv3 = CKConv(1, 2, data_dim=3, kernel_size=(5, 7, 9))
    fig = plot_kernels(conv3, max_tiles=2)
    tiles = [ax for ax in fig.axes if ax.images]
    k = conv3.kernel().detach()  # (2, 1, 5, 7, 9): middle slice of the first axis
    np.testing.assert_allclose(
        np.asarray(tiles[0].images[0].get_array()), k[0, 0, 2].numpy(), rtol=1e-6
    )


def test_plots_refuse_models_without_what_they_draw():
    with pytest.raises(ValueError, match="Linear has no continuous convolution"):
        plot_kernels(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="CKConv has no FlexConv layer"):
        plot_mask_sizes(CKConv(1, 1, kernel_size=5))
    with pytest.raises(ValueError, match="max_channels must be a positive int, got 0"):
        plot_kernels(CKConv(1, 1, kernel_size=5), max_channels=0)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got str"):
        continuous_convs("model")


def test_mask_size_bars_and_saved_png(tmp_path):
    net = Net()
    _set_sigma(net.blocks[2], 0.4)
    fig = plot_mask_sizes(net)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([r.fraction for r in mask_sizes(net)])
    path = save_figure(fig, tmp_path / "sub" / "masks.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["masks.png"]  # no temporary left behind


def _write_checkpoint(path, model, config):
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
         "ckconv": {"format_version": 1, "config": config}},
        path,
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A checkpoint in the `ckconv train` format: a small CCNN on the offline digits task."""
    pytest.importorskip("lightning", reason="the app extra (lightning) reads checkpoints")
    from ckconv.app.config import Config, ModelConfig, TaskConfig, config_to_dict
    from ckconv.app.tasks import build_model_from_config, build_task

    cfg = Config(
        task=TaskConfig("digits"),
        model=ModelConfig("ccnn", options={"hidden_channels": 6, "num_blocks": 2}),
    )
    torch.manual_seed(1)
    model = build_model_from_config(cfg, build_task(cfg))
    flex = [m for m in model.modules() if isinstance(m, FlexConv)]
    _set_sigma(flex[0], 0.25)  # "trained": differs from any fresh initialisation
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    root = tmp_path_factory.mktemp("run")
    (root / "checkpoints").mkdir()
    path = root / "checkpoints" / "best.ckpt"
    _write_checkpoint(path, model, config_to_dict(cfg))
    return path, model


def test_checkpoint_round_trip_restores_the_kernels(digits_run):
    # what the command draws is the trained model: its kernels equal the saved model's
    from ckconv.app.evaluation import load_model

    path, model = digits_run
    torch.manual_seed(99)
    loaded = load_model(path)[0]
    for (_, a), (_, b) in zip(continuous_convs(model), continuous_convs(loaded), strict=True):
        torch.testing.assert_close(b.kernel(), a.kernel(), rtol=0, atol=0)
    assert [r.cropped_size for r in mask_sizes(loaded)] == [
        r.cropped_size for r in mask_sizes(model)
    ]


def test_plot_kernels_command(digits_run, tmp_path, capsys):
    from ckconv.app.plot_command import main_plot_kernels

    path, model = digits_run
    assert main_plot_kernels(["--checkpoint", str(path)]) == 0
    out = capsys.readouterr().out
    plots = path.parent.parent / "plots"
    assert (plots / "kernels.png").is_file() and (plots / "mask_sizes.png").is_file()
    first = mask_sizes(model)[0]
    assert f"| {first.layer} " in out and "x".join(map(str, first.cropped_size)) in out
    assert main_plot_kernels(["--checkpoint", str(path), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "kernels.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_kernels_command_explains_bad_checkpoints(tmp_path, capsys):
    pytest.importorskip("lightning", reason="the plot command is the app's")
    from ckconv.app.plot_command import main_plot_kernels

    assert main_plot_kernels(["--checkpoint", str(tmp_path / "none.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    assert main_plot_kernels(["--checkpoint", str(tmp_path / "plain.ckpt")]) == 2
    assert "no ckconv config inside" in capsys.readouterr().err


def test_docstring_examples_run():
    import doctest

    import ckconv.viz.kernels as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
