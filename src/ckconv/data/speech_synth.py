"""A synthetic Speech Commands set, spoken by ``espeak-ng`` and resampled by ``sox``.

The real Speech Commands v0.02 archive cannot be downloaded everywhere. :func:`synthesize_speech`
writes a stand-in in the same layout, so the same loader (:class:`ckconv.data.speech.SpeechCommands`)
and the same configs run on it::

    OUT/
      yes/<speaker>_nohash_<n>.wav      16 kHz, mono, 16-bit PCM, exactly 16000 samples
      no/...                            one folder per word
      validation_list.txt               word/<speaker>_nohash_<n>.wav per line
      testing_list.txt
      synth_speakers.tsv                who each speaker is (voice, variant, speed, pitch, ...)

Speakers
    A speaker is an ``espeak-ng`` voice (an English accent: ``en-us``, ``en-gb-scotland``, ...)
    with a voice variant (``m1`` .. ``m7``, ``f1`` .. ``f5``), a speaking rate (words per minute)
    and a pitch (0-99), all drawn from ``seed``. Its id is 8 hexadecimal digits, like the real
    set's. Each of its ``utterances`` takes of a word jitters rate and pitch a little, starts at a
    random offset in the second, has a random loudness and, with ``snr_db``, white, pink or brown
    noise at that signal-to-noise ratio.

Clips
    ``espeak-ng --stdout`` (22.05 kHz WAV) -> ``sox`` to 16 kHz mono float samples (no dither)
    -> leading and trailing silence cut (samples below 1 % of the peak) -> trimmed to at most one
    second -> placed at the offset in 16000 zeros -> scaled to the loudness -> noise added ->
    rounded to int16. Only ``sox``'s resampler and ``espeak-ng`` run outside numpy; the random
    choices come from ``numpy.random.default_rng(seed)``, so the same seed and the same program
    versions give the same files, byte for byte. ``sox`` runs with ``-D -R``: no automatic
    dither, and its own random numbers (which it seeds from the clock otherwise) repeatable; its
    float output gets no dither anyway, but an integer output would, differently on every run.
    ``espeak-ng``'s breathy variants (``f2``, ``f3``, ``f5``) add noise from the C library's
    unseeded ``rand()``, the same sequence in every new process (espeak-ng 1.51 and sox 14.4.2:
    300 runs of each of the 9 clips of a 3-speaker set, 3 at a time on a loaded machine, gave
    one output per clip).

Splits (speaker-disjoint, as in the real set)
    The real set puts a file in the validation or testing list by a hash of its speaker id
    (SHA-1 of the name before ``_nohash_``, taken modulo ``2**27`` and scaled to a percentage).
    Here the speakers are ordered by that same percentage and the first ``validation_fraction``
    of them (at least one when there are three or more speakers) go to validation, the next
    ``testing_fraction`` to testing: the same scheme, but with exact proportions, which the
    plain thresholds would not give for a few dozen speakers. Note that the 10-word loader of
    Kidger et al. (and so CKConv and CCNN) ignores the list files and splits clips 70/15/15 itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ckconv.data._common import PathLike
from ckconv.data.speech import KIDGER_WORDS, write_wav

__all__ = [
    "NOISE_COLORS",
    "VARIANTS",
    "VOICES",
    "SpeechSynthError",
    "SynthSpeaker",
    "SynthSummary",
    "check_programs",
    "clip_from_samples",
    "colored_noise",
    "draw_speakers",
    "hash_percentage",
    "speak",
    "split_speakers",
    "synthesize_speech",
]

#: espeak-ng's English voices (no MBROLA voices: those need extra Debian packages).
VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
#: espeak-ng voice variants (``voice+variant``): male m1-m7, female f1-f5.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
#: Background noise colours: flat, 1/f and 1/f^2 power spectra.
NOISE_COLORS = ("white", "pink", "brown")

#: The Debian packages that provide the programs.
PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}

SAMPLE_RATE = 16000
_MAX_HASH = 2**27 - 1  # the real set's MAX_NUM_WAVS_PER_CLASS


class SpeechSynthError(RuntimeError):
    """A synthesis program is missing or failed."""


class MissingProgramError(SpeechSynthError):
    """A synthesis program is not installed (the message names its Debian package)."""


@dataclass(frozen=True)
class SynthSpeaker:
    """One synthetic speaker: an espeak-ng voice and variant, rate (wpm) and pitch (0-99)."""

    id: str
    voice: str
    variant: str
    speed: int
    pitch: int


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize_speech` wrote."""

    root: Path
    words: tuple[str, ...]
    speakers: tuple[SynthSpeaker, ...]
    num_clips: int
    validation: tuple[str, ...]  # speaker ids
    testing: tuple[str, ...]


def check_programs(programs: Sequence[str] = ("espeak-ng", "sox")) -> dict[str, str]:
    """Paths of the programs; raises :class:`MissingProgramError` naming the Debian packages of
    the missing ones."""
    found = {p: shutil.which(p) for p in programs}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        pkgs = " ".join(PACKAGES.get(p, p) for p in missing)
        raise MissingProgramError(
            f"synthesising speech needs the programs {', '.join(missing)}, not found on PATH; "
            f"install them, e.g. on Debian/Ubuntu: sudo apt-get install {pkgs}"
        )
    return {p: str(path) for p, path in found.items()}


def hash_percentage(speaker: str) -> float:
    """The real set's split hash of a speaker id, a percentage in [0, 100]."""
    digest = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    return (digest % (_MAX_HASH + 1)) * (100.0 / _MAX_HASH)


def split_speakers(
    speakers: Sequence[str], validation_fraction: float = 0.1, testing_fraction: float = 0.1
) -> dict[str, list[str]]:
    """Speaker-disjoint ``{"train", "validation", "testing"}`` lists (see the module docstring)."""
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("testing_fraction", testing_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if validation_fraction + testing_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + testing_fraction must be below 1, got "
            f"{validation_fraction} + {testing_fraction}"
        )
    ordered = sorted(speakers, key=lambda s: (hash_percentage(s), s))
    n = len(ordered)

    def count(fraction: float) -> int:
        k = round(fraction * n)
        return max(k, 1) if (fraction > 0 and n >= 3) else k

    n_val = count(validation_fraction)
    n_test = count(testing_fraction)
    return {
        "validation": ordered[:n_val],
        "testing": ordered[n_val : n_val + n_test],
        "train": ordered[n_val + n_test :],
    }


def draw_speakers(num_speakers: int, seed: int = 0) -> list[SynthSpeaker]:
    """``num_speakers`` distinct speakers drawn from ``seed``."""
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be at least 1, got {num_speakers}")
    rng = np.random.default_rng([seed, 0])
    speakers: list[SynthSpeaker] = []
    ids: set[str] = set()
    combos = [(v, var) for v in VOICES for var in VARIANTS]
    order = rng.permutation(len(combos))
    for i in range(num_speakers):
        voice, variant = combos[int(order[i % len(combos)])]
        sid = f"{int(rng.integers(2**32)):08x}"
        while sid in ids:
            sid = f"{int(rng.integers(2**32)):08x}"
        ids.add(sid)
        speakers.append(
            SynthSpeaker(
                sid, voice, variant, int(rng.integers(120, 221)), int(rng.integers(20, 81))
            )
        )
    return speakers


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of ``n`` samples: ``white`` (flat), ``pink`` (1/f power), ``brown``
    (1/f^2 power), shaped in the frequency domain."""
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {NOISE_COLORS}, got {color!r}")
    white = rng.standard_normal(n)
    if color != "white":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if color == "pink" else 1.0)
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    return white / np.sqrt(np.mean(white**2))


def clip_from_samples(
    samples: np.ndarray,
    *,
    offset: float,
    peak: float,
    snr_db: float | None = None,
    noise: np.ndarray | None = None,
    length: int = SAMPLE_RATE,
    silence: float = 0.01,
) -> np.ndarray:
    """One ``length``-sample int16 clip from float speech ``samples`` (see the module docstring).

    Args:
        samples: the spoken word at 16 kHz, any scale.
        offset: where the word starts, as a fraction in [0, 1] of the free room in the clip.
        peak: the word's peak amplitude as a fraction of full scale (0, 1].
        snr_db: signal-to-noise ratio of the added ``noise`` (unit RMS, ``length`` samples).
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    if not 0.0 < peak <= 1.0:
        raise ValueError(f"peak must be in (0, 1], got {peak}")
    if not 0.0 <= offset <= 1.0:
        raise ValueError(f"offset must be in [0, 1], got {offset}")
    top = np.max(np.abs(x)) if x.size else 0.0
    if top > 0:
        loud = np.nonzero(np.abs(x) >= silence * top)[0]
        x = x[loud[0] : loud[-1] + 1] / top
    x = x[:length]
    start = round(offset * (length - len(x)))
    out = np.zeros(length)
    out[start : start + len(x)] = peak * x
    if snr_db is not None:
        if noise is None or len(noise) != length:
            raise ValueError(f"snr_db needs noise of {length} samples")
        speech_rms = np.sqrt(np.mean(out[start : start + len(x)] ** 2)) if len(x) else 0.0
        out = out + noise * speech_rms * 10.0 ** (-snr_db / 20.0)
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


