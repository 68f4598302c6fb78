"""`ckconv demo`: trains on offline digits, evaluates zero-shot at 16x16 and 4x4, draws."""

import pytest

from ckconv.app.cli import main
from ckconv.app.demo import ZERO_SHOT, run_demo
from ckconv.app.evaluation import load_model
from ckconv.data.transforms import resize_image

PNG = b"\x89PNG\r\n\x1a\n"


def test_demo_pipeline_at_a_tiny_size(tmp_path, capsys, accuracy_by_hand):
    acc = run_demo(
        tmp_path,
        epochs=1,  # shorter than the config's warm-up: shortened to half the run, with a note
        progress_bar=False,
        extra_overrides=[
            "model.hidden_channels=4",
            "model.num_blocks=1",
            "trainer.limit_train_batches=4",
        ],
    )
    assert set(acc) == {"8x8", "16x16", "4x4"}
    out = capsys.readouterr().out
    assert "warm-up shortened to 0.5 epoch(s) (2 step(s)" in out
    assert "zero-shot" in out and "16x16" in out and "4x4" in out
    (run,) = (tmp_path / "demo_digits").iterdir()
    # each accuracy is the best checkpoint's, on the test images at that size, counted by hand
    # (to 1e-6: torchmetrics keeps float32; one item of the 269 changes it by 0.0037)
    model, _, bundle = load_model(run / "checkpoints" / "best.ckpt")
    test = bundle.datasets["test"]
    assert acc["8x8"] == pytest.approx(accuracy_by_hand(model, test), abs=1e-6)
    for label, rate in ZERO_SHOT:
        want = accuracy_by_hand(
            model, test, rate=rate, transform=lambda x, r=rate: resize_image(x, scale=r)
        )
        assert acc[label] == pytest.approx(want, abs=1e-6), label
    for name in ("curves.png", "kernels.png", "kernels_16x16.png"):
        assert (run / name).read_bytes().startswith(PNG)
    assert (run / "checkpoints" / "best.ckpt").is_file()


def test_demo_command_options():
    with pytest.raises(SystemExit):
        main(["demo", "--epochs", "two"])


@pytest.mark.slow
def test_full_demo_reaches_95_percent_on_digits(tmp_path):
    """The README's first command: >= 95% test accuracy at the training resolution (8x8)."""
    acc = run_demo(tmp_path, progress_bar=False)
    assert acc["8x8"] >= 0.95
