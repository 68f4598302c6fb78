"""Speech Commands v0.02: WAV reading (standard library ``wave``) and MFCC features in torch.

The task follows Kidger et al. (2020), as in CKConv and CCNN: the ten words
``yes no up down left right on off stop go``, only clips of exactly 16000 samples (34975 clips in
v0.02), a stratified 70/15/15 split, features either the raw waveform ``(1, 16000)`` (SC_raw) or
20 MFCCs ``(20, 161)`` (SC), each channel standardised with training-split statistics.

The MFCC matches ``torchaudio.transforms.MFCC(log_mels=True, n_mfcc=20, melkwargs=dict(n_fft=200,
n_mels=64))`` at 16 kHz without depending on torchaudio: centred STFT (reflect padding, periodic
Hann window of 200, hop 100) -> power spectrum -> 64 triangular HTK-mel filters over 0..8000 Hz ->
``log(mel + 1e-6)`` -> orthonormal DCT-II, first 20 coefficients.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_split,
    find_dir,
    missing_files,
    stratified_split,
)

__all__ = [
    "KIDGER_WORDS",
    "MFCC",
    "SpeechCommands",
    "dct_matrix",
    "mel_filterbank",
    "mfcc",
    "read_wav",
    "wav_num_frames",
    "write_wav",
]

#: The 10 Speech Commands words of the Kidger et al. subset, in label order.
KIDGER_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def _open_wav(path: Path):
    try:
        return wave.open(str(path), "rb")
    except (wave.Error, EOFError) as err:
        raise DataFileError(path, f"not a readable WAV file ({err})") from None


def wav_num_frames(path: PathLike) -> int:
    """Number of frames declared in a WAV header (reads the header only)."""
    path = Path(path)
    with _open_wav(path) as w:
        return w.getnframes()


def read_wav(path: PathLike, expected_rate: int | None = 16000) -> tuple[torch.Tensor, int]:
    """Read a 16-bit PCM mono WAV file; returns float32 samples in [-1, 1) (``int16 / 32768``)
    and the sample rate.

    Raises ``ValueError`` naming the file for another sample width, channel count, sample rate
    (when ``expected_rate`` is given) or a data chunk shorter than its header says.
    """
    path = Path(path)
    with _open_wav(path) as w:
        channels, width, rate, n = (
            w.getnchannels(),
            w.getsampwidth(),
            w.getframerate(),
            w.getnframes(),
        )
        if width != 2:
            raise DataFileError(path, f"expected 16-bit PCM, got {8 * width}-bit samples")
        if channels != 1:
            raise DataFileError(path, f"expected mono audio, got {channels} channels")
        if expected_rate is not None and rate != expected_rate:
            raise DataFileError(path, f"expected {expected_rate} Hz, got {rate} Hz")
        try:
            data = w.readframes(n)
        except (wave.Error, EOFError) as err:
            raise DataFileError(path, f"broken WAV data ({err})") from None
    if len(data) != 2 * n:
        raise DataFileError(
            path, f"truncated WAV data: header says {n} frames, file has {len(data) // 2}"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return torch.from_numpy(samples), rate


def write_wav(path: PathLike, samples, rate: int = 16000) -> Path:
    """Write int16 ``samples`` as a 16-bit PCM mono WAV file (the format :func:`read_wav` reads),
    creating the parent folders."""
    path = Path(path)
    data = np.asarray(samples)
    if data.dtype != np.int16 or data.ndim != 1:
        raise ValueError(
            f"samples: expected a 1D int16 array, got {data.ndim}D {data.dtype} "
            "(scale floats by 32767 and round first)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.astype("<i2").tobytes())
    return path


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular HTK-mel filters, unnormalised: ``(n_freqs, n_mels)`` float64.

    The STFT bins lie at ``linspace(0, sample_rate // 2, n_freqs)`` Hz; the ``n_mels + 2`` filter
    edges are equally spaced on the mel scale ``2595 log10(1 + f / 700)`` between ``f_min`` and
    ``f_max`` (default ``sample_rate / 2``); filter ``m`` rises from edge ``m`` to ``m + 1`` and falls
    to ``m + 2``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = np.linspace(0, sample_rate // 2, n_freqs)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges)
    slopes = edges[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling)))


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Orthonormal DCT-II as an ``(n_in, n_out)`` matrix (right-multiply row vectors), float64:
    ``y_k = s_k sum_n x_n cos(pi / n_in (n + 1/2) k)``, ``s_0 = sqrt(1/n_in)``, else
    ``sqrt(2/n_in)``."""
    n = np.arange(n_in)[None, :]
    k = np.arange(n_out)[:, None]
    basis = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] *= 1.0 / math.sqrt(2.0)
    return torch.from_numpy(basis.T.copy())


