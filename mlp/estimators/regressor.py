"""MLPRegressor: scikit-learn's, on this library's kernels.

``loss="squared_error"``: identity outputs, half the squared error; ``"poisson"``:
exponential outputs, half the Poisson deviance (y >= 0). Any number of outputs.
"""
import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d, validate_data

from ..defaults import ESTIMATOR
from .base import BaseMLP, stochastic_solver


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, with the lecture's regularisers.

    Its defaults are scikit-learn's (``mlp.defaults.ESTIMATOR``: Adam, (100,), up to 200 epochs,
    the input's float dtype), not the library's (``mlp.defaults.TRAINING``, what ``MLP.fit`` and
    ``mlp train`` use): the estimator is a drop-in for scikit-learn's MLPRegressor.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        Half the squared error, summed over the outputs and averaged over the
        samples; or half the Poisson deviance with an exponential output (y >= 0).
    Every other parameter is :class:`mlp.MLPClassifier`'s (early stopping
    scores R^2 on an unstratified validation part), ``threads`` included (not
    a scikit-learn parameter: BLAS's and numba's threads, "auto" by default).

    Attributes
    ----------
    As :class:`mlp.MLPClassifier`'s but ``classes_``; ``out_activation_`` is
    "identity" or "exp", ``validation_scores_`` are R^2 scores.
    """

    _parameter_constraints = {**BaseMLP._parameter_constraints, "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss=ESTIMATOR["loss"], hidden_layer_sizes=ESTIMATOR["hidden_layer_sizes"],
                 activation=ESTIMATOR["activation"], *, solver=ESTIMATOR["solver"], alpha=ESTIMATOR["alpha"],
                 batch_size=ESTIMATOR["batch_size"], learning_rate=ESTIMATOR["learning_rate"],
                 learning_rate_init=ESTIMATOR["learning_rate_init"], power_t=ESTIMATOR["power_t"],
                 max_iter=ESTIMATOR["max_iter"], shuffle=ESTIMATOR["shuffle"], random_state=ESTIMATOR["random_state"],
                 tol=ESTIMATOR["tol"], verbose=ESTIMATOR["verbose"], warm_start=ESTIMATOR["warm_start"],
                 momentum=ESTIMATOR["momentum"], nesterovs_momentum=ESTIMATOR["nesterovs_momentum"],
                 early_stopping=ESTIMATOR["early_stopping"], validation_fraction=ESTIMATOR["validation_fraction"],
                 beta_1=ESTIMATOR["beta_1"], beta_2=ESTIMATOR["beta_2"], epsilon=ESTIMATOR["epsilon"],
                 n_iter_no_change=ESTIMATOR["n_iter_no_change"], max_fun=ESTIMATOR["max_fun"],
                 l1=ESTIMATOR["l1"], l2=ESTIMATOR["l2"], keep_prob=ESTIMATOR["keep_prob"],
                 dropout_mode=ESTIMATOR["dropout_mode"], backend=ESTIMATOR["backend"], dtype=ESTIMATOR["dtype"],
                 threads=ESTIMATOR["threads"]):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, l1=l1, l2=l2,
            keep_prob=keep_prob, dropout_mode=dropout_mode, backend=backend, dtype=dtype, threads=threads)
        self.loss = loss

    def fit(self, X, y, sample_weight=None):
        """Fit to ``X`` (n_samples, n_features), dense or sparse, and targets ``y`` (n_samples,) or
        (n_samples, n_outputs); returns self. ``sample_weight``: None or (n_samples,) weights of each sample's
        loss, as scikit-learn's (engines "cpu" and "numpy")."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current weights and optimizer state."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(f"loss='poisson' needs targets y >= 0; the smallest is {np.min(y)}")
        return X, y.reshape(y.shape[0], -1)

    def _output_layer(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _score_targets(self, X, targets, sample_weight=None):
        """R^2 of the predictions: early stopping's score."""
        return float(r2_score(targets, self.net_.forward(X), sample_weight=sample_weight))

    def predict(self, X):
        """Predicted targets, (n_samples,) for one output, else (n_samples, n_outputs), in the network's dtype."""
        y_pred = self._forward_pass_fast(X)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred
