import gzip
import pickle
import warnings

import numpy as np
import pytest
import torch

from ckconv.data.images import (
    CIFAR10,
    CIFAR100,
    MNIST,
    STL10,
    Digits,
    pixel_permutation,
    read_cifar_batch,
    read_idx,
    read_stl10_images,
    to_grayscale_uint8,
)


def _mnist_dir(tmp_path, fab, rng, n_train=40, n_test=12, compress=True):
    d = tmp_path / "MNIST" / "raw"
    d.mkdir(parents=True)
    sfx = ".gz" if compress else ""
    tr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    te = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    ytr = rng.integers(0, 10, n_train, dtype=np.uint8)
    yte = rng.integers(0, 10, n_test, dtype=np.uint8)
    fab.idx(d / f"train-images-idx3-ubyte{sfx}", tr, compress=compress)
    fab.idx(d / f"train-labels-idx1-ubyte{sfx}", ytr, compress=compress)
    fab.idx(d / f"t10k-images-idx3-ubyte{sfx}", te, compress=compress)
    fab.idx(d / f"t10k-labels-idx1-ubyte{sfx}", yte, compress=compress)
    return d, tr, ytr, te, yte


def test_idx_header_is_read_byte_exactly(tmp_path, fab, rng):
    arr = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    p = fab.idx(tmp_path / "x.gz", arr)
    raw = gzip.decompress(p.read_bytes())
    assert int.from_bytes(raw[:4], "big") == 2051  # the MNIST image magic, by construction
    assert np.array_equal(read_idx(p, 2051), arr)
    q = fab.idx(tmp_path / "y", arr[:, 0, 0], compress=False)
    assert int.from_bytes(q.read_bytes()[:4], "big") == 2049
    assert np.array_equal(read_idx(q, 2049), arr[:, 0, 0])


def test_idx_big_endian_int32(tmp_path):
    vals = np.array([[1, -2], [70000, 3]], dtype=">i4")
    data = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") * 2 + vals.tobytes()
    p = tmp_path / "i.idx"
    p.write_bytes(data)
    out = read_idx(p)
    assert out.dtype == np.int32 and out.tolist() == [[1, -2], [70000, 3]]


def test_idx_errors_name_the_file(tmp_path, fab, rng):
    p = fab.idx(
        tmp_path / "imgs", rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), compress=False
    )
    q = tmp_path / "trunc"
    q.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"trunc.*truncated"):
        read_idx(q)
    with pytest.raises(ValueError, match="expected 2049"):
        read_idx(p, 2049)
    r = tmp_path / "junk"
    r.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match=r"junk.*not an IDX"):
        read_idx(r)
    g = tmp_path / "broken.gz"
    g.write_bytes(gzip.compress(p.read_bytes())[:30])
    with pytest.raises(ValueError, match=r"broken\.gz"):
        read_idx(g)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_dataset_layouts(tmp_path, fab, rng, compress):
    _, _, _, te, yte = _mnist_dir(tmp_path, fab, rng, compress=compress)
    test_img = MNIST(tmp_path, "test", normalize=False)
    assert len(test_img) == 12
    x, y = test_img[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x[0], torch.from_numpy(te[3]).float() / 255)
    assert int(y) == yte[3]
    seq = MNIST(tmp_path, "test", layout="sequence", normalize=False)
    torch.testing.assert_close(seq[3][0], x.reshape(1, 784))
    perm = MNIST(tmp_path, "test", layout="sequence", permuted=True, normalize=False)
    p = pixel_permutation(784, 0)
    torch.testing.assert_close(perm[3][0], x.reshape(1, 784)[:, p])
    assert sorted(p.tolist()) == list(range(784)) and not torch.equal(p, torch.arange(784))
    # train/val split the 40 training images without overlap
    train = MNIST(tmp_path, "train", val_size=10, normalize=False)
    val = MNIST(tmp_path, "val", val_size=10, normalize=False)
    assert len(train) == 30 and len(val) == 10
    rows = {tuple(train.images[i].flatten().tolist()[:50]) for i in range(30)}
    rows |= {tuple(val.images[i].flatten().tolist()[:50]) for i in range(10)}
    assert len(rows) == 40


