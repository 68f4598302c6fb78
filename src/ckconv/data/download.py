"""Downloading with checksum verification, and safe extraction of tar / zip archives.

Nothing here runs at import time; network access happens only inside :func:`download_url`
(standard-library ``urllib``, imported there). Archives are checked member by member before
anything is written: absolute paths, ``..`` components, links that leave the destination and
device files are refused with :class:`UnsafeArchiveError`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ckconv._checks import InputError
from ckconv.data._common import DataFileError, PathLike

__all__ = [
    "RESOURCES",
    "ChecksumError",
    "DownloadError",
    "Resource",
    "UnsafeArchiveError",
    "download_dataset",
    "download_mnist",
    "download_url",
    "extract_archive",
    "file_digest",
    "verify_checksum",
]


class ChecksumError(DataFileError):
    """A file's digest differs from the expected one."""


class DownloadError(InputError):
    """A download that could not be made (offline, blocked, server error); the message names
    the URL and the folder to put the file in by hand."""


class UnsafeArchiveError(DataFileError):
    """An archive member would be written outside the destination (or is not a plain file/dir)."""


def file_digest(path: PathLike, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: PathLike, expected: str, algorithm: str = "sha256") -> None:
    """Raise :class:`ChecksumError` (naming the file and both digests) on a mismatch."""
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumError(
            path,
            f"{algorithm} checksum mismatch: expected {expected}, got {actual} (a partial or "
            "different file: delete it and download again)",
        )


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    norm = name.replace("\\", "/")
    p = PurePosixPath(norm)
    if p.is_absolute() or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(archive, f"refusing member with absolute path {name!r}")
    if ".." in p.parts:
        raise UnsafeArchiveError(archive, f"refusing member {name!r} that escapes the destination")
    return p


def _inside(base: Path, target: Path) -> bool:
    base = base.resolve()
    target = target.resolve()
    return target == base or base in target.parents


def _check_tar(tf: tarfile.TarFile, archive: Path, dest: Path) -> list[tarfile.TarInfo]:
    members = tf.getmembers()
    for m in members:
        rel = _check_member_name(m.name, archive)
        if not _inside(dest, dest / rel):
            raise UnsafeArchiveError(archive, f"refusing member {m.name!r} outside {dest}")
        if m.issym() or m.islnk():
            link = PurePosixPath(m.linkname.replace("\\", "/"))
            if link.is_absolute():
                raise UnsafeArchiveError(archive, f"refusing link {m.name!r} -> {m.linkname!r}")
            target = (dest / rel).parent / link if m.issym() else dest / link
            if not _inside(dest, target):
                raise UnsafeArchiveError(
                    archive, f"refusing link {m.name!r} -> {m.linkname!r} that leaves {dest}"
                )
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(archive, f"refusing special member {m.name!r} (device/fifo)")
    return members


def extract_archive(archive: PathLike, dest: PathLike) -> list[Path]:
    """Extract a ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.zip`` archive
    into ``dest`` after checking every member; returns the extracted paths.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, is a link leaving
            ``dest`` or is a device / fifo. Nothing is extracted in that case.
        ValueError: the file is not a readable archive.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                rel = _check_member_name(info.filename, archive)
                if not _inside(dest, dest / rel):
                    raise UnsafeArchiveError(archive, f"refusing member {info.filename!r}")
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(archive, f"refusing symlink member {info.filename!r}")
            out = []
            for info in infos:
                out.append(Path(zf.extract(info, dest)))
            return out
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as err:
        raise DataFileError(archive, f"not a tar or zip archive ({err})") from None
    with tf:
        members = _check_tar(tf, archive, dest)
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members already checked
            tf.extractall(dest, members=members)
    return [dest / m.name for m in members]


def download_url(
    url: str,
    dest: PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to the file ``dest`` and verify it; an existing file that verifies is kept.

    The data is written to ``dest + ".part"`` and renamed only after the checksum matches, so an
    interrupted or corrupt download never looks complete.
    """
    if md5 is None and sha256 is None:
        raise ValueError(f"download_url({url!r}) needs an md5 or sha256 checksum to verify")
    dest = Path(dest)

    def check(path: Path) -> None:
        if sha256 is not None:
            verify_checksum(path, sha256, "sha256")
        if md5 is not None:
            verify_checksum(path, md5, "md5")

    if dest.exists():
        check(dest)
        return dest
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f)
    except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise DownloadError(
            f"cannot download {url} ({reason}); without network, fetch it elsewhere and put it "
            f"in {dest.parent} as {dest.name}"
        ) from None
    try:
        check(part)
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


@dataclass(frozen=True)
class Resource:
    """One downloadable file: where from, its name on disk, its md5, and whether to extract it."""

    url: str
    filename: str
    md5: str
    extract: bool = True


_MNIST_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: Files of each downloadable dataset: URL, file name and checksum (verified before use).
RESOURCES: dict[str, tuple[Resource, ...]] = {
    "mnist": (
        Resource(
            _MNIST_BASE + "train-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            extract=False,
        ),
        Resource(
            _MNIST_BASE + "train-labels-idx1-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "d53e105ee54ea40749a09fcbcd1e9432",
            extract=False,
        ),
        Resource(
            _MNIST_BASE + "t10k-images-idx3-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "9fb629c4189551a2d022fa330f9573f3",
            extract=False,
        ),
        Resource(
            _MNIST_BASE + "t10k-labels-idx1-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "ec29112dd5afa0611ce80d1b7f02629c",
            extract=False,
        ),
    ),
    "cifar10": (
        Resource(
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
        ),
    ),
    "cifar100": (
        Resource(
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            "cifar-100-python.tar.gz",
            "eb9058c3a382ffc7106e4002c42a8d85",
        ),
    ),
    "stl10": (
        Resource(
            "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
            "stl10_binary.tar.gz",
            "91f7769df0f17e558f3565bffb0c7dfb",
        ),
    ),
}


def download_dataset(name: str, root: PathLike) -> Path:
    """Download (md5-verified) and safely extract the files of ``name`` (a key of ``RESOURCES``)
    into ``root``; returns ``root``."""
    if name not in RESOURCES:
        raise ValueError(f"no download is known for {name!r}; known: {sorted(RESOURCES)}")
    root = Path(root)
    for res in RESOURCES[name]:
        path = download_url(res.url, root / res.filename, md5=res.md5)
        if res.extract:
            extract_archive(path, root)
    return root


def download_mnist(directory: PathLike) -> Path:
    """Download the four MNIST IDX files (md5-verified) into ``directory``."""
    return download_dataset("mnist", directory)
