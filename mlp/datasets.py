"""Data sets for training: Fashion-MNIST / MNIST (IDX files), scikit-learn's digits, synthetic.

Every loader returns a :class:`Dataset`: features as ``float32`` in ``[0, 1]``
with shape ``(n_samples, n_features)`` and integer labels as ``int64`` with
shape ``(n_samples,)``, for a training and a test part.

The test part is only for the final evaluation: carve a validation set for
tuning out of the *training* part with :func:`train_validation_split`.

Where the data come from
------------------------
Fashion-MNIST is looked up, in this order, in

1. the ``path`` argument of :func:`load_fashion_mnist` (when given, the only place),
2. ``$MLP_DATA`` (the directory itself or its ``fashion-mnist/`` subdirectory),
3. ``/usr/share/datasets/fashion-mnist``, where the Debian/Ubuntu package
   ``dataset-fashion-mnist`` installs the four gzip-compressed IDX files
   (``apt-get install dataset-fashion-mnist``).

A directory of IDX files must hold ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each possibly compressed with gzip (``.gz``).
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import numbers
import operator
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset",
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "IDX_FILES",
    "read_idx",
    "load_idx_dir",
    "load_fashion_mnist",
    "load_mnist",
    "load_digits",
    "make_synthetic",
    "load_dataset",
    "train_validation_split",
]

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The four standard file names of an MNIST-style directory (each may end in ``.gz``).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Names accepted by :func:`load_dataset`.
DATASETS = ("fashion-mnist", "mnist", "digits", "synthetic")

_ENV_VAR = "MLP_DATA"
_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> dtype of the data as stored (big-endian for multi-byte types).
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# --------------------------------------------------------------------------- #
# Dataset
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set split into a training and a test part.

    Attributes
    ----------
    X_train : numpy.ndarray, shape (n_train, n_features), float32
        Training features, every value in ``[0, 1]``.
    y_train : numpy.ndarray, shape (n_train,), int64
        Training labels in ``[0, n_classes)``.
    X_test : numpy.ndarray, shape (n_test, n_features), float32
        Test features, every value in ``[0, 1]``.
    y_test : numpy.ndarray, shape (n_test,), int64
        Test labels in ``[0, n_classes)``.
    name : str
        Short name, e.g. ``"fashion-mnist"``.
    n_classes : int
        Number of classes.
    source : str
        Where the data were read from (a directory) or how they were made.

    The arrays are checked (shapes, dtypes, label range) when the object is
    built; arrays of another dtype are converted to ``float32`` / ``int64``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    source: str

    def __post_init__(self):
        n_classes = _check_int("n_classes", self.n_classes, minimum=1)
        object.__setattr__(self, "n_classes", n_classes)
        if not isinstance(self.name, str) or not isinstance(self.source, str):
            raise TypeError("Dataset: name and source must be str")
        n_features = None
        for part in ("train", "test"):
            X = np.ascontiguousarray(getattr(self, "X_" + part), dtype=np.float32)
            y = np.asarray(getattr(self, "y_" + part))
            if X.ndim != 2:
                raise ValueError(f"Dataset: X_{part} must be 2-D (n, d), got shape {X.shape}")
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"Dataset: y_{part} must have shape ({X.shape[0]},) to match X_{part}, "
                    f"got {y.shape}")
            if y.dtype != np.int64:
                if y.size and not np.issubdtype(y.dtype, np.integer):
                    raise TypeError(f"Dataset: y_{part} must hold integers, got {y.dtype}")
                y = y.astype(np.int64)
            if y.size and (y.min() < 0 or y.max() >= n_classes):
                raise ValueError(
                    f"Dataset: y_{part} holds labels outside [0, {n_classes}): "
                    f"min {y.min()}, max {y.max()}")
            if n_features is None:
                n_features = X.shape[1]
            elif X.shape[1] != n_features:
                raise ValueError(
                    f"Dataset: X_train has {n_features} features but X_test has {X.shape[1]}")
            object.__setattr__(self, "X_" + part, X)
            object.__setattr__(self, "y_" + part, y)

    @property
    def n_features(self) -> int:
        """Number of features (columns of ``X_train``)."""
        return self.X_train.shape[1]

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return self.X_train.shape[0]

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return self.X_test.shape[0]

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
                f"n_features={self.n_features}, n_classes={self.n_classes}, "
                f"source={self.source!r})")


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #
def _check_int(name, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_seed(value, name="seed"):
    return _check_int(name, value, minimum=0)


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(value).__name__} {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")
    return value


def _check_path(name, value):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    return Path(value)


# --------------------------------------------------------------------------- #
# IDX reader
# --------------------------------------------------------------------------- #
def _read_bytes(path):
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != _GZIP_MAGIC:
            return f.read()
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read()
        except EOFError as e:
            raise ValueError(f"{path}: truncated gzip stream ({e})") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None


def _read_idx(path, copy=True):
    data = _read_bytes(path)
    size = len(data)
    if size < 4:
        raise ValueError(f"{path}: not an IDX file: {size} bytes, shorter than the 4-byte magic")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file: bad magic {data[:4].hex()} "
            "(the first two bytes must be zero)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise ValueError(
            f"{path}: bad magic {data[:4].hex()}: unknown IDX type code 0x{type_code:02X} "
            f"(known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if size < header:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {size}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims[1:]):
        raise ValueError(f"{path}: dimension of size zero in shape {dims}")
    dtype = _IDX_TYPES[type_code]
    need = header + math.prod(dims) * dtype.itemsize
    if size < need:
        raise ValueError(
            f"{path}: truncated: shape {dims} of {dtype.name} needs {need} bytes, "
            f"file has {size}")
    if size > need:
        raise ValueError(
            f"{path}: {size - need} bytes of trailing garbage after the data of shape {dims} "
            f"({need} bytes expected)")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    native = dtype.newbyteorder("=")
    if arr.dtype != native:
        return arr.astype(native)  # a fresh, writable, native-endian copy
    return arr.copy() if copy else arr


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the content (the magic
        bytes ``1f 8b``), whatever the file name.

    Returns
    -------
    numpy.ndarray
        A new, writable array with the shape stored in the header, in native
        byte order, of dtype ``uint8`` (type code 0x08), ``int8`` (0x09),
        ``int16`` (0x0B), ``int32`` (0x0C), ``float32`` (0x0D) or
        ``float64`` (0x0E).

    Raises
    ------
    ValueError
        The file is not a well-formed IDX file: bad magic (first two bytes not
        zero or unknown type code), zero dimensions, a dimension of size zero
        after the first, truncated header or data, trailing bytes after the
        data, or a corrupt gzip stream. The message names the file.
    FileNotFoundError
        The file does not exist.
    """
    return _read_idx(_check_path("path", path), copy=True)


