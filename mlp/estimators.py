"""scikit-learn estimators around ``mlp.MLP`` and ``mlp.trainer``: MLPClassifier, MLPRegressor.

They follow scikit-learn's estimator API (``fit`` / ``predict`` / ``score``,
``get_params`` / ``set_params``, clonable, picklable) so that they work in
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``. Parameter names are
those of ``sklearn.neural_network.MLPClassifier`` where the concept is the
same; the lecture's regularisers are new parameters: ``l1`` and ``l2`` (one
value, or one per weight matrix) and dropout's ``keep_prob`` (one value, or
the input's then each hidden layer's) with ``dropout_mode``.

Differences from scikit-learn's MLP: the optimiser is SGD with momentum
(no Adam) and the learning rate of epoch e is
``learning_rate_init / (1 + lr_decay * e)``; there is no ``alpha`` (use
``l2``; note its loss term is ``l2/2 ||W||^2``, not divided by n).

Needs scikit-learn: ``pip install 'numba-mlp[sklearn]'``.
"""
import math
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.metrics import r2_score
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "mlp.estimators (MLPClassifier, MLPRegressor) needs scikit-learn >= 1.6: "
        "pip install 'numba-mlp[sklearn]'") from exc

import kernels

from . import checks
from .defaults import ESTIMATOR
from .model import MLP
from .config import TrainConfig
from .datasets import train_validation_split
from .trainer import Trainer

__all__ = ["MLPClassifier", "MLPRegressor"]

# Seeds drawn from the estimator's random_state for the network, the trainer and the split:
# scikit-learn's RandomState draws below 2**31 - 1.
_SEED_BOUND = 2**31 - 1


