"""Timing and memory helpers shared by the benchmark scripts (not part of the library).

Timing: candidates run interleaved (one call of each per round, same process), so load from
other processes hits them alike; we report the median time of each and, for ratios, the
median of the per-round ratios.  ``set_clock("cpu")`` times with the process's CPU time
instead of the wall clock: with one thread (``--threads 1``) that leaves out the time the
process waits for a core on a busy machine (page faults and all our own work still count),
which makes runs on a shared machine far more repeatable.

Memory: ``peak_bytes`` runs a function under ``torch.profiler`` with ``profile_memory=True``
and reads the CPU allocator's running "Total Allocated" counter from the trace.  That counter
starts at zero when profiling starts, so the peak is the largest amount of memory allocated
*during* the call and not yet freed at that moment: outputs, tensors saved for backward,
gradients and temporaries -- not the inputs, weights and incoming gradient that existed
before.  Free old gradients *before* calling it: memory allocated before the measurement and
freed during it would be subtracted from the peak.  It covers every allocation made through PyTorch's CPU allocator (all tensors).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch

_CLOCK = time.perf_counter


def set_clock(name: str) -> None:
    """``"wall"`` (``time.perf_counter``, default) or ``"cpu"`` (``time.process_time``)."""
    global _CLOCK
    _CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}[name]


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of every function, ``rounds`` times, one call of each per round."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            gc.collect()
            t = _CLOCK()
            f()
            times[k].append(_CLOCK() - t)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of ``time[slow] / time[fast]`` (> 1: ``fast`` is faster)."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (and not yet freed) during ``fn()``; see the module docstring."""
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
        del result
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    mem = sorted(
        (e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0),
        key=lambda e: e["ts"],
    )
    if not mem:
        return 0
    # The allocator's counter persists across profiling sessions (and misses frees made while
    # not profiling), so measure from the value just before the first allocation of this run.
    base = int(mem[0]["args"]["Total Allocated"]) - int(mem[0]["args"]["Bytes"])
    return max(int(e["args"]["Total Allocated"]) for e in mem) - base


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}"


def set_threads(threads: int | None) -> int:
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def add_timing_args(parser, rounds: int | None = None) -> None:
    """The ``--clock``, ``--threads`` and ``--rounds`` options every timing script takes."""
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time with process CPU time (use with --threads 1 on a shared machine)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=rounds, help="timing rounds per table")


def apply_timing_args(args) -> int:
    """Set the thread count and the clock from :func:`add_timing_args`'s options; returns the
    thread count in use."""
    threads = set_threads(args.threads)
    set_clock(args.clock)
    return threads


def synchronize(device: torch.device | str) -> None:
    """Wait for ``device``'s queued work (a no-op on the CPU): call around timed GPU code.
    The one helper for every benchmark (torch without ``torch.accelerator``: the device
    module's own ``synchronize``, e.g. ``torch.cuda.synchronize``)."""
    device = torch.device(device)
    if device.type == "cpu":
        return
    if hasattr(torch, "accelerator"):
        torch.accelerator.synchronize(device)
    else:
        getattr(torch, device.type).synchronize(device)


def device_peak_bytes(fn: Callable[[], object], device: torch.device | str) -> int:
    """Peak bytes allocated during ``fn()`` on ``device``: ``torch.cuda.max_memory_allocated``
    above what was allocated before (CUDA), :func:`peak_bytes` (CPU)."""
    device = torch.device(device)
    if device.type == "cpu":
        return peak_bytes(fn)
    if device.type != "cuda":
        return -1  # no peak counter on this device kind
    gc.collect()
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    synchronize(device)
    del result
    return torch.cuda.max_memory_allocated(device) - before
