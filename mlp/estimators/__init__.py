"""scikit-learn's MLPClassifier and MLPRegressor on this library's kernels: change one import line.

>>> from mlp import MLPClassifier          # was: from sklearn.neural_network import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(256,), solver="adam", alpha=1e-4).fit(X, y)

The parameters, their defaults, their validation (the same errors for the same bad
values), the fitted attributes and the training loop are scikit-learn's
(``sklearn.neural_network``, version 1.9); the minibatch loop runs on a training
engine (``mlp.engines``) and the network is an ``mlp.MLP`` (``net_``). Beside
scikit-learn's parameters, the lecture's: ``l1`` and ``l2`` per weight matrix (its
beta(j), alpha(j), not divided by the batch), dropout's ``keep_prob`` and
``dropout_mode``, ``backend``, ``dtype`` and ``threads`` (BLAS's and numba's
thread count, "auto" by default: ``mlp.threads``).

==================  ==============================================================
module              what it holds
==================  ==============================================================
``base``            the parameters and their constraints, the network, fitted
                    attributes (``coefs_``: views of the weights), pickling
``solvers``         scikit-learn's epoch loop on an engine (sgd, adam) and L-BFGS
``classifier``      MLPClassifier: labels, binary and multilabel outputs
``regressor``       MLPRegressor: squared error or Poisson
==================  ==============================================================

Needs scikit-learn: ``pip install 'numba-mlp[sklearn]'``.
"""
try:
    import sklearn  # noqa: F401  (the estimators are scikit-learn's: without it, say what to install)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without scikit-learn
    raise ImportError("mlp.estimators (MLPClassifier, MLPRegressor) needs scikit-learn >= 1.6: "
                      "pip install 'numba-mlp[sklearn]'") from exc

from .classifier import MLPClassifier  # noqa: E402
from .regressor import MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor"]