def test_mnist_normalisation_uses_training_split_only(tmp_path, fab, rng):
    _mnist_dir(tmp_path, fab, rng)
    train = MNIST(tmp_path, "train", val_size=10)
    raw = train.images.double() / 255
    assert abs(train.mean.item() - raw.mean().item()) < 1e-6
    assert abs(train.std.item() - raw.std(unbiased=False).item()) < 1e-6
    xs = torch.stack([train[i][0] for i in range(len(train))]).double()
    assert abs(xs.mean().item()) < 1e-5 and abs(xs.std(unbiased=False).item() - 1) < 1e-5
    test = MNIST(tmp_path, "test", val_size=10)
    torch.testing.assert_close(test.mean, train.mean)


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"MNIST: expected files \[train-images-idx3-ubyte.gz"
    ):
        MNIST(tmp_path / "nowhere")


def _cifar10_dir(tmp_path, fab, rng, n=6):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    data = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        imgs = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        fab.cifar_batch(d / name, imgs, labels)
        data[name] = (imgs, labels)
    return d, data


def test_cifar_batch_bytes_keys_and_plane_order(tmp_path, fab, rng):
    img = np.zeros((1, 3072), dtype=np.uint8)
    img[0, :1024] = 10  # R plane
    img[0, 1024:2048] = 20  # G plane
    img[0, 2048:] = np.arange(1024) % 256  # B plane, row-major
    p = fab.cifar_batch(tmp_path / "b", img, [7])
    images, labels = read_cifar_batch(p)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [7]
    assert (images[0, 0] == 10).all() and (images[0, 1] == 20).all()
    assert images[0, 2, 1, 0] == 32 and images[0, 2, 0, 5] == 5  # row 1 col 0 is pixel 32


def test_cifar_batch_written_by_numpy_1_pickles(tmp_path, fab, rng):
    # the published batches reference numpy.core.multiarray (numpy 1 names); numpy 2 must
    # read them without touching its deprecated alias
    imgs = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    raw = fab.cifar_batch(tmp_path / "new", imgs, [3, 4]).read_bytes()
    assert b"numpy._core.multiarray" in raw
    old = tmp_path / "old"
    old.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = read_cifar_batch(old)
    assert np.array_equal(images.reshape(2, -1), imgs) and labels.tolist() == [3, 4]


