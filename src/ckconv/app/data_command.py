"""``ckconv data list``: every task, its input shape and whether its data is on this machine;
``ckconv data synth-speech``: a Speech Commands-layout set spoken by espeak-ng."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ckconv.data.registry import TaskRow, default_root, list_tasks

__all__ = ["format_task_table", "main_data_list", "main_synth_speech"]


#: the "found" column: where the data is (``TaskRow.source``)
_FOUND = {
    "root": "yes (root)",
    "installed": "yes (installed copy)",
    "generated": "generated",
    "task.path": "your files",
    "": "no",
}


def format_task_table(rows: list[TaskRow]) -> str:
    """Aligned text table of :func:`list_tasks` rows."""
    header = ("task", "shape", "classes", "found", "path")
    body = [
        (
            r.name,
            "x".join(str(s) for s in r.shape) or "(data)",
            "(data)" if not r.shape else "regression" if r.classes is None else str(r.classes),
            _FOUND[r.source],
            r.path,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(v.ljust(w) for v, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)).rstrip() for b in body]
    return "\n".join(lines)


def main_data_list(argv: list[str] | None = None) -> int:
    """``ckconv data list [--root DIR]``: print every task, its shape and whether its files exist."""
    parser = argparse.ArgumentParser(prog="ckconv data list", description=main_data_list.__doc__)
    parser.add_argument(
        "--root", type=Path, default=None, help="data directory (default: $CKCONV_DATA or ./data)"
    )
    args = parser.parse_args(argv)
    rows = list_tasks(args.root)
    print(format_task_table(rows))
    count = {key: sum(r.source == key for r in rows) for key in _FOUND}
    print(
        f"\nroot {args.root or default_root()}: {count['root']} tasks have their files there, "
        f"{count['installed']} read a copy inside an installed package (aeon, scikit-learn), "
        f"{count['generated']} are generated, {count['task.path']} read your files "
        f"(task.path=...), {count['']} have no data here"
    )
    return 0


def main_synth_speech(argv: list[str] | None = None) -> int:
    """``ckconv data synth-speech --out DIR``: write a synthetic Speech Commands v0.02-layout set
    (word folders of 1 s, 16 kHz, 16-bit mono WAVs and the list files), spoken by espeak-ng
    and resampled by sox; see :mod:`ckconv.data.speech_synth`."""
    from ckconv.data.speech import KIDGER_WORDS
    from ckconv.data.speech_synth import NOISE_COLORS, SpeechSynthError, synthesize_speech

    parser = argparse.ArgumentParser(
        prog="ckconv data synth-speech", description=main_synth_speech.__doc__
    )
    parser.add_argument("--out", type=Path, required=True, help="new (or empty) folder to write")
    parser.add_argument("--speakers", type=int, default=25, help="synthetic speakers (default 25)")
    parser.add_argument(
        "--utterances", type=int, default=1, help="takes of each word per speaker (default 1)"
    )
    parser.add_argument(
        "--words",
        default=",".join(KIDGER_WORDS),
        help="comma-separated words (default: the 10 words of the papers)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--snr", type=float, default=None, metavar="DB", help="add noise at this SNR in dB"
    )
    parser.add_argument("--noise", choices=NOISE_COLORS, default="white", help="noise colour")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--testing-fraction", type=float, default=0.1)
    args = parser.parse_args(argv)
    words = tuple(w.strip() for w in args.words.split(","))
    start = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if sys.stdout.isatty() and (done == total or now - last[0] > 1.0):
            last[0] = now
            print(f"\r{done}/{total} clips", end="" if done < total else "\n", flush=True)

    try:
        summary = synthesize_speech(
            args.out,
            num_speakers=args.speakers,
            utterances=args.utterances,
            words=words,
            seed=args.seed,
            snr_db=args.snr,
            noise_color=args.noise,
            validation_fraction=args.validation_fraction,
            testing_fraction=args.testing_fraction,
            progress=progress,
        )
    except (SpeechSynthError, ValueError, FileExistsError) as err:
        print(f"ckconv data synth-speech: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.num_clips} clips ({len(summary.words)} words x "
        f"{len(summary.speakers)} speakers x {args.utterances}) to {summary.root} in "
        f"{time.perf_counter() - start:.1f} s; validation speakers "
        f"{len(summary.validation)}, testing speakers {len(summary.testing)}"
    )
    return 0
