"""Export: .pt2 and ONNX artefacts of baked models load and run in a fresh process and match."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ckconv.deploy import bake, example_input, export_onnx, export_pt2
from ckconv.models import CCNN, CKCNN, CheckpointError, ModelSpec, load_checkpoint, save_checkpoint

# torch.export's own pytree code warns about its deprecated LeafSpec while saving programs.
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

# The fresh process imports only torch / onnxruntime / numpy: no ckconv needed to run artefacts.
_RUNNER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    cases = json.loads(sys.argv[1])
    worst = {}
    for case in cases:
        x = torch.load(case["input"])
        want = torch.load(case["expected"])
        if case["format"] == "pt2":
            got = torch.export.load(case["artefact"]).module()(x)
        else:
            import onnxruntime as ort
            sess = ort.InferenceSession(case["artefact"], providers=["CPUExecutionProvider"])
            (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            got = torch.from_numpy(np.asarray(out))
        assert got.shape == want.shape, (case["artefact"], got.shape, want.shape)
        worst[case["artefact"]] = float((got - want).abs().max() / want.abs().max())
    assert "ckconv" not in sys.modules
    print(json.dumps(worst))
    """
)


def _run_fresh(cases: list[dict]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cases():
    """name -> (model, input size, bake method, formats): each ONNX/pt2 path covered once."""
    torch.manual_seed(0)
    return {
        # 1D CCNN through F.conv1d (depthwise, asymmetric "same" padding): ONNX Conv nodes
        "ccnn1d_direct": (
            CCNN(2, 4, input_size=48, hidden_channels=8, num_blocks=2),
            48,
            "direct",
            ["onnx"],
        ),
        # CKCNN: dense global causal kernels (auto picks FFT: a complex matmul per frequency)
        "ckcnn": (CKCNN(3, 4, input_size=60, hidden_channels=6), 60, "auto", ["pt2", "onnx"]),
        # 2D CCNN through 2-D FFTs of depthwise kernels: ONNX DFT nodes
        "ccnn2d_fft": (
            CCNN(1, 4, 2, input_size=(10, 12), hidden_channels=6, num_blocks=1),
            (10, 12),
            "fft",
            ["pt2", "onnx"],
        ),
    }


def test_exported_artefacts_run_in_a_fresh_process(tmp_path: Path):
    cases = []
    for name, (model, size, method, formats) in _cases().items():
        model.eval()
        baked = bake(model, size, method=method)
        example = example_input(model, size, batch_size=2)
        # a different batch size at run time: the batch dimension was exported as dynamic
        x = example_input(model, size, batch_size=5)
        with torch.no_grad():
            expected = model(x)  # the original continuous model is the reference
        torch.save(x, tmp_path / f"{name}_x.pt")
        torch.save(expected, tmp_path / f"{name}_y.pt")
        for fmt in formats:
            artefact = tmp_path / f"{name}.{fmt}"
            if fmt == "pt2":
                export_pt2(baked, artefact, example)
            else:
                export_onnx(baked, artefact, example)
            cases.append(
                {
                    "format": fmt,
                    "artefact": str(artefact),
                    "input": str(tmp_path / f"{name}_x.pt"),
                    "expected": str(tmp_path / f"{name}_y.pt"),
                }
            )
    worst = _run_fresh(cases)
    assert len(worst) == len(cases)
    for artefact, rel in worst.items():
        assert rel < 1e-4, (artefact, rel)  # float32 FFTs of two libraries


def test_export_refuses_unbaked_models(tmp_path: Path):
    model = CCNN(1, 2, input_size=16, hidden_channels=4, num_blocks=1)
    x = example_input(model, 16)
    with pytest.raises(ValueError, match=r"bake it first"):
        export_pt2(model, tmp_path / "m.pt2", x)
    with pytest.raises(ValueError, match="batch size >= 2"):
        export_pt2(bake(model, 16), tmp_path / "m.pt2", x[:1])


def test_every_checkpoint_format_rebuilds_the_model(tmp_path: Path):
    """The model file of save_checkpoint, a Lightning-style checkpoint with a model spec and a
    model file of the old deploy.save_model all give the saved model back."""
    torch.manual_seed(1)
    kwargs = {"in_channels": 2, "out_channels": 3, "input_size": 20, "hidden_channels": 5,
              "norm": "layer"}  # fmt: skip
    model = CKCNN(**kwargs).eval()
    x = torch.randn(2, 2, 20)
    with torch.no_grad():
        want = model(x)
    spec = ModelSpec("ckcnn", kwargs)
    save_checkpoint(tmp_path / "plain.ckpt", model, spec)
    lightning_style = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "model_spec": spec.to_dict(),
        "ckconv": {"format_version": 1, "config": {"name": "x"}},
    }
    torch.save(lightning_style, tmp_path / "app.ckpt")
    old = {"model_config": {"name": "ckcnn", **kwargs}, "model_state": model.state_dict()}
    torch.save(old, tmp_path / "old.pt")
    for name in ("plain.ckpt", "app.ckpt", "old.pt"):
        loaded = load_checkpoint(tmp_path / name)
        assert not loaded.training
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), want, rtol=0, atol=0)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no model_spec inside"):
        load_checkpoint(tmp_path / "other.pt")


