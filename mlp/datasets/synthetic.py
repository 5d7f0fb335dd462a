"""A learnable synthetic classification set of any size, cheap to generate (:func:`make_synthetic`)."""
import math

import numpy as np

from ..checks import check_int
from .dataset import Dataset

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
        ``name="synthetic"``, ``class_names`` "0" .. str(n_classes - 1).
    """
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=1)
    n_features = check_int("n_features", n_features, minimum=1)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    seed = check_int("seed", seed, minimum=0)
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
