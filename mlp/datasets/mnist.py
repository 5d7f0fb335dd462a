"""Fashion-MNIST and MNIST: a directory of four IDX files, where it is looked for, how it is loaded.

:func:`load_idx_dir` loads one directory; :func:`load_fashion_mnist` and
:func:`load_mnist` look for it (the ``path`` argument, ``$MLP_DATA``, the
Debian package's directory) and say where they looked when it is not found.
"""
import os
from pathlib import Path

import numpy as np

from ..checks import check_path
from .dataset import Dataset
from .idx import read_idx_file

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files.
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The four standard file names of an MNIST-style directory (each may end in ``.gz``).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Fashion-MNIST's ten classes, label order (Xiao, Rasul and Vollgraf, 2017).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

#: The environment variable naming directories that hold the data sets.
ENV_VAR = "MLP_DATA"


def _idx_file(directory, stem):
    """Path of ``stem`` or ``stem.gz`` in ``directory`` (raw preferred), else None.

    Anything there but a directory counts: reading a FIFO or a device says what it is (``read_idx``).
    """
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.exists() and not candidate.is_dir():
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
                 f"directory and pass it as `path` or set ${ENV_VAR} to it.")
    else:
        text += (f" Put the four files of the {name} data set into a directory and pass it "
                 f"as `path` or set ${ENV_VAR} to its parent (holding {name}/).")
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


def load_idx_dir(directory, name="fashion-mnist", class_names=None) -> Dataset:
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
    class_names : sequence of 10 str, optional
        The names of the classes; by default :data:`FASHION_MNIST_CLASSES` when
        ``name`` is ``"fashion-mnist"``, else the digits "0" .. "9" (MNIST's).

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784) and ``X_test`` (10000, 784) float32 in
        ``[0, 1]`` (pixel / 255) for (Fashion-)MNIST, labels int64 in
        ``[0, 10)``; ``n_classes`` is 10, ``source`` the directory and
        ``class_names`` as above.

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
    directory = check_path("directory", directory)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if class_names is None and name == "fashion-mnist":
        class_names = FASHION_MNIST_CLASSES
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
        X = _images_to_features(read_idx_file(img_path), img_path)
        y = _labels(read_idx_file(lbl_path), lbl_path, n_classes)
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
        name=name, n_classes=n_classes, source=str(directory), class_names=class_names,
    )


def _candidates(directory, name):
    """A directory may hold the files itself or in a ``name/`` subdirectory."""
    return [directory, directory / name]


def _env_dirs():
    value = os.environ.get(ENV_VAR, "")
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
        Otherwise, when ``$MLP_DATA`` is set, only there (the directory itself
        or ``$MLP_DATA/fashion-mnist``; several directories may be joined with
        ``os.pathsep``); when it is not, ``/usr/share/datasets/fashion-mnist``
        (Debian package ``dataset-fashion-mnist``).

    Returns
    -------
    Dataset
        ``X_train`` (60000, 784), ``X_test`` (10000, 784) float32 in
        ``[0, 1]``, labels int64 in ``[0, 10)``, ``name="fashion-mnist"``,
        ``class_names`` :data:`FASHION_MNIST_CLASSES`.

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
        places = [("path argument", _candidates(check_path("path", path), name))]
    else:
        env_dirs = _env_dirs()
        # A $MLP_DATA that is set names where the data are: without them there, training on the
        # Debian package's copy would be training on data the user did not point to.
        places = ([(f"${ENV_VAR}", [c for d in env_dirs for c in _candidates(d, name)])] if env_dirs else
                  [("Debian package dataset-fashion-mnist", [DEFAULT_FASHION_MNIST_DIR])])
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
        As :func:`load_fashion_mnist`, with ``name="mnist"`` and ``class_names``
        "0" .. "9".

    Raises
    ------
    FileNotFoundError
        Not found; the message lists the places searched and the file names.
    ValueError
        The files are malformed (see :func:`load_idx_dir`).
    """
    name = "mnist"
    if path is not None:
        places = [("path argument", _candidates(check_path("path", path), name))]
    else:
        env = [c for d in _env_dirs() for c in (d / name, d)]
        if not env:
            raise FileNotFoundError(
                f"mnist data set not found: no path given and ${ENV_VAR} is not set. "
                + _how_to_get(name))
        places = [(f"${ENV_VAR}", env)]
    return _locate_and_load(name, places)