def _run(cmd: list[str], data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    except FileNotFoundError:
        check_programs([cmd[0]])
        raise
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise SpeechSynthError(f"{' '.join(cmd)} failed (exit {done.returncode}): {err}")
    return done.stdout


def speak(
    word: str, voice: str, speed: int, pitch: int, programs: dict[str, str] | None = None
) -> np.ndarray:
    """``word`` spoken by espeak-ng (``voice`` may carry ``+variant``), as float32 samples at
    16 kHz (sox's resampler)."""
    programs = programs or check_programs()
    wav = _run(
        [programs["espeak-ng"], "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch), word]
    )
    sox = [programs["sox"], "-D", "-R"]  # no dither, repeatable random numbers
    raw = _run([*sox, "-t", "wav", "-", "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-"], wav)
    return np.frombuffer(raw, dtype="<f4").copy()


def synthesize_speech(
    out: PathLike,
    *,
    num_speakers: int = 25,
    utterances: int = 1,
    words: Sequence[str] = KIDGER_WORDS,
    seed: int = 0,
    snr_db: float | None = None,
    noise_color: str = "white",
    validation_fraction: float = 0.1,
    testing_fraction: float = 0.1,
    progress=None,
) -> SynthSummary:
    """Write a Speech Commands v0.02-style set to ``out`` (see the module docstring).

    Args:
        out: the folder to create (it may exist if it is empty).
        num_speakers: synthetic speakers; each says every word ``utterances`` times.
        words: the word folders (default: the 10 words of Kidger et al.).
        seed: every random choice (speakers, jitter, offsets, loudness, noise).
        snr_db: add ``noise_color`` noise at this signal-to-noise ratio (dB); None: no noise.
        progress: optional callable ``progress(done, total)`` called after each clip.

    Raises:
        SpeechSynthError: espeak-ng or sox missing (naming the Debian packages) or failing.
    """
    if utterances < 1:
        raise ValueError(f"utterances must be at least 1, got {utterances}")
    if noise_color not in NOISE_COLORS:
        raise ValueError(f"noise_color must be one of {NOISE_COLORS}, got {noise_color!r}")
    words = tuple(words)
    if not words or len(set(words)) != len(words):
        raise ValueError(f"words must be distinct and non-empty, got {list(words)}")
    speakers = draw_speakers(num_speakers, seed)
    splits = split_speakers([s.id for s in speakers], validation_fraction, testing_fraction)
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"out: {root} exists and is not an empty folder")
    programs = check_programs()
    rng = np.random.default_rng([seed, 1])
    total = len(words) * len(speakers) * utterances
    done = 0
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    where = {sid: name for name, ids in splits.items() for sid in ids}
    for word in words:
        for spk in speakers:
            for n in range(utterances):
                speed = int(np.clip(spk.speed + rng.integers(-15, 16), 80, 450))
                pitch = int(np.clip(spk.pitch + rng.integers(-8, 9), 0, 99))
                offset, peak = float(rng.uniform()), float(rng.uniform(0.3, 0.9))
                noise = colored_noise(SAMPLE_RATE, noise_color, rng) if snr_db is not None else None
                audio = speak(word, f"{spk.voice}+{spk.variant}", speed, pitch, programs)
                clip = clip_from_samples(
                    audio, offset=offset, peak=peak, snr_db=snr_db, noise=noise
                )
                name = f"{word}/{spk.id}_nohash_{n}.wav"
                write_wav(root / name, clip, SAMPLE_RATE)
                if where[spk.id] in lists:
                    lists[where[spk.id]].append(name)
                done += 1
                if progress is not None:
                    progress(done, total)
    for split, names in lists.items():
        (root / f"{split}_list.txt").write_text("".join(f"{x}\n" for x in sorted(names)))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow([*asdict(speakers[0]).keys(), "split"])
    for spk in speakers:
        writer.writerow([*asdict(spk).values(), where[spk.id]])
    (root / "synth_speakers.tsv").write_text(buf.getvalue())
    return SynthSummary(
        root,
        words,
        tuple(speakers),
        total,
        tuple(splits["validation"]),
        tuple(splits["testing"]),
    )
