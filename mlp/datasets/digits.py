"""scikit-learn's bundled 8x8 handwritten digits as a :class:`Dataset` (scikit-learn is imported on use)."""
import numpy as np

from ..checks import check_int, check_real
from .dataset import Dataset
from .split import stratified_indices


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
        (pixel / 16), labels int64 in ``[0, 10)``, ``name="digits"``,
        ``class_names`` "0" .. "9".

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install scikit-learn``, or the
        extra ``numba-mlp[sklearn]``).
    """
    fraction = check_real("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    seed = check_int("seed", seed, minimum=0)
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
    tr, te = stratified_indices(y, fraction, rng)
    if tr.size == 0 or te.size == 0:
        raise ValueError(f"test_fraction={fraction!r} leaves an empty part")
    return Dataset(
        X_train=X[tr], y_train=y[tr], X_test=X[te], y_test=y[te],
        name="digits", n_classes=10,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
    )