# --------------------------------------------------------------------------- #
# IDX directories
# --------------------------------------------------------------------------- #
def _idx_file(directory, stem):
    """Path of ``stem`` or ``stem.gz`` in ``directory`` (raw preferred), else None."""
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_files(directory):
    return [stem for stem in IDX_FILES if _idx_file(directory, stem) is None]


def _how_to_get(name):
    files = ", ".join(IDX_FILES)
    text = (f"An IDX directory must hold the four files {files} "
            "(each may be gzip-compressed, with a .gz suffix).")
    if name == "fashion-mnist":
        text += (f" Get Fashion-MNIST with `apt-get install dataset-fashion-mnist` "
                 f"(Debian/Ubuntu; installs into {DEFAULT_FASHION_MNIST_DIR}), or download "
                 "the four files from https://github.com/zalandoresearch/fashion-mnist into a "
                 f"directory and pass it as `path` or set ${_ENV_VAR} to it.")
    else:
        text += (f" Put the four files of the {name} data set into a directory and pass it "
                 f"as `path` or set ${_ENV_VAR} to its parent (holding {name}/).")
    return text


def _images_to_features(images, path):
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: images must be unsigned bytes (IDX type 0x08), "
                         f"got {images.dtype}")
    if images.ndim < 2:
        raise ValueError(f"{path}: images must have at least 2 dimensions (n, ...), "
                         f"got shape {images.shape}")
    n = images.shape[0]
    if n == 0:
        raise ValueError(f"{path}: holds zero images")
    return np.divide(images.reshape(n, -1), np.float32(255.0), dtype=np.float32)


