"""`ckconv data synth-speech` and the kernel-scaling ablation of `ckconv eval --sampling-rates`."""

import json
import wave

import numpy as np
import pytest
import torch

from ckconv.app.cli import main
from ckconv.app.config import load_config
from ckconv.app.rates import rate_table, unscaled_kernels, write_rate_table
from ckconv.app.training import train
from ckconv.data import speech_synth
from ckconv.models import CKCNN
from ckconv.nn import CKConv, FlexConv


def test_synth_speech_command_writes_the_set(tmp_path, monkeypatch, capsys):
    def fake_speak(word, voice, speed, pitch, programs=None):
        return np.sin(np.arange(8000) * (0.05 + 0.01 * len(word))).astype(np.float32)

    monkeypatch.setattr(speech_synth, "speak", fake_speak)
    monkeypatch.setattr(speech_synth, "check_programs", lambda *a: {"espeak-ng": "-", "sox": "-"})
    out = tmp_path / "sc"
    code = main(["data", "synth-speech", "--out", str(out), "--speakers", "3",
                 "--words", "yes,no", "--utterances", "2", "--snr", "20"])  # fmt: skip
    assert code == 0
    assert "wrote 12 clips (2 words x 3 speakers x 2)" in capsys.readouterr().out
    wavs = sorted(out.rglob("*.wav"))
    assert len(wavs) == 12 and {w.parent.name for w in wavs} == {"yes", "no"}
    with wave.open(str(wavs[0]), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            1, 2, 16000, 16000)  # fmt: skip
    assert (out / "validation_list.txt").is_file() and (out / "testing_list.txt").is_file()


def test_synth_speech_command_without_the_programs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["data", "synth-speech", "--out", str(tmp_path / "sc")]) == 2
    err = capsys.readouterr().err
    assert "espeak-ng, sox, not found" in err and "apt-get install espeak-ng sox" in err
    assert not (tmp_path / "sc").exists()


@pytest.mark.parametrize("cls, causal", [(CKConv, True), (CKConv, False), (FlexConv, False)])
def test_unscaled_kernels_are_the_trained_function_on_the_coarser_grid(cls, causal):
    torch.manual_seed(0)
    extra = {"mask_init_sigma": 10.0} if cls is FlexConv else {}  # wide mask: no crop
    layer = cls(2, 3, 1, kernel_size="same", input_size=9, causal=causal, **extra)
    trained = layer.kernel()  # 9 taps at the training rate
    with unscaled_kernels(layer, 0.5):
        coarse = layer.kernel(0.5)  # 5 taps at half the rate
    # paper property: the same continuous kernel at every second training position ...
    torch.testing.assert_close(coarse, trained[..., ::2])
    # ... and CKConv eq. 5 multiplies it by sr_train / sr_eval = 2 (the hook is gone again)
    torch.testing.assert_close(layer.kernel(0.5), 2 * trained[..., ::2])


def test_unscaled_kernels_cover_every_layer_of_a_model():
    torch.manual_seed(0)
    model = CKCNN(1, 4, input_size=16, hidden_channels=4, num_blocks=2).eval()
    x = torch.randn(3, 1, 8)
    layers = [m for m in model.modules() if isinstance(m, CKConv)]
    assert len(layers) == 4
    with torch.no_grad():
        scaled = model(x, rate=0.5)
        # causal, 16 taps: every second training tap counted back from the newest
        trained = [m.kernel().flip(-1)[..., ::2].flip(-1) for m in layers]
        with unscaled_kernels(model, 0.5):
            for m, k in zip(layers, trained):
                torch.testing.assert_close(m.kernel(0.5), k)
            unscaled = model(x, rate=0.5)
        assert all(not m.kernel_net._forward_hooks for m in layers)
        torch.testing.assert_close(model(x, rate=0.5), scaled)
    # GroupNorm(1, C) after each convolution removes a common factor of conv(x, k): with the
    # zero biases of a new CKCNN the factor changes nothing but the norm's eps term ...
    torch.testing.assert_close(unscaled, scaled, rtol=0, atol=1e-3)
    # ... with biases that differ between channels it does (the norm takes one mean and
    # variance over all channels: conv(x, k) / 2 + b is not a multiple of conv(x, k) + b)
    with torch.no_grad():
        for m in layers:
            m.bias.copy_(torch.linspace(-1, 1, m.bias.numel()))
        scaled = model(x, rate=0.5)
        with unscaled_kernels(model, 0.5):
            unscaled = model(x, rate=0.5)
    assert (unscaled - scaled).abs().max() > 1e-3
    with pytest.raises(ValueError, match="no continuous-kernel layers"):
        with unscaled_kernels(torch.nn.Linear(2, 2), 0.5):
            pass


def test_rate_table_without_kernel_scaling(tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(None, [
        "name=small", "task.name=digits", "model.name=ccnn", "model.hidden_channels=4",
        "model.num_blocks=1", "optim.warmup_epochs=0", "trainer.max_epochs=1",
        "trainer.limit_train_batches=4", "trainer.deterministic=true",
        "trainer.progress_bar=false", f"trainer.out_dir={tmp_path}",
    ])  # fmt: skip
    ckpt = train(cfg).best_checkpoint
    scaled = rate_table(ckpt, ["1", "1/2"])
    plain = rate_table(ckpt, ["1", "1/2"], kernel_scaling=False)
    assert plain.metrics[0] == scaled.metrics[0]  # at the training rate the factor is 1
    # the CCNN has no norm right after its convolutions: the factor changes the logits
    assert plain.metrics[1]["test/loss"] != scaled.metrics[1]["test/loss"]
    paths = write_rate_table(plain, tmp_path / "out")
    assert paths["json"].name.endswith("_unscaled.json")
    assert json.loads(paths["json"].read_text())["kernel_scaling"] is False
    # the command line: --no-kernel-scaling goes with --sampling-rates
    assert main(["eval", "--checkpoint", str(ckpt), "--no-kernel-scaling"]) == 2
    assert main(["eval", "--checkpoint", str(ckpt), "--sampling-rates", "1/2",
                 "--no-kernel-scaling", "--json", "--out", str(tmp_path / "o2")]) == 0  # fmt: skip
    assert (tmp_path / "o2" / f"rates_test_{ckpt.stem}_unscaled.csv").is_file()