class _BaseMLPEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, the training loop."""

    _output = None  # "softmax" or "identity", set by the subclasses

    def __init__(self, hidden_layer_sizes=ESTIMATOR["hidden_layer_sizes"], *,
                 batch_size=ESTIMATOR["batch_size"], learning_rate_init=ESTIMATOR["learning_rate_init"],
                 momentum=ESTIMATOR["momentum"], lr_decay=ESTIMATOR["lr_decay"], max_iter=ESTIMATOR["max_iter"],
                 tol=ESTIMATOR["tol"], n_iter_no_change=ESTIMATOR["n_iter_no_change"],
                 early_stopping=ESTIMATOR["early_stopping"], validation_fraction=ESTIMATOR["validation_fraction"],
                 l1=ESTIMATOR["l1"], l2=ESTIMATOR["l2"], keep_prob=ESTIMATOR["keep_prob"],
                 dropout_mode=ESTIMATOR["dropout_mode"], random_state=ESTIMATOR["random_state"],
                 verbose=ESTIMATOR["verbose"], backend=ESTIMATOR["backend"], dtype=ESTIMATOR["dtype"]):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.lr_decay = lr_decay
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.l1 = l1
        self.l2 = l2
        self.keep_prob = keep_prob
        self.dropout_mode = dropout_mode
        self.random_state = random_state
        self.verbose = verbose
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------ fitting
    def _batch_size(self, n):
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be a positive int or 'auto'; got {self.batch_size!r}")
            return min(200, n)
        # A batch larger than the data is the whole data, as in scikit-learn.
        return min(checks.check_int("batch_size", self.batch_size, 1), n)

    def _split(self, X, y, rng):
        """(X_tr, y_tr, X_val, y_val): a random validation part, stratified for classifiers."""
        fraction = checks.check_real("validation_fraction", self.validation_fraction, 0, 1,
                                     low_open=True, high_open=True)
        n = X.shape[0]
        n_val = int(round(fraction * n))
        if n_val == 0 or n_val == n:
            raise ValueError(f"validation_fraction={fraction} of {n} samples leaves an empty "
                             "training or validation set; early_stopping needs both")
        if self._output == "softmax":
            return train_validation_split(X, y, fraction, seed=int(rng.randint(_SEED_BOUND)))
        perm = rng.permutation(n)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return X[tr], y[tr], X[val], y[val]

    def _fit_network(self, X, targets, n_outputs):
        hidden = checks.check_hidden_sizes("hidden_layer_sizes", self.hidden_layer_sizes)
        max_iter = checks.check_int("max_iter", self.max_iter, 1)
        n_iter_no_change = checks.check_int("n_iter_no_change", self.n_iter_no_change, 1)
        tol = checks.check_real("tol", self.tol, 0)
        checks.check_real("learning_rate_init", self.learning_rate_init, 0, math.inf, low_open=True)
        rng = check_random_state(self.random_state)
        if self.early_stopping:
            X_tr, y_tr, X_val, y_val = self._split(X, targets, rng)
        else:
            X_tr, y_tr, X_val, y_val = X, targets, None, None
        net = MLP([X.shape[1], *hidden, n_outputs], output=self._output,
                  seed=int(rng.randint(_SEED_BOUND)), dtype=self.dtype, backend=self.backend)
        config = TrainConfig(
            epochs=max_iter, batch_size=self._batch_size(X_tr.shape[0]),
            learning_rate=self.learning_rate_init, momentum=self.momentum, lr_decay=self.lr_decay,
            l2=self.l2, l1=self.l1, keep_prob=self.keep_prob, dropout_mode=self.dropout_mode,
            early_stopping=bool(self.early_stopping), patience=n_iter_no_change, tol=tol,
            monitor="val_accuracy" if self._output == "softmax" else "val_loss",
            seed=int(rng.randint(_SEED_BOUND)))

        validation_scores = []
        best_train_loss = [np.inf]
        epochs_without_improvement = [0]

        def callback(record):
            if X_val is not None:
                validation_scores.append(self._validation_score(net, record, X_val, y_val))
            loss = record["train_loss"]
            if self.verbose:
                line = f"Iteration {record['epoch']}, loss = {loss:.8f}"
                if X_val is not None:
                    line += f", validation score = {validation_scores[-1]:.6f}"
                print(line)
            if self.early_stopping:
                return False  # the trainer watches the validation set
            # Without a validation set, stop as scikit-learn does: when the
            # training loss has not improved by tol for n_iter_no_change epochs.
            if loss > best_train_loss[0] - tol:
                epochs_without_improvement[0] += 1
            else:
                epochs_without_improvement[0] = 0
            best_train_loss[0] = min(best_train_loss[0], loss)
            return epochs_without_improvement[0] >= n_iter_no_change

        history = Trainer(net, config).fit(X_tr, y_tr, X_val=X_val, y_val=y_val, callback=callback)
        self.net_ = net
        self.history_ = history
        self.n_iter_ = len(history.records)
        self.loss_curve_ = [float(r["train_loss"]) for r in history.records]
        if self.early_stopping:
            self.validation_scores_ = validation_scores
            self.best_validation_score_ = max(validation_scores) if validation_scores else None
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            finite = [l for l in self.loss_curve_ if np.isfinite(l)]
            self.best_loss_ = min(finite) if finite else None
        return self

    def _validation_score(self, net, record, X_val, y_val):
        raise NotImplementedError

    def _check_predict_input(self, X):
        check_is_fitted(self, "net_")
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    # ------------------------------------------------------------ pickling
    # An MLP refers to its backend module, which pickle cannot store: keep the
    # network as its description and host copies of the parameters instead.
    def __getstate__(self):
        # A copy: BaseEstimator.__getstate__ may hand back the live __dict__.
        state = dict(super().__getstate__())
        net = state.get("net_")
        if isinstance(net, MLP):
            weights, biases = net.get_parameters()
            state["net_"] = {"layer_sizes": net.layer_sizes, "output": net.output, "init": net.init,
                             "dtype": np.dtype(net.dtype).name, "backend": net.backend,
                             "weights": weights, "biases": biases}
        return state

    def __setstate__(self, state):
        spec = state.get("net_")
        if isinstance(spec, dict):
            backend = spec["backend"]
            if backend not in kernels.available_backends(include_simulator=True):
                warnings.warn(f"{type(self).__name__}: backend {backend!r} is unavailable here; "
                              "the unpickled network runs on 'cpu'", RuntimeWarning, stacklevel=2)
                backend = "cpu"
            net = MLP(spec["layer_sizes"], output=spec["output"], init="zeros",
                      dtype=spec["dtype"], backend=backend)
            net.set_parameters(spec["weights"], spec["biases"])
            state = dict(state, net_=net)
        super().__setstate__(state)


class MLPClassifier(ClassifierMixin, _BaseMLPEstimator):
    """A multilayer perceptron classifier: ReLU hidden layers, softmax output, cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Width of each hidden layer; ``()`` gives softmax regression.
    batch_size : int or "auto", default 64
        Mini-batch size; "auto" is ``min(200, n_samples)``. Clipped to the
        number of training samples.
    learning_rate_init : float, default 0.05
        SGD learning rate of the first epoch.
    momentum : float in [0, 1), default 0.9
    lr_decay : float >= 0, default 0.0
        The learning rate of epoch e is ``learning_rate_init / (1 + lr_decay * e)``.
    max_iter : int, default 200
        Maximum number of epochs.
    tol : float, default 1e-4
        Improvement below ``tol`` (training loss, or the validation score with
        early stopping) does not count as improvement.
    n_iter_no_change : int, default 10
        Epochs without improvement before training stops.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified),
        stop when the validation accuracy stalls and keep the best epoch's
        parameters.
    validation_fraction : float in (0, 1), default 0.1
        Used only with ``early_stopping``.
    l1, l2 : float or sequence of float, default 0.0
        Penalties ``l1 |W|`` and ``l2/2 ||W||^2``, one value or one per
        weight matrix (biases are not penalised).
    keep_prob : float or sequence of float, default 1.0
        Dropout keep probability of the input then each hidden layer (never
        the output); 1.0 is no dropout.
    dropout_mode : {"per_sample", "per_batch"}, default "per_sample"
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the shuffling, dropout and the validation split.
    verbose : bool, default False
        Print the loss after every epoch.
    backend : {"cpu", "numpy", "cuda", "auto"}, default "cpu"
        "cpu" by default so that results are reproducible and small fits start
        fast; "auto" picks a usable GPU.
    dtype : {"float32", "float64"}, default "float64"
        Precision of the network. float64, as scikit-learn computes: predictions
        then do not depend on how many rows are predicted at once. float32 is
        faster on large data (its rounding, ~1e-7, depends on the batch of rows).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit`` (any type numpy can sort: ints, strings, ...).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    net_ : mlp.MLP
        The trained network (its outputs are in the order of ``classes_``).
    history_ : mlp.trainer.History
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Training loss of every epoch.
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy of every epoch (early stopping only).
    best_validation_score_ : float or None
    """

    _output = "softmax"

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,); returns self."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y; "
                             f"got only one class: {self.classes_[0]!r}")
        return self._fit_network(X, encoded.reshape(-1).astype(np.int64), self.classes_.shape[0])

    def _validation_score(self, net, record, X_val, y_val):
        accuracy = record.get("val_accuracy")
        if accuracy is None:
            accuracy = float(np.mean(net.predict(X_val) == y_val))
        return float(accuracy)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in the order of ``classes_``."""
        X = self._check_predict_input(X)
        proba = self.net_.forward(X).astype(np.float64)
        # Rows of a float32 softmax sum to 1 only to ~1e-7; renormalise in float64.
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict_log_proba(self, X):
        """Logarithm of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample, shape (n_samples,), labels from ``classes_``."""
        X = self._check_predict_input(X)
        return self.classes_[self.net_.forward(X).argmax(axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLPEstimator):
    """A multilayer perceptron regressor: ReLU hidden layers, identity output, squared error.

    Parameters are those of :class:`MLPClassifier`; with ``early_stopping``
    the validation part is a random (unstratified) one and the trainer
    watches the validation loss.

    Attributes
    ----------
    n_features_in_ : int
    n_outputs_ : int
    net_ : mlp.MLP
    history_ : mlp.trainer.History
    n_iter_ : int
    loss_curve_ : list of float
        Training loss of every epoch, ``(1/2n) sum ||y_hat - y||^2`` plus penalties.
    best_loss_ : float or None
    validation_scores_ : list of float or None
        Validation R^2 of every epoch (early stopping only).
    best_validation_score_ : float or None
    """

    _output = "identity"

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or (n_samples, n_outputs)."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        self._y_was_1d = y.ndim == 1
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        self.n_outputs_ = targets.shape[1]
        return self._fit_network(X, targets, self.n_outputs_)

    def _validation_score(self, net, record, X_val, y_val):
        return float(r2_score(y_val, net.forward(X_val)))

    def predict(self, X):
        """Predicted targets (float64), shape (n_samples,) or (n_samples, n_outputs) as ``y`` was in ``fit``."""
        X = self._check_predict_input(X)
        out = self.net_.forward(X).astype(np.float64, copy=False)
        return out.ravel() if self._y_was_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