def _labels(labels, path, n_classes):
    if labels.ndim != 1:
        raise ValueError(f"{path}: labels must be 1-D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.size == 0:
        raise ValueError(f"{path}: holds zero labels")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"{path}: labels out of range: found values in [{lo}, {hi}], "
            f"expected [0, {n_classes})")
    return labels.astype(np.int64)


def load_idx_dir(directory, name="fashion-mnist") -> Dataset:
    """Load an MNIST-style directory of four IDX files.

    Parameters
    ----------
    directory : str or os.PathLike
        Holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
        possibly with a ``.gz`` suffix (an uncompressed file is preferred
        when both exist).
    name : str
        The name given to the :class:`Dataset`.

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784) and ``X_test`` (10000, 784) float32 in
        ``[0, 1]`` (pixel / 255) for (Fashion-)MNIST, labels int64 in
        ``[0, 10)``; ``n_classes`` is 10 and ``source`` the directory.

    Raises
    ------
    FileNotFoundError
        The directory or one of the files is missing; the message lists the
        expected file names and how to get the data.
    ValueError
        A file is malformed (see :func:`read_idx`), images are not unsigned
        bytes, image and label counts differ, labels lie outside ``[0, 10)``,
        or training and test images differ in size.
    """
    directory = _check_path("directory", directory)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not directory.is_dir():
        raise FileNotFoundError(f"{name}: no such directory: {directory}. {_how_to_get(name)}")
    missing = _missing_files(directory)
    if missing:
        raise FileNotFoundError(
            f"{name}: {directory} lacks {', '.join(missing)} (nor with .gz). {_how_to_get(name)}")
    n_classes = 10
    parts = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        img_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
        lbl_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
        X = _images_to_features(_read_idx(img_path, copy=False), img_path)
        y = _labels(_read_idx(lbl_path, copy=False), lbl_path, n_classes)
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"{name}: image and label counts differ for the {part} set: "
                f"{X.shape[0]} images in {img_path}, {y.shape[0]} labels in {lbl_path}")
        parts[part] = (X, y, img_path)
    if parts["train"][0].shape[1] != parts["test"][0].shape[1]:
        raise ValueError(
            f"{name}: training images have {parts['train'][0].shape[1]} pixels "
            f"({parts['train'][2]}) but test images have {parts['test'][0].shape[1]} "
            f"({parts['test'][2]})")
    return Dataset(
        X_train=parts["train"][0], y_train=parts["train"][1],
        X_test=parts["test"][0], y_test=parts["test"][1],
        name=name, n_classes=n_classes, source=str(directory),
    )


def _candidates(directory, name):
    """A directory may hold the files itself or in a ``name/`` subdirectory."""
    return [directory, directory / name]