class MFCC:
    """MFCC features of 1D waveforms, computed with torch (see the module docstring).

    Shape:
        - Input: ``(L,)`` or ``(..., L)``.
        - Output: ``(..., n_mfcc, 1 + L // hop_length)``; 16000 samples -> ``(20, 161)``.

    Examples:
        >>> MFCC()(torch.zeros(16000)).shape
        torch.Size([20, 161])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mfcc: int = 20,
        n_fft: int = 200,
        n_mels: int = 64,
        hop_length: int | None = None,
        log_offset: float = 1e-6,
    ) -> None:
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
        self.sample_rate = sample_rate
        self.n_mfcc = n_mfcc
        self.n_fft = n_fft
        self.n_mels = n_mels
        self.hop_length = n_fft // 2 if hop_length is None else hop_length
        self.log_offset = log_offset
        self.window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        self.filters = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate)
        self.dct = dct_matrix(n_mfcc, n_mels)

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        x = waveform.reshape(-1, shape[-1]).to(torch.float64)
        spec = torch.stft(
            x,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().square()  # (B, n_freqs, frames)
        mel = torch.einsum("bft,fm->bmt", power, self.filters)
        logmel = torch.log(mel + self.log_offset)
        out = torch.einsum("bmt,mk->bkt", logmel, self.dct)
        dtype = waveform.dtype if waveform.is_floating_point() else torch.float32
        return out.reshape(*shape[:-1], self.n_mfcc, out.shape[-1]).to(dtype)

    def __repr__(self) -> str:
        return (
            f"MFCC(sample_rate={self.sample_rate}, n_mfcc={self.n_mfcc}, n_fft={self.n_fft}, "
            f"n_mels={self.n_mels}, hop_length={self.hop_length})"
        )


def mfcc(waveform: torch.Tensor, **kwargs) -> torch.Tensor:
    """Functional form of :class:`MFCC`."""
    return MFCC(**kwargs)(waveform)


_STATS_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


class SpeechCommands(Dataset):
    """Speech Commands v0.02, the 10-word subset of Kidger et al. (2020).

    Looks for the word folders (``<word>/<speaker>_nohash_<n>.wav``) in ``root``,
    ``root/speech_commands_v0.02``, ``root/SpeechCommands/speech_commands_v0.02`` (torchaudio's
    layout) and ``root/SpeechCommands``. Files are indexed in sorted order; only clips of exactly
    16000 samples are kept; the split is stratified 70/15/15 with ``seed``.

    Args:
        root: data directory.
        split: ``"train"``, ``"val"`` or ``"test"``.
        features: ``"mfcc"`` -> ``(20, 161)``; ``"raw"`` -> ``(1, 16000)``.
        normalize: standardise each channel with training-split mean / std (computed once per
            process and directory, from every training clip).
        transform: applied to ``x`` after normalisation (e.g. ``Subsample(2)`` for Speech-0.5x).
        words: the classes, in label order.
    """

    CANDIDATES = (
        "",
        "speech_commands_v0.02",
        "SpeechCommands/speech_commands_v0.02",
        "SpeechCommands",
    )
    num_classes = 10

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        features: str = "mfcc",
        normalize: bool = True,
        transform=None,
        words: tuple[str, ...] = KIDGER_WORDS,
        seed: int = 0,
        clip_length: int = 16000,
    ) -> None:
        check_split(split)
        if features not in ("mfcc", "raw"):
            raise ValueError(f"features must be 'mfcc' or 'raw', got {features!r}")
        directory = self.find(root, words)
        if directory is None:
            raise missing_files(
                "SpeechCommands",
                root,
                self.CANDIDATES,
                words,
                "Download speech_commands_v0.02.tar.gz (Warden 2018) and extract it there, or "
                "write a synthetic stand-in in its layout with `ckconv data synth-speech --out "
                f"{root}` (needs espeak-ng and sox).",
            )
        self.root = directory
        self.features = features
        self.words = tuple(words)
        self.clip_length = clip_length
        files, labels = self._index(directory, self.words, clip_length)
        parts = stratified_split(labels, (0.7, 0.15, 0.15), seed)
        idx = parts[("train", "val", "test").index(split)]
        self.files = [files[i] for i in idx]
        self.targets = torch.as_tensor(labels[idx], dtype=torch.int64)
        self.transform = transform
        self._mfcc = MFCC() if features == "mfcc" else None
        self.mean = self.std = None
        if normalize:
            key = (str(directory), features, self.words, seed, clip_length)
            if key not in _STATS_CACHE:
                from ckconv.data.transforms import channel_stats

                train_files = [files[i] for i in parts[0]]
                _STATS_CACHE[key] = channel_stats(self._features(f) for f in train_files)
            self.mean, self.std = _STATS_CACHE[key]

    @classmethod
    def find(cls, root: PathLike, words: tuple[str, ...] = KIDGER_WORDS) -> Path | None:
        return find_dir(root, cls.CANDIDATES, words)

    @staticmethod
    def _index(directory: Path, words, clip_length: int) -> tuple[list[Path], np.ndarray]:
        files: list[Path] = []
        labels: list[int] = []
        for label, word in enumerate(words):
            for f in sorted((directory / word).glob("*.wav")):
                if wav_num_frames(f) == clip_length:
                    files.append(f)
                    labels.append(label)
        if not files:
            raise FileNotFoundError(
                f"{directory}: no {clip_length}-sample WAV clips in the word folders {list(words)}"
            )
        return files, np.asarray(labels, dtype=np.int64)

    def _features(self, path: Path) -> torch.Tensor:
        audio, _ = read_wav(path)
        if audio.numel() != self.clip_length:
            raise DataFileError(path, f"expected {self.clip_length} samples, got {audio.numel()}")
        if self.features == "raw":
            return audio.unsqueeze(0)
        return self._mfcc(audio)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        x = self._features(self.files[index])
        if self.mean is not None:
            x = (x - self.mean[:, None]) / (self.std[:, None] + 1e-5)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]
