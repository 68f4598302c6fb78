"""The GPU and whole-model benchmarks run (tiny shapes, on the CPU) so they cannot rot while
no GPU is at hand.  Nothing here reads a time: the scripts check that every candidate computes
the same numbers as the textbook formula / the reference CCNN before they time anything, and
these tests check that they finished and printed a full table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_bench_gpu_smoke_on_the_cpu():
    out = _run("bench_gpu.py", "--device", "cpu", "--quick")
    rows = [line for line in out.splitlines() if line.startswith(("2x", "CCNN step"))]
    # 1D and 2D, two dtypes, fwd and fwd+bwd; two CCNN steps in two precisions
    assert len(rows) == 2 * 2 * 2 + 2 * 2
    for line in rows:
        assert float(line.split()[-5]) > 0  # base / ckconv time ratio (columns from the right)
    assert sum("bf16" in r for r in rows) == len(rows) // 2


def test_bench_model_smoke():
    out = _run("bench_model.py", "--quick", "--rounds", "1")
    rows = [line for line in out.splitlines() if line.startswith(("sCIFAR10", "SC_raw"))]
    assert len(rows) == 4  # two tasks, two mask widths
    for line in rows:
        ratio = float(line.split()[4])
        assert ratio > 0
