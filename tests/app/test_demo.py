"""`ckconv demo`: trains on offline digits, evaluates zero-shot at 16x16 and 4x4, draws."""

import pytest

from ckconv.app.cli import main
from ckconv.app.demo import run_demo

PNG = b"\x89PNG\r\n\x1a\n"


def test_demo_pipeline_at_a_tiny_size(tmp_path, capsys):
    acc = run_demo(
        tmp_path,
        epochs=2,
        progress_bar=False,
        extra_overrides=[
            "model.hidden_channels=4",
            "model.num_blocks=1",
            "trainer.limit_train_batches=4",
            "optim.warmup_epochs=0",
        ],
    )
    assert set(acc) == {"8x8", "16x16", "4x4"}
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    out = capsys.readouterr().out
    assert "zero-shot" in out and "16x16" in out and "4x4" in out
    (run,) = (tmp_path / "demo_digits").iterdir()
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