def test_main_export_cli(tmp_path: Path, capsys):
    pytest.importorskip("lightning", reason="the command is the app's")
    from ckconv.app.export_command import main_export

    torch.manual_seed(2)
    kwargs = {
        "in_channels": 1,
        "out_channels": 3,
        "input_size": 32,
        "hidden_channels": 6,
        "num_blocks": 1,
        "causal": True,
    }
    model = CCNN(1, 3, input_size=32, hidden_channels=6, num_blocks=1, causal=True)
    ckpt = save_checkpoint(tmp_path / "model.pt", model, ModelSpec("ccnn", kwargs))
    out = tmp_path / "out" / "model.pt2"
    code = main_export(["--checkpoint", str(ckpt), "--format", "pt2", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert out.is_file() and "check: max |exported - model|" in text
    # another resolution: bake at rate 1/2 for inputs of 16 samples
    out16 = tmp_path / "model16.pt2"
    code = main_export(
        [
            "--checkpoint",
            str(ckpt),
            "--format",
            "pt2",
            "--out",
            str(out16),
            "--input-size",
            "16",
            "--rate",
            "1/2",
            "--static-batch",
            "--batch-size",
            "1",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "(pt2, input (1, 1, 16)" in text and "check:" in text
    program = torch.export.load(out16)
    x = torch.randn(1, 1, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            program.module()(x), model.eval()(x, rate=0.5), rtol=1e-4, atol=1e-5
        )
    # bad input: clear message, exit code 2
    code = main_export(
        ["--checkpoint", str(tmp_path / "nope.pt"), "--format", "pt2", "--out", str(out)]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_of_a_train_checkpoint_from_before_model_specs(tmp_path: Path, capsys):
    """Checkpoints `ckconv train` wrote before they stored a model spec are rebuilt from their
    run config (the task's data gives the input size)."""
    pytest.importorskip("lightning", reason="the command is the app's")
    from ckconv.app.config import Config, ModelConfig, TaskConfig, config_to_dict
    from ckconv.app.export_command import main_export
    from ckconv.app.tasks import build_model_from_config, build_task

    cfg = Config(
        task=TaskConfig("digits"),
        model=ModelConfig("ccnn", options={"hidden_channels": 4, "num_blocks": 1}),
    )
    bundle = build_task(cfg)
    torch.manual_seed(3)
    model = build_model_from_config(cfg, bundle)
    old = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "ckconv": {"format_version": 1, "config": config_to_dict(cfg)},
    }
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="no model_spec inside"):
        load_checkpoint(tmp_path / "old.ckpt")
    out = tmp_path / "old.pt2"
    code = main_export(["--checkpoint", str(tmp_path / "old.ckpt"), "--format", "pt2",
                        "--out", str(out), "--raw-inputs"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    channels, size = bundle.spec.in_channels, tuple(bundle.spec.input_size)
    assert f"(pt2, input {(2, channels, *size)}" in text and "check:" in text
    x = torch.randn(3, channels, *size)
    with torch.no_grad():
        torch.testing.assert_close(
            torch.export.load(out).module()(x), model.eval()(x), rtol=1e-4, atol=1e-5
        )


def test_main_export_reports_user_errors_in_one_line_and_bugs_with_their_traceback(
    tmp_path: Path, capsys, monkeypatch
):
    pytest.importorskip("lightning", reason="the command is the app's")
    import ckconv.app.export_command as command

    model = CCNN(1, 3, input_size=16, hidden_channels=4, num_blocks=1)
    spec = ModelSpec("ccnn", {"in_channels": 1, "out_channels": 3, "input_size": 16,
                              "hidden_channels": 4, "num_blocks": 1})  # fmt: skip
    ckpt = save_checkpoint(tmp_path / "model.pt", model, spec)
    base = ["--checkpoint", str(ckpt), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]
    for extra, words in [
        (["--batch-size", "1"], "--batch-size 1 with a dynamic batch"),
        (["--batch-size", "0", "--static-batch"], "--batch-size must be a positive int, got 0"),
        (["--input-size", "0"], "--input-size must be a positive int, got 0"),
        (["--input-size", "16", "16"], "--input-size: 2 number(s) [16, 16]"),
        (["--input-size", "32", "--rate", "1/2"], "--input-size [32] does not match --rate 1/2"),
    ]:
        assert command.main_export([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("ckconv export: "), err
        assert words in err, err
    assert command.main_export([*base, "--batch-size", "1", "--static-batch"]) == 0
    capsys.readouterr()

    def broken(*args, **kwargs):
        raise ValueError("a bug inside the baking")

    monkeypatch.setattr(command, "bake", broken)
    with pytest.raises(ValueError, match="a bug inside the baking"):
        command.main_export(base)