def test_cifar10_dataset(tmp_path, fab, rng):
    _, data = _cifar10_dir(tmp_path, fab, rng)
    test = CIFAR10(tmp_path, "test", normalize=False)
    imgs, labels = data["test_batch"]
    x, y = test[2]
    torch.testing.assert_close(x, torch.from_numpy(imgs[2].reshape(3, 32, 32)).float() / 255)
    assert int(y) == labels[2]
    seq = CIFAR10(tmp_path, "test", layout="sequence", normalize=False)
    assert seq[2][0].shape == (3, 1024)
    torch.testing.assert_close(seq[2][0], x.reshape(3, 1024))
    train = CIFAR10(tmp_path, "train", val_size=5)
    val = CIFAR10(tmp_path, "val", val_size=5)
    assert len(train) == 25 and len(val) == 5
    all_train = np.concatenate([data[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(
        -1, 3, 32, 32
    )
    idx = [
        i for i in range(30) if any(np.array_equal(all_train[i], t) for t in train.images.numpy())
    ]
    expected = all_train[idx].astype(np.float64) / 255
    np.testing.assert_allclose(train.mean.numpy(), expected.mean(axis=(0, 2, 3)), rtol=1e-5)


def test_cifar_grayscale_matches_luma(tmp_path, fab, rng):
    _, data = _cifar10_dir(tmp_path, fab, rng)
    grey = CIFAR10(tmp_path, "test", grayscale=True, layout="sequence", normalize=False)
    rgb = data["test_batch"][0][0].reshape(3, 32, 32).astype(np.float64)
    expected = np.clip(np.rint(0.2989 * rgb[0] + 0.5870 * rgb[1] + 0.1140 * rgb[2]), 0, 255) / 255
    np.testing.assert_allclose(grey[0][0].numpy().reshape(32, 32), expected, atol=1e-6)
    assert to_grayscale_uint8(np.full((1, 3, 2, 2), 255, np.uint8)).max() == 255


def test_cifar100_fine_and_coarse(tmp_path, fab, rng):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name in ("train", "test"):
        imgs = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        batch = {b"data": imgs, b"fine_labels": [99, 1, 2, 3], b"coarse_labels": [19, 0, 1, 2]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    fine = CIFAR100(tmp_path, "test", normalize=False)
    coarse = CIFAR100(tmp_path, "test", normalize=False, label_key="coarse_labels")
    assert int(fine[0][1]) == 99 and int(coarse[0][1]) == 19


def test_cifar_bad_files(tmp_path, fab, rng):
    p = tmp_path / "evil"
    with open(p, "wb") as f:
        pickle.dump({b"data": __import__("os").getcwd}, f, protocol=2)
    with pytest.raises(ValueError, match=r"evil.*refusing to load global"):
        read_cifar_batch(p)
    q = fab.cifar_batch(tmp_path / "short", rng.integers(0, 256, (2, 3072), dtype=np.uint8), [1])
    with pytest.raises(ValueError, match="short: 2 images but 1 labels"):
        read_cifar_batch(q)
    t = tmp_path / "trunc"
    t.write_bytes(
        fab.cifar_batch(
            tmp_path / "ok", rng.integers(0, 256, (2, 3072), dtype=np.uint8), [1, 2]
        ).read_bytes()[:100]
    )
    with pytest.raises(ValueError, match="trunc"):
        read_cifar_batch(t)
    w = fab.cifar_batch(
        tmp_path / "wrongkey",
        rng.integers(0, 256, (2, 3072), dtype=np.uint8),
        [1, 2],
        b"fine_labels",
    )
    with pytest.raises(ValueError, match="missing key 'labels'"):
        read_cifar_batch(w)


def test_stl10_column_major_layout(tmp_path, rng):
    d = tmp_path / "stl10_binary"
    d.mkdir()
    imgs = rng.integers(0, 256, (5, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
    # published layout: per channel, column-major (W outer, H inner)
    imgs.transpose(0, 1, 3, 2).tofile(d / "train_X.bin")
    np.array([1, 2, 3, 10, 4], dtype=np.uint8).tofile(d / "train_y.bin")
    imgs[:2].transpose(0, 1, 3, 2).tofile(d / "test_X.bin")
    np.array([5, 6], dtype=np.uint8).tofile(d / "test_y.bin")
    assert np.array_equal(read_stl10_images(d / "train_X.bin"), imgs)
    test = STL10(tmp_path, "test", normalize=False)
    torch.testing.assert_close(test[1][0], torch.from_numpy(imgs[1]).float() / 255)
    assert [int(test[i][1]) for i in range(2)] == [4, 5]
    train = STL10(tmp_path, "train", val_size=1)
    assert len(train) == 4
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"bad\.bin"):
        read_stl10_images(bad)


def test_digits_offline_real_data():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    tr, va, te = (Digits(s, normalize=False) for s in ("train", "val", "test"))
    assert len(tr) + len(va) + len(te) == 1797
    assert abs(len(tr) - 0.7 * 1797) < 12 and abs(len(te) - 0.15 * 1797) < 12
    x, y = te[0]
    assert x.shape == (1, 64) and y.dtype == torch.int64
    # each served sample is one of the real images, scaled by 1/16, with its label
    flat = torch.from_numpy(bunch.data).float() / 16
    match = (flat == x[0]).all(dim=1).nonzero().flatten()
    assert len(match) >= 1 and int(bunch.target[match[0]]) == int(y)
    # stratified: every class in every split
    for ds in (tr, va, te):
        assert set(ds.labels.tolist()) == set(range(10))
    img = Digits("test", layout="image", normalize=False)
    torch.testing.assert_close(img[0][0].reshape(1, 64), x)
    perm = Digits("test", permuted=True, normalize=False)
    torch.testing.assert_close(perm[0][0], x[:, pixel_permutation(64, 0)])
    # normalised with training statistics
    n = Digits("train")
    xs = torch.stack([n[i][0] for i in range(len(n))])
    assert abs(xs.mean().item()) < 1e-4 and abs(xs.std(unbiased=False).item() - 1) < 1e-4


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        Digits("training")
    with pytest.raises(ValueError, match="layout must be"):
        Digits("train", layout="grid")
    with pytest.raises(ValueError, match="permuted=True needs layout='sequence'"):
        Digits("train", layout="image", permuted=True)
