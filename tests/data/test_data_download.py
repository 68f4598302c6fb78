import hashlib
import io
import tarfile
import zipfile

import pytest

from ckconv.data import download as dl
from ckconv.data.download import (
    ChecksumError,
    UnsafeArchiveError,
    download_url,
    extract_archive,
    file_digest,
    verify_checksum,
)


def _tar(path, members, mode="w:gz"):
    """members: list of (name, bytes | None for a directory | ('sym', target) | ('lnk', target))."""
    with tarfile.open(path, mode) as tf:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if payload is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif isinstance(payload, tuple):
                info.type = tarfile.SYMTYPE if payload[0] == "sym" else tarfile.LNKTYPE
                info.linkname = payload[1]
                tf.addfile(info)
            else:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
    return path


def test_checksums(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"ckconv" * 1000)
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    md5 = hashlib.md5(p.read_bytes()).hexdigest()
    assert file_digest(p) == sha and file_digest(p, "md5") == md5
    verify_checksum(p, sha)
    verify_checksum(p, md5.upper(), "md5")
    with pytest.raises(ChecksumError, match=r"f\.bin: md5 checksum mismatch"):
        verify_checksum(p, "0" * 32, "md5")


def test_tar_extracts_nested_files(tmp_path):
    a = _tar(
        tmp_path / "ok.tar.gz",
        [("top", None), ("top/a.txt", b"hello"), ("top/sub/b.bin", b"\x00\x01")],
    )
    out = tmp_path / "out"
    extract_archive(a, out)
    assert (out / "top/a.txt").read_bytes() == b"hello"
    assert (out / "top/sub/b.bin").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize(
    "member",
    [
        ("../evil", b"x"),
        ("top/../../evil", b"x"),
        ("/tmp/evil_abs", b"x"),
        ("link", ("sym", "../../outside")),
        ("link", ("sym", "/etc/passwd")),
        ("hard", ("lnk", "../evil")),
    ],
)
def test_tar_refuses_escaping_members(tmp_path, member):
    a = _tar(tmp_path / "bad.tar", [("fine.txt", b"ok"), member], mode="w")
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=r"bad\.tar"):
        extract_archive(a, out)
    assert not (tmp_path / "evil").exists()
    assert not (out / "fine.txt").exists()  # nothing is written when any member is unsafe


def test_tar_refuses_device_files(tmp_path):
    path = tmp_path / "dev.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="special member"):
        extract_archive(path, tmp_path / "out")


def test_zip_extracts_and_refuses_traversal(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("d/x.ts", "@data\n")
    extract_archive(good, tmp_path / "g")
    assert (tmp_path / "g/d/x.ts").read_text() == "@data\n"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../evil", "boom")
    with pytest.raises(UnsafeArchiveError, match=r"bad\.zip.*'\.\./evil'"):
        extract_archive(bad, tmp_path / "b")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "b/ok.txt").exists()


def test_not_an_archive(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("just text")
    with pytest.raises(ValueError, match=r"plain\.txt: not a tar or zip archive"):
        extract_archive(p, tmp_path / "o")


def test_download_url_verifies_and_keeps_existing_file(tmp_path):
    # a local file:// URL exercises the whole path without a network
    src = tmp_path / "remote.bin"
    src.write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    dest = download_url(src.as_uri(), tmp_path / "dl" / "file.bin", md5=md5)
    assert dest.read_bytes() == b"payload"
    assert (
        download_url("file:///does/not/matter", dest, md5=md5) == dest
    )  # verified, not fetched again
    with pytest.raises(ChecksumError):
        download_url(src.as_uri(), tmp_path / "dl" / "other.bin", sha256="0" * 64)
    assert not (tmp_path / "dl" / "other.bin").exists()
    assert not (tmp_path / "dl" / "other.bin.part").exists()
    with pytest.raises(ValueError, match="needs an md5 or sha256"):
        download_url(src.as_uri(), tmp_path / "x")


def test_download_dataset_uses_known_checksums(tmp_path, monkeypatch):
    payload = _tar(
        tmp_path / "src.tar.gz", [("cifar-10-batches-py", None), ("cifar-10-batches-py/x", b"1")]
    )
    md5 = hashlib.md5(payload.read_bytes()).hexdigest()
    monkeypatch.setitem(
        dl.RESOURCES, "cifar10", (dl.Resource(payload.as_uri(), "cifar-10-python.tar.gz", md5),)
    )
    dl.download_dataset("cifar10", tmp_path / "root")
    assert (tmp_path / "root/cifar-10-batches-py/x").read_bytes() == b"1"
    with pytest.raises(ValueError, match="no download is known"):
        dl.download_dataset("imagenet", tmp_path)
    assert all(len(r.md5) == 32 for rs in dl.RESOURCES.values() for r in rs)
