"""Two-process torchrun training (gloo on 127.0.0.1) equals one process with the same global
batch: the batch is split over the processes, gradients are averaged, BatchNorm statistics are
synchronised, and validation / test metrics count every item once."""

import socket
import subprocess
import sys

import pytest
import torch

from ckconv.app.checkpoint import load_checkpoint
from ckconv.app.csvlog import read_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(cmd, env):
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def _val_rows(run):
    return [(r["step"], float(r["val/acc"]), float(r["val/loss"]))
            for r in read_metrics(run / "metrics.csv") if r.get("val/acc")]  # fmt: skip


@pytest.mark.parametrize("sync_batchnorm", [True])
def test_torchrun_two_processes_match_one_process(
    tiny, tmp_path, ckconv_command, subprocess_env, run_folder, sync_batchnorm
):
    # No dropout: every process draws its own random numbers (seed + rank). SGD: Adam's
    # normalisation would magnify float rounding noise in the directions BatchNorm makes the loss
    # flat in (a bias before a BatchNorm), and the comparison would measure that noise.
    args = [*tiny, "model.dropout=0", "optim.optimizer=sgd", "optim.lr=0.1",
            "trainer.max_epochs=2", f"trainer.sync_batchnorm={str(sync_batchnorm).lower()}"]  # fmt: skip
    _train([*ckconv_command, "train", "-c", "demo_digits", *args, "trainer.version=one"],
           subprocess_env)  # fmt: skip
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
                "-m", "ckconv.app"]  # fmt: skip
    done = _train([*launcher, "train", "-c", "demo_digits", *args, "trainer.version=two"],
                  subprocess_env)  # fmt: skip
    # rank 0 reports, the other rank is quiet; one line per epoch, no third-party warnings
    assert done.stdout.count("run folder:") == done.stdout.count("training in") == 1
    assert done.stdout.count("\nepoch ") == 2 and "Warning" not in done.stderr, done.stderr

    one, two = run_folder(tmp_path, version="one"), run_folder(tmp_path, version="two")
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir()) == ["one", "two"]
    a = load_checkpoint(one / "checkpoints" / "last.ckpt")
    b = load_checkpoint(two / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 12  # same number of (global) steps
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-3, atol=2e-4, msg=key)
    for (s1, acc1, loss1), (s2, acc2, loss2) in zip(_val_rows(one), _val_rows(two), strict=True):
        assert s1 == s2 and acc1 == pytest.approx(acc2, abs=1e-6)
        assert loss1 == pytest.approx(loss2, rel=1e-4)
    assert len(b["ckconv"]["processes"]) == 2  # per-process random states for an exact resume
