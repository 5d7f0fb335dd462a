"""MLPClassifier: scikit-learn's, on this library's kernels.

The outputs are scikit-learn's: softmax over the classes for multiclass labels,
one logistic unit for two classes, one logistic unit per label for a multilabel
indicator matrix (binary cross-entropy). Labels may be anything numpy can sort.
"""
import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from .base import BaseMLP, stochastic_solver


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, with the lecture's regularisers.

    Its defaults are scikit-learn's (``mlp.defaults.ESTIMATOR``: Adam, (100,), up to 200 epochs,
    the input's float dtype), not the library's (``mlp.defaults.TRAINING``, what ``MLP.fit`` and
    ``mlp train`` use): the estimator is a drop-in for scikit-learn's MLPClassifier.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default (100,)
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        The hidden layers' activation.
    solver : {"lbfgs", "sgd", "adam"}, default "adam"
    alpha : float >= 0, default 0.0001
        L2 penalty (alpha/2)||W||^2 of every weight matrix, divided by the
        samples of the minibatch (scikit-learn's scaling).
    batch_size : int or "auto", default "auto"
        ``min(200, n_samples)`` for "auto"; clipped to the samples (with a warning).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The schedule of "sgd": constant; ``learning_rate_init / (t + 1) ** power_t``
        (t the samples seen); or divided by 5 each time the loss (or validation
        score) stalls for ``n_iter_no_change`` epochs.
    learning_rate_init : float > 0, default 0.001
    power_t : float >= 0, default 0.5
    max_iter : int >= 1, default 200
        Epochs of "sgd" / "adam"; iterations of "lbfgs".
    shuffle : bool, default True
    random_state : int, RandomState or None, default None
        The initial weights, the validation split, the shuffles (as scikit-learn
        draws them) and, only with dropout, dropout's seed.
    tol : float >= 0, default 1e-4
    verbose : bool, default False
    warm_start : bool, default False
        Continue from the fitted weights and optimizer state.
    momentum : float in [0, 1], default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for a binary
        problem), stop when its accuracy stalls, keep the best epoch's weights.
    validation_fraction : float in [0, 1), default 0.1
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float > 0, default 1e-8
    n_iter_no_change : int >= 1 or inf, default 10
    max_fun : int >= 1, default 15000
        Loss evaluations of "lbfgs".
    l1, l2 : float >= 0 or one per weight matrix, default 0.0
        The lecture's beta(j) and alpha(j): penalties ``l1 |W|`` and
        ``l2/2 ||W||^2`` added to the mean loss (not divided by the batch).
    keep_prob : float in (0, 1] or one per non-output layer, default 1.0
        Dropout's keep probability of the input, then each hidden layer; 1.0
        is none. Stochastic solvers only.
    dropout_mode : {"per_sample", "per_batch"}, default "per_sample"
        A mask per sample, or the lecture's reduced network per minibatch.
    backend : {"cpu", "numpy", "cuda", "auto"}, default "cpu"
    dtype : {None, "float32", "float64"}, default None
        The network's precision; None follows the input as scikit-learn does
        (float32 stays float32, anything else becomes float64).
    threads : "auto", int >= 1 or None, default "auto"
        Not a scikit-learn parameter: BLAS's and numba's threads during fit
        (``mlp.threads``). "auto" times a few steps with 1 thread and with
        every usable core, keeps the faster and times again after an epoch far
        slower than the previous one (``partial_fit`` continues the last
        call's choice); an int fixes the count, and only an int makes fits
        bit-reproducible (the count changes the order of BLAS's sums); None
        leaves the counts as they are. ``net_.metadata["threads"]`` records
        the setting and the counts used.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
        The last epoch's mean minibatch loss, penalties included (lbfgs: the final loss).
    best_loss_ : float or None
    loss_curve_ : list of float
        ``loss_`` of every epoch (stochastic solvers).
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    t_ : int
        Samples seen by the solver.
    coefs_ : list of ndarray (fan_in, fan_out)
        Views of the network's weights (copies on "cuda"); assignable.
    intercepts_ : list of ndarray (fan_out,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X had string column names.
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : {"softmax", "logistic"}
    net_ : mlp.MLP
        The trained network.
    """

    def fit(self, X, y, sample_weight=None):
        """Fit to ``X`` (n_samples, n_features), dense or sparse, and labels ``y`` (n_samples,) or an indicator
        matrix (n_samples, n_labels); returns self. ``sample_weight``: None or (n_samples,) weights of each
        sample's loss, as scikit-learn's (engines "cpu" and "numpy")."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; the first call needs ``classes`` (every label, or None for multilabel y)."""
        if not hasattr(self, "classes_"):
            if classes is None and not type_of_target(y).startswith("multilabel"):
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if classes is None else classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={classes}` is not the same as on last call to partial_fit, was: "
                             f"{self.classes_}")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                                     f"call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        indicators = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return X, indicators.argmax(axis=1).astype(np.int64)  # the softmax output trains on class indices
        return X, indicators.astype(np.float64)

    def _n_outputs(self, targets):
        return len(self.classes_) if targets.ndim == 1 else targets.shape[1]

    def _output_layer(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _score_targets(self, X, targets, sample_weight=None):
        """Accuracy on training-form targets (class indices or indicators): early stopping's score."""
        out = self.net_.predict(X)
        if targets.ndim == 2:
            targets = targets.astype(np.int64)
        return float(accuracy_score(targets, out, sample_weight=sample_weight))

    def predict(self, X):
        """The predicted classes, (n_samples,), or an indicator matrix (n_samples, n_labels) for multilabel."""
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) in the network's dtype, columns in the order of classes_."""
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
