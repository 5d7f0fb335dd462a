"""The search's input: a Dataset, a data set's name or arrays, split once into training and validation.

Trials see only the split; the test part is looked up once, at the end, by
:meth:`SearchData.test_arrays`. The fingerprint (a hash of the training
arrays) is part of every trial's journal key.
"""
import dataclasses
import hashlib

import numpy as np

from ..datasets import load_dataset, train_validation_split


@dataclasses.dataclass
class SearchData:
    """The split ``(X_tr, y_tr, X_val, y_val)``, where the test part is, and what names the data."""

    split: tuple
    test: object  # (X_test, y_test), an object with X_test and y_test, or None
    name: str
    n_classes: int
    fingerprint: str
    class_names: tuple = None  # a Dataset's, saved with the best model; None for arrays

    @property
    def n_features(self):
        return self.split[0].shape[1]

    def test_arrays(self):
        """(X_test, y_test), or None without a test part; a Dataset's test arrays are read here."""
        if self.test is None or isinstance(self.test, tuple):
            return self.test
        return self.test.X_test, self.test.y_test


def search_data(data, validation_fraction, seed):
    """:class:`SearchData` of ``data`` (see :func:`mlp.search.search`), split with ``seed``."""
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 4):
            raise ValueError("data must be a Dataset, a data set name, (X_train, y_train) or "
                             f"(X_train, y_train, X_test, y_test); got a sequence of {len(data)}")
        X, y = data[0], data[1]
        test = tuple(data[2:]) or None
        name = "arrays"
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or not np.issubdtype(y_arr.dtype, np.integer):
            raise TypeError(f"y_train must be 1-D integer class labels; got dtype {y_arr.dtype}, "
                            f"shape {y_arr.shape}")
        n_classes = int(y_arr.max()) + 1
        if test is not None:
            n_classes = max(n_classes, int(np.max(test[1])) + 1)
    elif all(hasattr(data, a) for a in ("X_train", "y_train", "n_classes")):
        X, y = data.X_train, data.y_train
        # The test arrays are looked up only at the end (``test_arrays``).
        test = data
        name = getattr(data, "name", type(data).__name__)
        n_classes = int(data.n_classes)
    else:
        raise TypeError("data must be an mlp.datasets.Dataset, a data set name, (X_train, y_train) or "
                        f"(X_train, y_train, X_test, y_test); got {type(data).__name__}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X_train must be 2-D (n_samples, n_features); got shape {X.shape}")
    split = train_validation_split(X, y, validation_fraction, seed=seed)
    return SearchData(split, test, name, n_classes, _fingerprint(X, y), getattr(data, "class_names", None))


def _fingerprint(X, y):
    digest = hashlib.sha256()
    for array in (X, y):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]
