"""Checkpoint files: atomic writes, weights_only reads."""

import os
import pickle

import pytest
import torch

from ckconv.app.checkpoint import AtomicCheckpointIO, atomic_torch_save, load_checkpoint
from ckconv.app.run_dir import atomic_write_text


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("boom while writing")


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        atomic_torch_save({"state_dict": {"w": torch.zeros(3)}, "x": _Unpicklable()}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt"]
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(3))


def test_checkpoint_io_round_trip_is_weights_only(tmp_path):
    io = AtomicCheckpointIO()
    ckpt = {"state_dict": {"w": torch.arange(4.0)}, "epoch": 3, "loops": {"a": [1, 2.5, None]}}
    io.save_checkpoint(ckpt, tmp_path / "sub" / "c.ckpt")
    back = io.load_checkpoint(tmp_path / "sub" / "c.ckpt")
    assert back["epoch"] == 3 and back["loops"] == {"a": [1, 2.5, None]}
    with pytest.raises(ValueError, match="weights_only=True only"):
        io.load_checkpoint(tmp_path / "sub" / "c.ckpt", weights_only=False)


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    with path.open("wb") as f:
        torch.save({"state_dict": {}, "x": _Payload()}, f)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps({"state_dict": {}}) + b"garbage")
    with pytest.raises(ValueError):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_atomic_text_write(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hello\n")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello\n"
    assert os.listdir(tmp_path / "a") == ["b.txt"]


def test_cli_reports_a_broken_checkpoint_in_one_line(tmp_path, capsys):
    from ckconv.app.checkpoint import CheckpointError
    from ckconv.app.cli import main

    good = tmp_path / "good.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.ones(1000)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.ckpt: not a loadable checkpoint"):
        load_checkpoint(truncated)
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    for name in ("truncated.ckpt", "text.ckpt"):
        assert main(["eval", "--checkpoint", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ckconv: {tmp_path / name}: not a loadable checkpoint")
        assert "weights_only` set to `False`" not in err  # no advice to load unsafely


_ONE_EPOCH = ["trainer.max_epochs=1", "optim.warmup_epochs=0", "trainer.limit_val_batches=1",
              "trainer.test_after_fit=false"]  # fmt: skip

# The fresh process rebuilds the model from the checkpoint with the core alone and compares it
# with what the training app built; it must not import the app, the data layer or Lightning.
_CORE_ONLY = """
import sys
import torch
from ckconv.models import load_checkpoint
path, x, want, state = sys.argv[1], *(torch.load(a) for a in sys.argv[2:5])
model = load_checkpoint(path)
got = model.state_dict()
assert list(got) == list(state), (list(got)[:5], list(state)[:5])
assert all(torch.equal(got[k], state[k]) for k in state)
with torch.no_grad():
    out = model(x)
assert torch.equal(out, want), float((out - want).abs().max())
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "lightning"
                or m.startswith(("ckconv.app", "ckconv.data")))
assert not loaded, loaded
print("identical")
"""


def test_a_trained_checkpoint_rebuilds_its_model_without_the_app(
    tiny, tmp_path, subprocess_env, run_folder
):
    import subprocess
    import sys

    from ckconv.app import load_config, train
    from ckconv.app.tasks import build_model_from_config, build_task

    cfg = load_config("demo_digits", [*tiny, *_ONE_EPOCH])
    last = train(cfg).last_checkpoint
    contents = load_checkpoint(last)
    assert contents["model_spec"]["name"] == "ccnn"
    # the reference: the model the app builds from the run config and the task, with the
    # checkpoint's raw weights
    state = {k.removeprefix("model."): v for k, v in contents["state_dict"].items()}
    bundle = build_task(cfg)
    reference = build_model_from_config(cfg, bundle).eval()
    reference.load_state_dict(state)
    x = torch.stack([bundle.datasets["test"][i][0] for i in range(4)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocess runs on one thread: the same float reductions
    try:
        with torch.no_grad():
            want = reference(x)
    finally:
        torch.set_num_threads(threads)
    for name, value in (("x", x), ("want", want), ("state", state)):
        torch.save(value, tmp_path / f"{name}.pt")
    args = [str(last), *(str(tmp_path / f"{n}.pt") for n in ("x", "want", "state"))]
    done = subprocess.run([sys.executable, "-c", _CORE_ONLY, *args], env=subprocess_env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "identical"


def test_a_checkpoint_from_before_model_specs_still_loads_through_the_app(tiny, tmp_path):
    from ckconv.app import load_config, train
    from ckconv.app.evaluation import load_model
    from ckconv.models import CheckpointError as CoreCheckpointError
    from ckconv.models import load_checkpoint as core_load_checkpoint

    cfg = load_config("demo_digits", [*tiny, *_ONE_EPOCH])
    last = train(cfg).last_checkpoint
    contents = load_checkpoint(last)
    new_model, _, bundle = load_model(last)
    # what ckconv wrote before checkpoints carried a model spec
    old = {k: v for k, v in contents.items() if k != "model_spec"}
    atomic_torch_save(old, tmp_path / "old.ckpt")
    with pytest.raises(CoreCheckpointError, match="no model_spec inside"):
        core_load_checkpoint(tmp_path / "old.ckpt")
    old_model, _, _ = load_model(tmp_path / "old.ckpt")
    assert not old_model.training and not new_model.training
    want = new_model.state_dict()
    assert all(torch.equal(old_model.state_dict()[k], v) for k, v in want.items())
    x = torch.stack([bundle.datasets["test"][i][0] for i in range(4)])
    with torch.no_grad():
        torch.testing.assert_close(old_model(x), new_model(x), rtol=0, atol=0)


def test_export_and_plot_rebuild_a_trained_model_without_its_task(tiny, tmp_path, monkeypatch):
    """`ckconv export` and `ckconv plot kernels` take the model of a checkpoint `ckconv train`
    wrote from its model spec: they work with the task's data unreachable."""
    import ckconv.app.evaluation
    import ckconv.app.tasks
    from ckconv.app import load_config, train
    from ckconv.app.cli import main
    from ckconv.models import ModelSpec
    from ckconv.models import load_checkpoint as core_load_checkpoint

    cfg = load_config("demo_digits", [*tiny, *_ONE_EPOCH])
    last = train(cfg).last_checkpoint

    def unreachable(cfg):
        raise AssertionError("the task was built")

    for module in (ckconv.app.tasks, ckconv.app.evaluation):
        monkeypatch.setattr(module, "build_task", unreachable)
    out = tmp_path / "model.pt2"
    argv = ["export", "--checkpoint", str(last), "--format", "pt2", "--out", str(out)]
    assert main([*argv, "--raw-inputs"]) == 0
    program = torch.export.load(out).module()
    model = core_load_checkpoint(last)
    spec = ModelSpec.of(load_checkpoint(last))
    x = torch.randn(3, spec.kwargs["in_channels"], spec.kwargs["input_size"])
    with torch.no_grad():
        torch.testing.assert_close(program(x), model(x), rtol=1e-4, atol=1e-5)
    # the standardisation the checkpoint records goes in front, still without the data
    assert main(argv) == 0
    record = load_checkpoint(last)["ckconv"]["input_preprocessing"]
    assert record["kind"] == "affine"
    scale, shift = torch.tensor(record["scale"]), torch.tensor(record["shift"])
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(out).module()(x),
                                   model(x * scale[:, None] + shift[:, None]),
                                   rtol=1e-4, atol=1e-5)  # fmt: skip
    plots = tmp_path / "plots"
    assert main(["plot", "kernels", "--checkpoint", str(last), "--out", str(plots)]) == 0
    assert (plots / "kernels.png").read_bytes()[:4] == b"\x89PNG"
