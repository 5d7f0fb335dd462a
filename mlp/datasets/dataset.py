"""``Dataset``: a classification data set's training and test parts, checked when built."""
import dataclasses

import numpy as np

from ..checks import check_int, numeric_array, to_dtype


def _class_names(names, n_classes):
    """``names`` as a tuple of ``n_classes`` str; None gives "0" .. str(n_classes - 1)."""
    if names is None:
        return tuple(str(k) for k in range(n_classes))
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(f"Dataset: class_names must be a sequence of str, one per class; got {names!r}")
    names = tuple(names)
    if len(names) != n_classes:
        raise ValueError(f"Dataset: class_names needs one name per class ({n_classes}); got {len(names)}")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"Dataset: class_names must hold str; got {name!r} in {names!r}")
    return names


def _checked_part(part, X, y, n_classes):
    """(X, y) of the training or test part: X (n >= 1, d >= 1) finite float32, y (n,) int64 in [0, n_classes)."""
    X = numeric_array(f"X_{part}", X)
    if X.ndim != 2:
        raise ValueError(f"X_{part} must be 2-D (n, d), got shape {X.shape}")
    if 0 in X.shape:
        raise ValueError(f"X_{part} is empty: shape {X.shape}")
    y = numeric_array(f"y_{part}", y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y_{part} must have shape ({X.shape[0]},) to match X_{part}, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y_{part} must hold integers, got {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y_{part} holds labels outside [0, {n_classes}): min {y.min()}, max {y.max()}")
    return to_dtype(f"X_{part}", X, np.float32), y.astype(np.int64, copy=False)


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
    class_names : tuple of str, length n_classes
        The name of each class, label order (Fashion-MNIST's "T-shirt/top",
        "Trouser"...). Given as any sequence of str, or None (the default) for
        the labels themselves: "0", "1", ..., str(n_classes - 1).

    The arrays are checked when the object is built, each error naming the
    array (``mlp.checks.numeric_array``): no part is empty, X is finite in
    float32 (NaN, inf or a value beyond float32's range is refused with its row
    and column; complex values are never cut to their real part), y holds
    integers in range. Arrays of another dtype are converted to ``float32`` /
    ``int64``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    source: str
    class_names: tuple = None

    def __post_init__(self):
        n_classes = check_int("n_classes", self.n_classes, minimum=1)
        object.__setattr__(self, "n_classes", n_classes)
        if not isinstance(self.name, str) or not isinstance(self.source, str):
            raise TypeError("Dataset: name and source must be str")
        object.__setattr__(self, "class_names", _class_names(self.class_names, n_classes))
        n_features = None
        for part in ("train", "test"):
            try:
                X, y = _checked_part(part, getattr(self, "X_" + part), getattr(self, "y_" + part), n_classes)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"Dataset: {exc}") from None
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
