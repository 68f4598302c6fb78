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
    with pytest.raises(CheckpointError, match="truncated.ckpt: not a loadable checkpoint"):
        load_checkpoint(truncated)
    (tmp_path / "text.ckpt").write_text("not a checkpoint\n")
    for name in ("truncated.ckpt", "text.ckpt"):
        assert main(["eval", "--checkpoint", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ckconv: {tmp_path / name}: not a loadable checkpoint")
        assert "weights_only` set to `False`" not in err  # no advice to load unsafely
