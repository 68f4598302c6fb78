"""SIGKILL a `ckconv train` process mid-epoch, `--resume` it, and end with the same weights and
metrics as an uninterrupted run with the same seed (deterministic CPU)."""

import json
import os
import signal
import subprocess
import time

import torch

from ckconv.app.checkpoint import load_checkpoint
from ckconv.app.csvlog import read_metrics

STEPS_PER_EPOCH = 20


def test_sigkill_mid_epoch_then_resume_matches_the_uninterrupted_run(
    tiny, tmp_path, ckconv_command, subprocess_env, run_folder
):
    args = [*tiny, "trainer.max_epochs=3", f"trainer.limit_train_batches={STEPS_PER_EPOCH}",
            "trainer.checkpoint_every_n_steps=3"]  # fmt: skip
    train = [*ckconv_command, "train", "-c", "demo_digits", *args]
    full = subprocess.run([*train, "trainer.version=full"], env=subprocess_env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert full.returncode == 0, full.stderr[-3000:]

    run = tmp_path / "runs" / "tiny" / "killed"
    last = run / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen([*train, "trainer.version=killed"], env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not last.exists():
            assert proc.poll() is None, "the run ended before it wrote a checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGSTOP)  # freeze it where it is, then kill it there
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists()  # it really did not finish
    step = load_checkpoint(last)["global_step"]
    assert 0 < step < 3 * STEPS_PER_EPOCH and step % STEPS_PER_EPOCH != 0  # a mid-epoch state

    resumed = subprocess.run([*ckconv_command, "train", "--resume", str(run)],
                             env=subprocess_env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    ref = run_folder(tmp_path, version="full")
    a = load_checkpoint(ref / "checkpoints" / "last.ckpt")
    b = load_checkpoint(last)
    assert a["global_step"] == b["global_step"] == 3 * STEPS_PER_EPOCH
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
    assert read_metrics(ref / "metrics.csv") == read_metrics(run / "metrics.csv")
    summary = [json.loads((r / "summary.json").read_text())["metrics"] for r in (ref, run)]
    assert summary[0] == summary[1]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