def _env_dirs():
    value = os.environ.get(_ENV_VAR, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def _locate_and_load(name, places):
    """Load from the first of ``places`` (list of (label, [dirs])) holding all four files."""
    searched = []
    for label, dirs in places:
        for d in dirs:
            if d.is_dir() and not _missing_files(d):
                return load_idx_dir(d, name=name)
        notes = []
        for d in dirs:
            if not d.is_dir():
                notes.append(f"{d} (no such directory)")
            else:
                notes.append(f"{d} (lacks {', '.join(_missing_files(d))})")
        searched.append(f"{label}: " + "; ".join(notes))
    raise FileNotFoundError(
        f"{name} data set not found. Searched, in order: " + " | ".join(searched)
        + ". " + _how_to_get(name))


def load_fashion_mnist(path=None) -> Dataset:
    """Load Fashion-MNIST (60000 training and 10000 test images of 28x28, 10 classes).

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the four IDX files, or its parent holding
        ``fashion-mnist/``. When given it is the only place searched.
        Otherwise the search goes through ``$MLP_DATA`` (the directory itself
        or ``$MLP_DATA/fashion-mnist``; several directories may be joined with
        ``os.pathsep``), then ``/usr/share/datasets/fashion-mnist`` (Debian
        package ``dataset-fashion-mnist``).

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784), ``X_test`` (10000, 784) float32 in
        ``[0, 1]``, labels int64 in ``[0, 10)``, ``name="fashion-mnist"``.

    Raises
    ------
    FileNotFoundError
        Not found; the message lists the places searched, the expected file
        names, and ``apt-get install dataset-fashion-mnist``.
    ValueError
        The files are malformed (see :func:`load_idx_dir`).
    """
    name = "fashion-mnist"
    if path is not None:
        places = [("path argument", _candidates(_check_path("path", path), name))]
    else:
        places = [(f"${_ENV_VAR}", [c for d in _env_dirs() for c in _candidates(d, name)])]
        places = [p for p in places if p[1]]
        places.append(("Debian package dataset-fashion-mnist", [DEFAULT_FASHION_MNIST_DIR]))
    return _locate_and_load(name, places)


def load_mnist(path=None) -> Dataset:
    """Load MNIST (handwritten digits, 28x28, 10 classes) from IDX files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding the four IDX files (or its parent holding
        ``mnist/``). When not given, ``$MLP_DATA/mnist`` (or ``$MLP_DATA``
        itself when it holds the files) is used; there is no system-wide
        default.

    Returns
    -------
    Dataset
        As :func:`load_fashion_mnist`, with ``name="mnist"``.

    Raises
    ------
    FileNotFoundError
        Not found; the message lists the places searched and the file names.
    ValueError
        The files are malformed (see :func:`load_idx_dir`).
    """
    name = "mnist"
    if path is not None:
        places = [("path argument", _candidates(_check_path("path", path), name))]
    else:
        env = [c for d in _env_dirs() for c in (d / name, d)]
        if not env:
            raise FileNotFoundError(
                f"mnist data set not found: no path given and ${_ENV_VAR} is not set. "
                + _how_to_get(name))
        places = [(f"${_ENV_VAR}", env)]
    return _locate_and_load(name, places)


# --------------------------------------------------------------------------- #
# splits
# --------------------------------------------------------------------------- #
def _stratified_indices(y, fraction, rng):
    """Split ``arange(len(y))`` into (keep, held_out), sorted; held_out has round(fraction*n).

    Systematic sampling within each class: every class gives floor or ceil of
    ``fraction * class_count`` samples to the held-out part, chosen at random,
    and the total is exactly ``round(fraction * n)``.
    """
    n = y.shape[0]
    n_held = int(round(fraction * n))
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # A random rank of each sample within its class.
    perm = rng.permutation(n)
    order = perm[np.argsort(inverse[perm], kind="stable")]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.float64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    offset = rng.random(counts.shape[0])
    key = (rank + offset[inverse]) / counts[inverse]
    # Ties broken at random (perm) so that the choice is reproducible but fair.
    chosen = np.argsort(key, kind="stable")[:n_held]
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def train_validation_split(X, y, validation_fraction, seed=0):
    """Carve a validation set out of training data, stratified by class.

    Use it on the *training* part of a :class:`Dataset` only; the test part
    is kept for the final evaluation and never used for tuning.

    Parameters
    ----------
    X : array_like, shape (n, ...)
        Training features (first axis: samples).
    y : array_like, shape (n,)
        Training labels.
    validation_fraction : float
        Fraction of samples, in the open interval (0, 1), that goes to the
        validation part; ``round(validation_fraction * n)`` samples in all,
        about that fraction of every class.
    seed : int, default 0
        Non-negative seed; the same seed gives the same split.

    Returns
    -------
    X_tr, y_tr, X_val, y_val : numpy.ndarray
        New arrays (copies) with the dtypes of ``X`` and ``y``; the two parts
        are disjoint, cover all samples, and keep the original order.

    Raises
    ------
    ValueError
        ``validation_fraction`` is not in (0, 1), it would leave either part
        empty, or ``X`` and ``y`` have mismatched lengths.
    TypeError
        An argument has the wrong type.
    """
    fraction = _check_fraction("validation_fraction", validation_fraction)
    seed = _check_seed(seed)
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 1:
        raise ValueError("X must have at least one dimension (samples first)")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y lengths differ: {X.shape[0]} vs {y.shape[0]}")
    n = y.shape[0]
    n_val = int(round(fraction * n))
    if n_val == 0 or n_val == n:
        raise ValueError(
            f"validation_fraction={fraction!r} of {n} samples gives {n_val} validation and "
            f"{n - n_val} training samples; both parts must be non-empty")
    rng = np.random.default_rng(seed)
    tr, val = _stratified_indices(y, fraction, rng)
    return X[tr], y[tr], X[val], y[val]


# --------------------------------------------------------------------------- #
# scikit-learn digits
# --------------------------------------------------------------------------- #
def load_digits(test_fraction=0.25, seed=0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes).

    Parameters
    ----------
    test_fraction : float, default 0.25
        Fraction in (0, 1) of the samples held out as the test part
        (stratified by class).
    seed : int, default 0
        Non-negative seed of the split; the same seed gives the same split.

    Returns
    -------
    Dataset
        ``X_train`` / ``X_test`` of shape (n, 64) float32 in ``[0, 1]``
        (pixel / 16), labels int64 in ``[0, 10)``, ``name="digits"``.

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install scikit-learn``, or the
        extra ``numba-mlp[sklearn]``).
    """
    fraction = _check_fraction("test_fraction", test_fraction)
    seed = _check_seed(seed)
    try:
        import sklearn
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as e:
        raise ImportError(
            "load_digits needs scikit-learn: `pip install scikit-learn` "
            "(or install the extra `numba-mlp[sklearn]`)") from e
    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float32) / np.float32(16.0)
    y = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(seed)
    tr, te = _stratified_indices(y, fraction, rng)
    if tr.size == 0 or te.size == 0:
        raise ValueError(f"test_fraction={fraction!r} leaves an empty part")
    return Dataset(
        X_train=X[tr], y_train=y[tr], X_test=X[te], y_test=y[te],
        name="digits", n_classes=10,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
    )


# --------------------------------------------------------------------------- #
# synthetic
# --------------------------------------------------------------------------- #
# Geometry of the synthetic set (see make_synthetic): every class is a mixture
# of _CLUSTERS blobs whose centres are Gaussian points (std _SPREAD) in a random
# _LATENT-dimensional subspace around a shared grey background, so the class
# separation does not depend on n_features; per-pixel noise of std _NOISE.
_LATENT = 16
_CLUSTERS = 3
_SPREAD = 0.7
_NOISE = 0.3
_CHUNK = 2048


def _synthetic_centres(rng, n_features, n_classes):
    background = rng.uniform(0.3, 0.7, size=n_features)
    basis = rng.standard_normal((n_features, _LATENT))
    if n_features >= _LATENT:
        basis = np.linalg.qr(basis)[0]  # orthonormal columns
    else:
        basis /= np.linalg.norm(basis, axis=0, keepdims=True)
    latent = _SPREAD * rng.standard_normal((n_classes * _CLUSTERS, _LATENT))
    return (background + latent @ basis.T).astype(np.float32)


def _synthetic_part(rng, centres, n, n_classes):
    n_features = centres.shape[1]
    y = rng.permutation(np.arange(n, dtype=np.int64) % n_classes)
    cluster = y * _CLUSTERS + rng.integers(0, _CLUSTERS, size=n)
    X = np.empty((n, n_features), dtype=np.float32)
    # Triangular noise from the sum of two random bytes: cheaper than Gaussian
    # noise and as good for this purpose. (a + b - 255) / 255 has variance 1/6.
    scale = np.float32(_NOISE * math.sqrt(6.0) / 255.0)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        block = X[start:stop]
        noise = rng.integers(0, 256, size=block.shape, dtype=np.uint8).astype(np.int16)
        noise += rng.integers(0, 256, size=block.shape, dtype=np.uint8)
        noise -= 255
        np.multiply(noise, scale, out=block)
        block += centres[cluster[start:stop]]
        np.clip(block, 0.0, 1.0, out=block)
    return X, y


def make_synthetic(n_train=60000, n_test=10000, n_features=784, n_classes=10, seed=0) -> Dataset:
    """A learnable synthetic classification set of any size, cheap to generate.

    Each class is a mixture of three blobs whose centres lie at random in a
    16-dimensional subspace around a shared grey background, plus per-pixel
    noise (std 0.3), clipped to ``[0, 1]``. The blobs of different classes
    interleave, so linear models and nearest-class-mean classifiers score
    well above chance but clearly below an MLP with a hidden layer (with the
    defaults, roughly 0.7-0.8 test accuracy for nearest class mean and least
    squares against 0.9 or more for a one-hidden-layer MLP). The class
    separation does not depend on ``n_features``. With the defaults it has
    the shape of Fashion-MNIST (60000 + 10000 samples of 784 features, 10
    classes) and takes about half a second to generate.

    Parameters
    ----------
    n_train : int, default 60000
        Number of training samples (>= 1).
    n_test : int, default 10000
        Number of test samples (>= 1).
    n_features : int, default 784
        Number of features (>= 1).
    n_classes : int, default 10
        Number of classes (>= 2); the classes are balanced (counts differ by
        at most one).
    seed : int, default 0
        Non-negative seed. The same arguments give the same data; the
        training part does not depend on ``n_test`` nor the test part on
        ``n_train``.

    Returns
    -------
    Dataset
        ``X_train`` (n_train, n_features), ``X_test`` (n_test, n_features)
        float32 in ``[0, 1]``, labels int64 in ``[0, n_classes)``,
        ``name="synthetic"``.
    """
    n_train = _check_int("n_train", n_train, minimum=1)
    n_test = _check_int("n_test", n_test, minimum=1)
    n_features = _check_int("n_features", n_features, minimum=1)
    n_classes = _check_int("n_classes", n_classes, minimum=2)
    seed = _check_seed(seed)
    ss_geometry, ss_train, ss_test = np.random.SeedSequence(seed).spawn(3)
    centres = _synthetic_centres(np.random.default_rng(ss_geometry), n_features, n_classes)
    X_train, y_train = _synthetic_part(np.random.default_rng(ss_train), centres, n_train, n_classes)
    X_test, y_test = _synthetic_part(np.random.default_rng(ss_test), centres, n_test, n_classes)
    return Dataset(
        X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test,
        name="synthetic", n_classes=n_classes,
        source=(f"make_synthetic(n_train={n_train}, n_test={n_test}, n_features={n_features}, "
                f"n_classes={n_classes}, seed={seed})"),
    )


# --------------------------------------------------------------------------- #
# dispatch
# --------------------------------------------------------------------------- #
def load_dataset(name, path=None, **kw) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of ``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"synthetic"``
        (case-insensitive; ``_`` may replace ``-``).
    path : str or os.PathLike, optional
        Directory of IDX files, for ``"fashion-mnist"`` and ``"mnist"`` only.
    **kw
        Passed to :func:`load_digits` or :func:`make_synthetic`.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name (the message lists the choices).
    TypeError
        ``path`` or keyword arguments given to a loader that takes none.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {', '.join(DATASETS)}; got {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if key in ("fashion-mnist", "mnist"):
        if kw:
            raise TypeError(f"{key} takes no keyword arguments besides path, got {sorted(kw)}")
        return load_fashion_mnist(path) if key == "fashion-mnist" else load_mnist(path)
    if path is not None:
        raise TypeError(f"path is not used by the {key!r} data set")
    return load_digits(**kw) if key == "digits" else make_synthetic(**kw)
