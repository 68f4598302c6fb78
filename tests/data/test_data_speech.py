import math
import wave

import numpy as np
import pytest
import scipy.fft
import torch

from ckconv.data.speech import (
    KIDGER_WORDS,
    MFCC,
    SpeechCommands,
    dct_matrix,
    mel_filterbank,
    read_wav,
)
from ckconv.data.transforms import Subsample


def test_read_wav_scales_int16(tmp_path, fab):
    samples = np.array([0, 1, -1, 32767, -32768, 1000], dtype=np.int16)
    p = fab.wav(tmp_path / "a.wav", samples)
    audio, rate = read_wav(p)
    assert rate == 16000 and audio.dtype == torch.float32
    assert audio.tolist() == (samples.astype(np.float64) / 32768).astype(np.float32).tolist()


def test_read_wav_errors_name_the_file(tmp_path, fab):
    p = tmp_path / "stereo.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00" * 40)
    with pytest.raises(ValueError, match=r"stereo\.wav: expected mono"):
        read_wav(p)
    q = fab.wav(tmp_path / "rate.wav", np.zeros(10), rate=8000)
    with pytest.raises(ValueError, match=r"rate\.wav: expected 16000 Hz, got 8000"):
        read_wav(q)
    assert read_wav(q, expected_rate=None)[1] == 8000
    full = fab.wav(tmp_path / "full.wav", np.arange(100)).read_bytes()
    t = tmp_path / "trunc.wav"
    t.write_bytes(full[:-50])
    with pytest.raises(ValueError, match=r"trunc\.wav: truncated WAV data"):
        read_wav(t)
    j = tmp_path / "junk.wav"
    j.write_bytes(b"not a riff file at all")
    with pytest.raises(ValueError, match=r"junk\.wav: not a readable WAV"):
        read_wav(j)


def _mfcc_oracle(x: np.ndarray, sr=16000, n_fft=200, hop=100, n_mels=64, n_mfcc=20) -> np.ndarray:
    """Independent float64 MFCC: explicit frames + DFT, per-filter triangles, scipy's DCT-II."""
    pad = n_fft // 2
    xp = np.pad(x, pad, mode="reflect")
    n_frames = 1 + len(x) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    dft = np.exp(-2j * np.pi * k * n / n_fft)
    power = np.stack(
        [np.abs(dft @ (xp[t * hop : t * hop + n_fft] * window)) ** 2 for t in range(n_frames)],
        axis=1,
    )
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = [inv(mel(0) + (mel(sr / 2) - mel(0)) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    freqs = np.linspace(0, sr // 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for j, f in enumerate(freqs):
            if lo <= f <= mid:
                fb[m, j] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                fb[m, j] = (hi - f) / (hi - mid)
    logmel = np.log(fb @ power + 1e-6)
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=0)[:n_mfcc]


def test_mfcc_matches_float64_oracle():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(16000)
    out = MFCC()(torch.from_numpy(x.astype(np.float32)))
    assert out.shape == (20, 161) and out.dtype == torch.float32
    ref = _mfcc_oracle(x.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-3)
    batch = MFCC()(torch.from_numpy(np.stack([x, 2 * x]).astype(np.float32)))
    torch.testing.assert_close(batch[0], out)


def test_dct_and_filterbank_pieces():
    d = dct_matrix(20, 64)
    assert d.shape == (64, 20)
    torch.testing.assert_close(d.T @ d, torch.eye(20, dtype=torch.float64))  # orthonormal columns
    v = np.random.default_rng(1).standard_normal(64)
    np.testing.assert_allclose(v @ d.numpy(), scipy.fft.dct(v, norm="ortho")[:20], atol=1e-12)
    fb = mel_filterbank(101, 64, 16000)
    assert fb.shape == (101, 64) and (fb >= 0).all() and fb.max() <= 1
    # with n_fft=200 the 80 Hz bins are coarser than the lowest mel filters: a few of those catch
    # no bin (torchaudio warns about the same filters); all others are non-empty
    empty = torch.nonzero(fb.sum(dim=0) == 0).flatten()
    assert 0 < len(empty) and empty.max() < 10 and (fb.sum(dim=0)[10:] > 0).all()


def _speech_root(tmp_path, fab, per_word=7):
    rng = np.random.default_rng(0)
    root = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    for w, word in enumerate(KIDGER_WORDS):
        for k in range(per_word):
            freq = 200 + 50 * w
            t = np.arange(16000) / 16000
            sig = 8000 * np.sin(2 * np.pi * freq * t) + 500 * rng.standard_normal(16000)
            fab.wav(root / word / f"spk{k:02d}_nohash_0.wav", sig.astype(np.int16))
        fab.wav(
            root / word / "short_nohash_0.wav", np.zeros(12000, dtype=np.int16)
        )  # not 16000: dropped
    fab.wav(
        root / "marvin" / "x_nohash_0.wav", np.zeros(16000, dtype=np.int16)
    )  # not one of the 10 words
    return root


def test_speech_commands_subset_split_and_features(tmp_path, fab):
    root = _speech_root(tmp_path, fab)
    splits = {
        s: SpeechCommands(tmp_path, s, features="raw", normalize=False)
        for s in ("train", "val", "test")
    }
    assert [len(splits[s]) for s in ("train", "val", "test")] == [50, 10, 10]
    names = [f.name for s in splits.values() for f in s.files]
    assert (
        "short_nohash_0.wav" not in names
        and len(set(map(str, (f for s in splits.values() for f in s.files)))) == 70
    )
    x, y = splits["test"][0]
    f = splits["test"].files[0]
    assert x.shape == (1, 16000) and int(y) == KIDGER_WORDS.index(f.parent.name)
    torch.testing.assert_close(x[0], read_wav(f)[0])
    for s in splits.values():  # stratified: one clip of every word in val and test
        assert sorted(s.targets.tolist()) == sorted(list(range(10)) * (len(s) // 10))
    mfcc = SpeechCommands(root, "val", features="mfcc")
    xm, _ = mfcc[0]
    assert xm.shape == (20, 161)
    train = SpeechCommands(root, "train", features="mfcc")
    feats = torch.stack([train[i][0] for i in range(len(train))]).double()
    assert feats.mean(dim=(0, 2)).abs().max() < 1e-3
    assert (feats.std(dim=(0, 2), unbiased=False) - 1).abs().max() < 1e-3
    half = SpeechCommands(root, "test", features="raw", transform=Subsample(2))
    assert half[0][0].shape == (1, 8000)


def test_speech_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SpeechCommands: expected files \[yes, no, up"):
        SpeechCommands(tmp_path)
    # the message also says how to write the offline stand-in at that very root
    with pytest.raises(FileNotFoundError) as info:
        SpeechCommands(tmp_path / "sc")
    assert f"ckconv data synth-speech --out {tmp_path / 'sc'}" in str(info.value)
