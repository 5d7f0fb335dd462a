"""Tests of mlp.datasets: IDX reading, the loaders, synthetic data, splits."""
import gzip
import sys

import numpy as np
import pytest

from mlp.datasets import mnist
from mlp.datasets import (
    IDX_FILES,
    Dataset,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_idx_dir,
    load_mnist,
    make_synthetic,
    read_idx,
    train_validation_split,
)

TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(arr, type_code=None):
    """The IDX encoding of ``arr`` (big-endian data), written independently of the reader."""
    arr = np.asarray(arr)
    code = TYPE_CODES[arr.dtype] if type_code is None else type_code
    header = bytes([0, 0, code, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, gz=False, data=None):
    data = idx_bytes(arr) if data is None else data
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def fake_mnist_dir(directory, n_train=12, n_test=5, gz=(False, True, True, False), seed=0,
                   train_labels=None, test_labels=None):
    """Write the four IDX files of a tiny MNIST-like set; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    imgs_tr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    imgs_tr[0, 0, 0], imgs_tr[0, 0, 1] = 0, 255  # both extremes present
    imgs_te = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    lab_tr = (np.arange(n_train) % 10).astype(np.uint8) if train_labels is None else train_labels
    lab_te = (np.arange(n_test) % 10).astype(np.uint8) if test_labels is None else test_labels
    arrays = (imgs_tr, lab_tr, imgs_te, lab_te)
    for stem, arr, z in zip(IDX_FILES, arrays, gz):
        write_idx(directory / (stem + (".gz" if z else "")), arr, gz=z)
    return arrays


# --------------------------------------------------------------------------- #
# read_idx
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", list(TYPE_CODES), ids=lambda d: d.name)
def test_read_idx_round_trip_every_type(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    if dtype.kind == "f":
        arr = rng.standard_normal((3, 4, 5)).astype(dtype)
        arr[0, 0, 0] = -0.0
    else:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, int(info.max) + 1, (3, 4, 5), dtype=dtype)
        arr[0, 0, :2] = info.min, info.max
    path = write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), arr, gz=gz)
    out = read_idx(path)
    assert out.dtype == dtype and out.dtype.isnative
    assert out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()  # bit-exact, -0.0 included
    assert out.flags.writeable
    out[...] = 0  # a private copy: writing does not fail


def test_read_idx_one_dimension_and_str_path(tmp_path):
    labels = np.array([9, 0, 3, 255], dtype=np.uint8)
    path = write_idx(tmp_path / "labels", labels)
    np.testing.assert_array_equal(read_idx(str(path)), labels)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_without_suffix = write_idx(tmp_path / "images-idx3-ubyte", arr, gz=True)
    raw_with_suffix = write_idx(tmp_path / "images-idx3-ubyte.gz", arr, gz=False)
    assert gz_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(gz_without_suffix), arr)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), arr)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_truncated_data(tmp_path, gz):
    data = idx_bytes(np.zeros((4, 5), dtype=np.int16))
    path = write_idx(tmp_path / "t", None, gz=gz, data=data[:-1])
    with pytest.raises(ValueError, match="truncated") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_truncated_header(tmp_path):
    data = idx_bytes(np.zeros((4, 5, 6), dtype=np.uint8))
    path = write_idx(tmp_path / "h", None, data=data[:10])  # 3 dims need 16 header bytes
    with pytest.raises(ValueError, match="truncated header"):
        read_idx(path)
    short = write_idx(tmp_path / "s", None, data=b"\x00\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(short)
    empty = write_idx(tmp_path / "e", None, data=b"")
    with pytest.raises(ValueError, match="magic"):
        read_idx(empty)


def test_read_idx_truncated_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_corrupt_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32))))
    data[-6] ^= 0xFF  # inside the CRC32 / size trailer
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_trailing_bytes(tmp_path, gz):
    data = idx_bytes(np.ones((2, 3), dtype=np.uint8)) + b"\x00\x00\x07"
    path = write_idx(tmp_path / "trail", None, gz=gz, data=data)
    with pytest.raises(ValueError, match="3 bytes of trailing garbage") as e:
        read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x01\x08\x01", b"PK\x03\x04"])
def test_read_idx_wrong_magic(tmp_path, magic):
    data = magic + (3).to_bytes(4, "big") + b"abc"
    path = write_idx(tmp_path / "m", None, data=data)
    with pytest.raises(ValueError, match="magic") as e:
        read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_read_idx_unknown_type_code(tmp_path, code):
    data = bytes([0, 0, code, 1]) + (2).to_bytes(4, "big") + b"\x01\x02"
    path = write_idx(tmp_path / "c", None, data=data)
    with pytest.raises(ValueError, match=f"unknown IDX type code 0x{code:02X}"):
        read_idx(path)


def test_read_idx_zero_dimensions(tmp_path):
    path = write_idx(tmp_path / "z", None, data=b"\x00\x00\x08\x00\x05")
    with pytest.raises(ValueError, match="zero dimensions"):
        read_idx(path)


def test_read_idx_zero_sized_inner_dimension(tmp_path):
    data = b"\x00\x00\x08\x02" + (3).to_bytes(4, "big") + (0).to_bytes(4, "big")
    path = write_idx(tmp_path / "z0", None, data=data)
    with pytest.raises(ValueError, match="size zero"):
        read_idx(path)


def test_read_idx_huge_header_claim_is_truncation_not_allocation(tmp_path):
    # 2**32-1 cubed bytes claimed: must be reported as truncated, not attempted.
    data = b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + b"\x00" * 10
    path = write_idx(tmp_path / "huge", None, data=data)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_missing_file_and_bad_type(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
    with pytest.raises(TypeError, match="path"):
        read_idx(42)


# --------------------------------------------------------------------------- #
# load_idx_dir
# --------------------------------------------------------------------------- #
def test_load_idx_dir_round_trip(tmp_path):
    imgs_tr, lab_tr, imgs_te, lab_te = fake_mnist_dir(tmp_path / "d")
    ds = load_idx_dir(tmp_path / "d", name="toy")
    assert isinstance(ds, Dataset)
    assert ds.X_train.shape == (12, 784) and ds.X_test.shape == (5, 784)
    assert ds.X_train.dtype == np.float32 and ds.X_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    assert ds.X_train.flags.c_contiguous
    # pixel / 255 exactly, and back
    np.testing.assert_array_equal(ds.X_train, imgs_tr.reshape(12, -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(np.rint(ds.X_test * 255).astype(np.uint8),
                                  imgs_te.reshape(5, -1))
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
    np.testing.assert_array_equal(ds.y_train, lab_tr)
    np.testing.assert_array_equal(ds.y_test, lab_te)
    assert ds.name == "toy" and ds.n_classes == 10 and ds.source == str(tmp_path / "d")
    assert (ds.n_train, ds.n_test, ds.n_features) == (12, 5, 784)


def test_load_idx_dir_prefers_raw_over_gz(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d, gz=(False,) * 4)
    # A broken .gz next to a good raw file is never read.
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    assert load_idx_dir(d).n_train == 12


def test_load_idx_dir_mismatched_counts(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d, n_train=12, train_labels=np.zeros(11, dtype=np.uint8))
    with pytest.raises(ValueError, match="counts differ.*12 images.*11 labels"):
        load_idx_dir(d)


@pytest.mark.parametrize("part", ["train", "test"])
def test_load_idx_dir_labels_out_of_range(tmp_path, part):
    d = tmp_path / "d"
    bad = np.array([0, 1, 10, 2, 3], dtype=np.uint8)
    kw = {"n_train": 5, "n_test": 5, f"{part}_labels": bad}
    fake_mnist_dir(d, **kw)
    with pytest.raises(ValueError, match=r"labels out of range.*\[0, 10\)"):
        load_idx_dir(d)


def test_load_idx_dir_negative_labels(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d, n_test=3, test_labels=np.array([0, -1, 2], dtype=np.int8))
    with pytest.raises(ValueError, match="labels out of range"):
        load_idx_dir(d)


def test_load_idx_dir_rejects_non_byte_images(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d)
    write_idx(d / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="unsigned bytes"):
        load_idx_dir(d)


def test_load_idx_dir_rejects_mismatched_image_sizes(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d)
    write_idx(d / "t10k-images-idx3-ubyte", np.zeros((5, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="784.*64"):
        load_idx_dir(d)


def test_load_idx_dir_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_idx_dir(tmp_path / "absent")
    msg = str(e.value)
    assert "dataset-fashion-mnist" in msg and "apt-get install" in msg
    assert str(tmp_path / "absent") in msg
    for stem in IDX_FILES:
        assert stem in msg


def test_load_idx_dir_missing_one_file(tmp_path):
    d = tmp_path / "d"
    fake_mnist_dir(d)
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        load_idx_dir(d)


# --------------------------------------------------------------------------- #
# load_fashion_mnist / load_mnist lookup
# --------------------------------------------------------------------------- #
@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """No $MLP_DATA and no Debian package: only what a test sets up is found."""
    monkeypatch.delenv("MLP_DATA", raising=False)
    monkeypatch.setattr(mnist, "DEFAULT_FASHION_MNIST_DIR", tmp_path / "no-system-dir")


def test_load_fashion_mnist_explicit_path_dir_or_parent(tmp_path, no_system_data):
    fake_mnist_dir(tmp_path / "fashion-mnist", n_train=7)
    for p in (tmp_path / "fashion-mnist", tmp_path, str(tmp_path)):
        ds = load_fashion_mnist(p)
        assert ds.n_train == 7 and ds.name == "fashion-mnist"
        assert ds.source == str(tmp_path / "fashion-mnist")


def test_load_fashion_mnist_explicit_path_is_the_only_place(tmp_path, monkeypatch):
    fake_mnist_dir(tmp_path / "env")
    monkeypatch.setenv("MLP_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match="path argument") as e:
        load_fashion_mnist(tmp_path / "typo")
    assert str(tmp_path / "typo") in str(e.value)


@pytest.mark.parametrize("layout", ["itself", "parent"])
def test_load_fashion_mnist_from_env(tmp_path, monkeypatch, no_system_data, layout):
    target = tmp_path / "data" / "fashion-mnist"
    fake_mnist_dir(target, n_train=9)
    monkeypatch.setenv("MLP_DATA", str(target if layout == "itself" else tmp_path / "data"))
    ds = load_fashion_mnist()
    assert ds.n_train == 9 and ds.source == str(target)
    assert load_dataset("fashion-mnist").n_train == 9
    assert load_dataset("Fashion_MNIST").n_train == 9


def test_load_fashion_mnist_env_when_set_is_the_only_place(tmp_path, monkeypatch):
    fake_mnist_dir(tmp_path / "env", n_train=3)
    fake_mnist_dir(tmp_path / "system", n_train=4)
    monkeypatch.setattr(mnist, "DEFAULT_FASHION_MNIST_DIR", tmp_path / "system")
    monkeypatch.setenv("MLP_DATA", str(tmp_path / "env"))
    assert load_fashion_mnist().n_train == 3
    # A $MLP_DATA without the data is an error, not the system's copy.
    monkeypatch.setenv("MLP_DATA", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="MLP_DATA") as e:
        load_fashion_mnist()
    assert str(tmp_path / "system") not in str(e.value).split("An IDX directory")[0]  # not searched
    monkeypatch.delenv("MLP_DATA")
    assert load_fashion_mnist().n_train == 4


def test_load_fashion_mnist_not_found_lists_places(tmp_path, monkeypatch, no_system_data):
    monkeypatch.setenv("MLP_DATA", str(tmp_path / "envdir"))
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist()
    msg = str(e.value)
    assert "$MLP_DATA" in msg and str(tmp_path / "envdir") in msg
    assert str(tmp_path / "envdir" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    for stem in IDX_FILES:
        assert stem in msg


def test_load_mnist_from_env_and_path(tmp_path, monkeypatch):
    fake_mnist_dir(tmp_path / "mnist", n_train=6)
    monkeypatch.setenv("MLP_DATA", str(tmp_path))
    ds = load_mnist()
    assert ds.name == "mnist" and ds.n_train == 6
    assert load_dataset("mnist").n_train == 6
    assert load_mnist(tmp_path / "mnist").n_train == 6


def test_load_mnist_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv("MLP_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="MLP_DATA"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match="mnist") as e:
        load_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(e.value)


REAL_FASHION_MNIST = mnist.DEFAULT_FASHION_MNIST_DIR


@pytest.mark.skipif(
    not all((REAL_FASHION_MNIST / (s + ".gz")).is_file() or (REAL_FASHION_MNIST / s).is_file()
            for s in IDX_FILES),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("MLP_DATA", raising=False)
    ds = load_fashion_mnist()
    assert ds.source == str(REAL_FASHION_MNIST)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    assert ds.X_train.max() == 1.0  # scaled by 255, not left at 0..255
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 1000))


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
def test_load_digits_shapes_ranges_split():
    sk = pytest.importorskip("sklearn.datasets")
    ds = load_digits()
    assert ds.name == "digits" and ds.n_classes == 10 and ds.n_features == 64
    assert ds.n_train + ds.n_test == 1797
    assert ds.n_test == round(0.25 * 1797)
    assert ds.X_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    both = np.vstack([ds.X_train, ds.X_test])
    assert both.min() == 0.0 and both.max() == 1.0
    # The two parts are disjoint and together are exactly the original data (rescaled).
    ref = sk.load_digits()
    orig = np.hstack([ref.data / 16.0, ref.target[:, None]])
    got = np.hstack([both, np.concatenate([ds.y_train, ds.y_test])[:, None]])
    key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(key(got), key(orig), rtol=0, atol=1e-7)
    # stratified: every class split close to 3:1
    tr, te = np.bincount(ds.y_train, minlength=10), np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(te - 0.25 * (tr + te)) <= 1)


def test_load_digits_deterministic():
    pytest.importorskip("sklearn")
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)
    d = load_digits(test_fraction=0.5)
    assert abs(d.n_test - 1797 / 2) <= 1
    assert load_dataset("digits", seed=3).y_test.tolist() == a.y_test.tolist()


def test_load_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn.*numba-mlp\[sklearn\]"):
        load_digits()


@pytest.mark.parametrize("bad, exc", [(0.0, ValueError), (1.0, ValueError), (float("nan"), ValueError),
                                      ("0.2", TypeError), (True, TypeError)])
def test_load_digits_bad_fraction(bad, exc):
    with pytest.raises(exc, match="test_fraction"):
        load_digits(test_fraction=bad)


# --------------------------------------------------------------------------- #
# synthetic
# --------------------------------------------------------------------------- #
def test_make_synthetic_shapes_dtype_range():
    ds = make_synthetic(n_train=500, n_test=200, n_features=30, n_classes=4, seed=1)
    assert ds.X_train.shape == (500, 30) and ds.X_test.shape == (200, 30)
    assert ds.y_train.shape == (500,) and ds.y_test.shape == (200,)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_train.flags.c_contiguous
    for X in (ds.X_train, ds.X_test):
        assert X.min() >= 0.0 and X.max() <= 1.0
        assert X.std() > 0.05  # not constant
    np.testing.assert_array_equal(np.bincount(ds.y_train), [125] * 4)  # balanced
    assert set(np.unique(ds.y_test)) == {0, 1, 2, 3}
    assert ds.name == "synthetic" and ds.n_classes == 4 and "seed=1" in ds.source


def test_make_synthetic_default_shape_like_fashion_mnist():
    ds = make_synthetic(n_train=100, n_test=10)
    assert ds.n_features == 784 and ds.n_classes == 10


def test_make_synthetic_deterministic():
    a = make_synthetic(300, 100, 50, 5, seed=7)
    b = make_synthetic(300, 100, 50, 5, seed=7)
    c = make_synthetic(300, 100, 50, 5, seed=8)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.X_train, c.X_train)
    # the training part does not depend on the size of the test part
    d = make_synthetic(300, 7, 50, 5, seed=7)
    np.testing.assert_array_equal(a.X_train, d.X_train)
    assert load_dataset("synthetic", n_train=300, n_test=100, n_features=50, n_classes=5,
                        seed=7).X_test.tobytes() == a.X_test.tobytes()


def _nearest_class_mean_accuracy(ds):
    means = np.stack([ds.X_train[ds.y_train == c].mean(0) for c in range(ds.n_classes)])
    d2 = (ds.X_test ** 2).sum(1)[:, None] - 2 * ds.X_test @ means.T + (means ** 2).sum(1)
    return float((d2.argmin(1) == ds.y_test).mean())


def _least_squares_accuracy(ds):
    def design(X):
        return np.hstack([X, np.ones((X.shape[0], 1), X.dtype)]).astype(np.float64)
    W = np.linalg.lstsq(design(ds.X_train), np.eye(ds.n_classes)[ds.y_train], rcond=None)[0]
    return float(((design(ds.X_test) @ W).argmax(1) == ds.y_test).mean())


def test_make_synthetic_is_learnable():
    ds = make_synthetic(n_train=3000, n_test=1000, seed=0)
    ncm = _nearest_class_mean_accuracy(ds)
    lsq = _least_squares_accuracy(make_synthetic(n_train=3000, n_test=1000, n_features=100))
    # chance is 0.1
    assert ncm > 0.5, ncm
    assert lsq > 0.5, lsq
    # ... but not trivially separable, so an MLP has something to learn
    assert ncm < 0.95, ncm
    # labels carry the signal: with shuffled labels the same classifier is at chance
    rng = np.random.default_rng(0)
    shuffled = Dataset(ds.X_train, rng.permutation(ds.y_train), ds.X_test, ds.y_test,
                       "shuffled", 10, "test")
    assert _nearest_class_mean_accuracy(shuffled) < 0.2


def test_make_synthetic_learnable_with_few_features_too():
    ds = make_synthetic(n_train=2000, n_test=500, n_features=8, n_classes=3, seed=2)
    assert _nearest_class_mean_accuracy(ds) > 0.5


@pytest.mark.parametrize("kw, exc, match", [
    ({"n_train": 0}, ValueError, "n_train"),
    ({"n_test": 0}, ValueError, "n_test"),
    ({"n_features": 0}, ValueError, "n_features"),
    ({"n_classes": 1}, ValueError, "n_classes"),
    ({"seed": -1}, ValueError, "seed"),
    ({"n_train": 10.5}, TypeError, "n_train"),
    ({"n_classes": True}, TypeError, "n_classes"),
    ({"seed": "0"}, TypeError, "seed"),
])
def test_make_synthetic_validates_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        make_synthetic(**{"n_train": 10, "n_test": 10, "n_features": 4, **kw})


def test_make_synthetic_accepts_numpy_ints():
    ds = make_synthetic(np.int64(20), np.int32(10), np.int64(5), np.int8(3), seed=np.uint8(1))
    assert ds.X_train.shape == (20, 5) and ds.n_classes == 3


# --------------------------------------------------------------------------- #
# load_dataset
# --------------------------------------------------------------------------- #
def test_load_dataset_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="cifar") as e:
        load_dataset("cifar")
    for name in ("fashion-mnist", "mnist", "digits", "synthetic"):
        assert name in str(e.value)
    with pytest.raises(TypeError, match="name"):
        load_dataset(None)


def test_load_dataset_argument_routing(tmp_path):
    with pytest.raises(TypeError, match="path"):
        load_dataset("synthetic", path=tmp_path)
    with pytest.raises(TypeError, match="keyword"):
        load_dataset("mnist", path=tmp_path, seed=1)
    ds = load_dataset("synthetic", n_train=20, n_test=10, n_features=3, n_classes=2)
    assert ds.X_train.shape == (20, 3)


# --------------------------------------------------------------------------- #
# train_validation_split
# --------------------------------------------------------------------------- #
def test_train_validation_split_disjoint_covering_stratified():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 1003)
    X = np.arange(1003 * 2, dtype=np.float32).reshape(1003, 2)  # row i identifies sample i
    X_tr, y_tr, X_val, y_val = train_validation_split(X, y, 0.2, seed=1)
    ids_tr, ids_val = (X_tr[:, 0] // 2).astype(int), (X_val[:, 0] // 2).astype(int)
    assert len(ids_val) == round(0.2 * 1003) and len(ids_tr) == 1003 - len(ids_val)
    assert not set(ids_tr) & set(ids_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([ids_tr, ids_val])), np.arange(1003))
    np.testing.assert_array_equal(y_tr, y[ids_tr])  # X and y stay paired
    np.testing.assert_array_equal(y_val, y[ids_val])
    assert np.all(np.diff(ids_tr) > 0) and np.all(np.diff(ids_val) > 0)  # original order
    counts, val_counts = np.bincount(y, minlength=5), np.bincount(y_val, minlength=5)
    assert np.all(np.abs(val_counts - 0.2 * counts) < 1.0 + 1e-9)
    assert X_tr.dtype == X.dtype and y_val.dtype == y.dtype


def test_train_validation_split_deterministic():
    X = np.arange(200, dtype=np.float64)[:, None]
    y = np.arange(200) % 3
    a = train_validation_split(X, y, 0.3, seed=5)
    b = train_validation_split(X, y, 0.3, seed=5)
    c = train_validation_split(X, y, 0.3, seed=6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])


def test_train_validation_split_returns_copies():
    X = np.zeros((10, 2))
    X_tr, _, _, _ = train_validation_split(X, np.arange(10) % 2, 0.5, seed=0)
    X_tr[...] = 1
    assert X.sum() == 0


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_train_validation_split_bad_fraction(frac):
    with pytest.raises(ValueError, match="validation_fraction"):
        train_validation_split(np.zeros((10, 2)), np.zeros(10, int), frac, seed=0)


def test_train_validation_split_empty_side_and_bad_args():
    X, y = np.zeros((3, 2)), np.array([0, 1, 0])
    with pytest.raises(ValueError, match="non-empty"):
        train_validation_split(X, y, 0.1, seed=0)  # round(0.3) == 0 validation samples
    with pytest.raises(ValueError, match="non-empty"):
        train_validation_split(X, y, 0.9, seed=0)  # no training samples left
    with pytest.raises(ValueError, match="lengths differ"):
        train_validation_split(np.zeros((4, 2)), y, 0.5, seed=0)
    with pytest.raises(TypeError, match="validation_fraction"):
        train_validation_split(X, y, "0.5", seed=0)
    with pytest.raises(ValueError, match="seed"):
        train_validation_split(X, y, 0.5, seed=-3)


def test_train_validation_split_on_a_dataset_leaves_test_alone():
    ds = make_synthetic(n_train=100, n_test=40, n_features=6, n_classes=4, seed=0)
    X_test_before = ds.X_test.copy()
    X_tr, y_tr, X_val, y_val = train_validation_split(ds.X_train, ds.y_train, 0.25, seed=0)
    assert len(X_tr) + len(X_val) == ds.n_train == 100
    assert len(X_val) == 25
    assert np.all(np.abs(np.bincount(y_val, minlength=4) - 25 * 0.25) <= 1)
    np.testing.assert_array_equal(ds.X_test, X_test_before)


# --------------------------------------------------------------------------- #
# Dataset
# --------------------------------------------------------------------------- #
def test_dataset_validates_and_converts():
    X = np.zeros((4, 3))
    ds = Dataset(X, [0, 1, 2, 1], X[:2], np.array([0, 2], dtype=np.uint8), "t", 3, "here")
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_test.dtype == np.int64
    assert "n_train=4" in repr(ds)
    with pytest.raises(ValueError, match="y_train"):
        Dataset(X, [0, 1, 2], X, [0, 1, 2, 1], "t", 3, "here")
    with pytest.raises(ValueError, match="outside"):
        Dataset(X, [0, 1, 3, 1], X, [0, 1, 2, 1], "t", 3, "here")
    with pytest.raises(ValueError, match="features"):
        Dataset(X, [0, 1, 2, 1], np.zeros((4, 2)), [0, 1, 2, 1], "t", 3, "here")
    with pytest.raises(ValueError, match="2-D"):
        Dataset(X.ravel(), [0] * 12, X, [0] * 4, "t", 3, "here")


def test_dataset_class_names_default_to_the_labels_and_are_checked():
    X = np.zeros((4, 3))
    ds = Dataset(X, [0, 1, 2, 1], X, [0, 1, 2, 1], "t", 3, "here")
    assert ds.class_names == ("0", "1", "2")
    named = Dataset(X, [0, 1, 2, 1], X, [0, 1, 2, 1], "t", 3, "here", class_names=["a", "b", "c"])
    assert named.class_names == ("a", "b", "c")  # any sequence, kept as a tuple
    with pytest.raises(ValueError, match="one name per class"):
        Dataset(X, [0, 1, 2, 1], X, [0, 1, 2, 1], "t", 3, "here", class_names=["a", "b"])
    with pytest.raises(TypeError, match="hold str"):
        Dataset(X, [0, 1, 2, 1], X, [0, 1, 2, 1], "t", 3, "here", class_names=["a", 1, "c"])
    with pytest.raises(TypeError, match="sequence of str"):
        Dataset(X, [0, 1, 2, 1], X, [0, 1, 2, 1], "t", 3, "here", class_names="abc")


def test_every_loader_names_its_classes(tmp_path, no_system_data):
    fake_mnist_dir(tmp_path / "fashion-mnist")
    fake_mnist_dir(tmp_path / "mnist")
    fashion = load_fashion_mnist(tmp_path)
    assert fashion.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    digit_names = tuple("0123456789")
    assert load_mnist(tmp_path).class_names == digit_names
    assert load_idx_dir(tmp_path / "mnist", name="toy").class_names == digit_names
    assert load_idx_dir(tmp_path / "mnist", name="toy", class_names=list("abcdefghij")).class_names[-1] == "j"
    assert load_digits().class_names == digit_names
    assert make_synthetic(n_train=8, n_test=4, n_features=3, n_classes=4).class_names == ("0", "1", "2", "3")
