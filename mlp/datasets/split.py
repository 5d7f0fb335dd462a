"""A validation set carved out of training data, stratified by class (also the digits' test split)."""
import numpy as np

from ..checks import check_int, check_real


def stratified_indices(y, fraction, rng):
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
    fraction = check_real("validation_fraction", validation_fraction, 0, 1, low_open=True, high_open=True)
    seed = check_int("seed", seed, minimum=0)
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
    tr, val = stratified_indices(y, fraction, rng)
    return X[tr], y[tr], X[val], y[val]
