"""Character-level Penn Treebank (Mikolov's ``ptb.char.{train,valid,test}.txt``).

Each line is a sentence written as characters separated by spaces, ``_`` marking word boundaries.
As in Bai et al. (2018) (followed by CKConv), every line contributes its characters and an
``<eos>`` token; the vocabulary (about 50 symbols) is numbered in order of first appearance,
training file first. Items are next-character prediction windows.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ckconv.data._common import (
    DataFileError,
    PathLike,
    check_split,
    find_dir,
    missing_files,
    read_text,
)

__all__ = ["EOS", "CharPTB", "build_vocab", "read_ptb_chars"]

#: End-of-sentence token appended to every PTB line.
EOS = "<eos>"
_FILES = {"train": "ptb.char.train.txt", "val": "ptb.char.valid.txt", "test": "ptb.char.test.txt"}


def read_ptb_chars(path: PathLike) -> list[str]:
    """The token stream of one file: each line's space-separated symbols followed by ``<eos>``."""
    path = Path(path)
    text = read_text(path, "PTB text")
    tokens: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        symbols = line.split()
        if not symbols:
            continue
        if any(len(s) != 1 for s in symbols):
            bad = next(s for s in symbols if len(s) != 1)
            raise DataFileError(
                path, f"expected single characters separated by spaces, got {bad!r}", lineno
            )
        tokens.extend(symbols)
        tokens.append(EOS)
    if not tokens:
        raise DataFileError(path, "no characters")
    return tokens


def build_vocab(*streams: list[str]) -> dict[str, int]:
    """Token -> id in order of first appearance over ``streams``."""
    vocab: dict[str, int] = {}
    for stream in streams:
        for tok in stream:
            if tok not in vocab:
                vocab[tok] = len(vocab)
    return vocab


class CharPTB(Dataset):
    """Char-level PTB as ``(x, y)`` windows: ``x`` int64 ``(seq_len,)`` token ids and ``y`` the
    same window shifted by one character (the targets). Windows start every ``stride`` tokens
    (default ``seq_len``: non-overlapping); feed ``x`` to an embedding layer.

    Looks in ``root``, ``root/ptb``, ``root/simple-examples/data`` and ``root/PTB``.
    """

    CANDIDATES = ("", "ptb", "simple-examples/data", "PTB")
    REQUIRED = tuple(_FILES.values())

    def __init__(
        self, root: PathLike, split: str = "train", *, seq_len: int = 400, stride: int | None = None
    ) -> None:
        check_split(split)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        stride = seq_len if stride is None else stride
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        directory = self.find(root)
        if directory is None:
            raise missing_files(
                "CharPTB",
                root,
                self.CANDIDATES,
                self.REQUIRED,
                "Download Mikolov's simple-examples.tgz and use its data/ptb.char.*.txt files.",
            )
        streams = {s: read_ptb_chars(directory / f) for s, f in _FILES.items()}
        self.vocab = build_vocab(streams["train"], streams["val"], streams["test"])
        self.tokens = torch.tensor([self.vocab[t] for t in streams[split]], dtype=torch.int64)
        if len(self.tokens) < seq_len + 1:
            raise ValueError(
                f"{directory / _FILES[split]}: {len(self.tokens)} tokens, need at least seq_len + 1 = {seq_len + 1}"
            )
        self.seq_len = seq_len
        self.stride = stride
        self.split = split
        self.num_windows = (len(self.tokens) - 1 - seq_len) // stride + 1

    @classmethod
    def find(cls, root: PathLike) -> Path | None:
        return find_dir(root, cls.CANDIDATES, cls.REQUIRED)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return self.num_windows

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_windows:
            if -self.num_windows <= index < 0:
                index += self.num_windows
            else:
                raise IndexError(f"index {index} out of range for {self.num_windows} windows")
        start = index * self.stride
        window = self.tokens[start : start + self.seq_len + 1]
        return window[:-1], window[1:]
