"""What MLPClassifier and MLPRegressor share: parameters, their checks, the network, fitted attributes.

``BaseMLP.fit`` follows scikit-learn's ``BaseMultilayerPerceptron._fit`` step for
step: the parameters are validated against the same constraints (scikit-learn's
``_parameter_constraints``, plus ours), the random state is consumed in the same
order (the initial weights, Glorot-uniform as scikit-learn draws them, then the
validation split, then one shuffle per epoch), so that the same data and
``random_state`` start from the same weights and visit the same minibatches.
The solvers are in ``mlp.estimators.solvers``.

The network is ``net_``, an ``mlp.MLP`` whose weights are (fan_out, fan_in);
``coefs_`` shows them in scikit-learn's orientation (fan_in, fan_out) as
transposed *views* on the host backends (writing into ``coefs_[0]`` changes the
model) and as copies on "cuda"; assigning ``coefs_`` or ``intercepts_`` sets
the parameters.

Input errors are scikit-learn's (complex, None, NaN: the messages its estimator
checks ask for), with two exceptions that are ours: a ragged list is named with
its rows ("X is a ragged list: row 0 has 3 values, row 1 has 2 values") instead
of NumPy's "inhomogeneous shape", and a value of X or y that is finite in float64
but beyond a float32 network's range is refused with its row and column instead
of turning into inf and a diverged fit.
"""
import contextlib
import numbers
import warnings

import numpy as np

import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import kernels

from .. import checks
from ..defaults import ESTIMATOR
from ..evaluation import outputs_in_chunks
from ..model import MLP
from ..threads import check_threads
from . import solvers

# Seeds drawn from the estimator's random state (dropout's generator): below 2**31 - 1, as RandomState draws.
SEED_BOUND = 2**31 - 1


class BaseMLP(BaseEstimator):
    """The parameters and the fit of both estimators; subclasses set the output and the targets.

    Subclasses implement ``_validate_input(X, y, incremental, reset) -> (X, targets)``
    (targets: int64 class indices for a softmax output, else a float matrix
    (n, n_outputs)), ``_output_layer()`` (the net's output: ``out_activation_``)
    and ``_score_targets(X, targets)`` (the validation score of early stopping).
    """

    _parameter_constraints = {
        **ScikitLearnMLPClassifier._parameter_constraints,
        "l1": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "l2": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "keep_prob": [Interval(numbers.Real, 0, 1, closed="right"), "array-like"],
        "dropout_mode": [StrOptions({"per_sample", "per_batch"})],
        "backend": [StrOptions(set(kernels.BACKENDS) | {"auto"})],
        "dtype": "no_validation",  # checked by mlp.checks.check_dtype: a name or a NumPy type
        "threads": "no_validation",  # checked by mlp.threads.check_threads: "auto", an int >= 1 or None
    }

    def __init__(self, hidden_layer_sizes=ESTIMATOR["hidden_layer_sizes"], activation=ESTIMATOR["activation"], *,
                 solver=ESTIMATOR["solver"], alpha=ESTIMATOR["alpha"], batch_size=ESTIMATOR["batch_size"],
                 learning_rate=ESTIMATOR["learning_rate"], learning_rate_init=ESTIMATOR["learning_rate_init"],
                 power_t=ESTIMATOR["power_t"], max_iter=ESTIMATOR["max_iter"], shuffle=ESTIMATOR["shuffle"],
                 random_state=ESTIMATOR["random_state"], tol=ESTIMATOR["tol"], verbose=ESTIMATOR["verbose"],
                 warm_start=ESTIMATOR["warm_start"], momentum=ESTIMATOR["momentum"],
                 nesterovs_momentum=ESTIMATOR["nesterovs_momentum"], early_stopping=ESTIMATOR["early_stopping"],
                 validation_fraction=ESTIMATOR["validation_fraction"], beta_1=ESTIMATOR["beta_1"],
                 beta_2=ESTIMATOR["beta_2"], epsilon=ESTIMATOR["epsilon"],
                 n_iter_no_change=ESTIMATOR["n_iter_no_change"], max_fun=ESTIMATOR["max_fun"],
                 l1=ESTIMATOR["l1"], l2=ESTIMATOR["l2"], keep_prob=ESTIMATOR["keep_prob"],
                 dropout_mode=ESTIMATOR["dropout_mode"], backend=ESTIMATOR["backend"], dtype=ESTIMATOR["dtype"],
                 threads=ESTIMATOR["threads"]):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.l1 = l1
        self.l2 = l2
        self.keep_prob = keep_prob
        self.dropout_mode = dropout_mode
        self.backend = backend
        self.dtype = dtype
        self.threads = threads

    # ------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        check_threads(self.threads)
        hidden = list(self.hidden_layer_sizes) if hasattr(self.hidden_layer_sizes, "__iter__") \
            else [self.hidden_layer_sizes]
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        first_pass = not hasattr(self, "net_") or (not self.warm_start and not incremental)
        checks.warn_if_unscaled("X", X)  # before validation, which converts it to floats
        with ragged_named(X=X, y=y):
            X, targets = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            # scikit-learn's own check (the same errors), then float64 for the engines
            sample_weight = _check_sample_weight(sample_weight, X).astype(np.float64)
        dtype = X.dtype if self.dtype is None else checks.check_dtype(self.dtype)
        # scikit-learn's validation left X and y finite; in a float32 network a float64 value may not be
        X = checks.to_dtype("X", dense(X), dtype)
        if targets.dtype != np.int64:  # class indices stay integers; indicators and targets take the net's dtype
            targets = checks.to_dtype("y", targets, dtype)
        n_outputs = self._n_outputs(targets)
        layer_units = [X.shape[1], *hidden, n_outputs]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, dtype)
        elif list(self.net_.layer_sizes) != layer_units or self.net_.activation != self.activation:
            raise ValueError(f"warm_start and partial_fit continue the fitted network {self.net_.layer_sizes} "
                             f"({self.net_.activation}); this call asks for {layer_units} ({self.activation}): "
                             "set warm_start=False to start again")
        if self.solver == "lbfgs":
            solvers.fit_lbfgs(self, X, targets, sample_weight)
        else:
            solvers.fit_stochastic(self, X, targets, incremental, sample_weight)
        return self

    def _initialize(self, layer_units, dtype):
        """The network with scikit-learn's initial weights, and the attributes of a first fit."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_layer()
        net = MLP(layer_units, output=self.out_activation_, activation=self.activation, init="zeros",
                  dtype=dtype, backend=self.backend)
        # Glorot-uniform, drawn as scikit-learn draws it: per layer the (fan_in, fan_out) weights, then the biases
        factor = 2.0 if self.activation == "logistic" else 6.0
        weights, biases = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)).T)
            biases.append(self._random_state.uniform(-bound, bound, fan_out))
        net.set_parameters(weights, biases)
        self.net_ = net
        self._optimizer_state = None  # a stochastic solver's state, kept for warm_start and partial_fit
        self._thread_decision = None   # "auto"'s (count, last epoch's seconds), kept for partial_fit
        self._step = 0                 # minibatch steps taken (Adam's t, dropout's stream)
        self._learning_rate = float(self.learning_rate_init)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def per_layer_settings(self):
        """(l2, l1, keep): the lecture's per-layer strengths and keep probabilities, checked against the network."""
        L = self.net_.n_layers
        return (checks.per_layer("l2", self.l2, L), checks.per_layer("l1", self.l1, L),
                checks.check_keep_probs(self.keep_prob, L))

    def _n_outputs(self, targets):
        """The network's outputs for training-form targets (the classifier's labels override this)."""
        return targets.shape[1]

    # ------------------------------------------------------------ prediction
    def _forward_pass_fast(self, X):
        """The output activations (n_samples, n_outputs) of the fitted network, in its dtype."""
        check_is_fitted(self, "net_")
        with ragged_named(X=X):
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self.net_
        return outputs_in_chunks(net, checks.check_X(dense(X), net.n_features, net.dtype))

    # ------------------------------------------------------------ scikit-learn's fitted attributes
    @property
    def coefs_(self):
        """Weights per layer, (fan_in, fan_out): views of the network's weights (copies on "cuda")."""
        net = self._fitted_net()
        return [W.T for W in (net.weights if isinstance(net.weights[0], np.ndarray) else net.get_parameters()[0])]

    @coefs_.setter
    def coefs_(self, coefs):
        net = self._fitted_net()
        net.set_parameters([np.asarray(W).T for W in coefs], net.get_parameters()[1])

    @property
    def intercepts_(self):
        """Biases per layer, (fan_out,): the network's biases (copies on "cuda")."""
        net = self._fitted_net()
        return list(net.biases) if isinstance(net.biases[0], np.ndarray) else net.get_parameters()[1]

    @intercepts_.setter
    def intercepts_(self, intercepts):
        net = self._fitted_net()
        net.set_parameters(net.get_parameters()[0], list(intercepts))

    def _fitted_net(self):
        net = self.__dict__.get("net_")
        if net is None:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet: it has no coefs_")
        return net

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------ pickling
    # An MLP refers to its backend module, which pickle cannot store: keep the
    # network as its description and host copies of the parameters instead.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: BaseEstimator may hand back the live __dict__
        net = state.get("net_")
        if isinstance(net, MLP):
            weights, biases = net.get_parameters()
            state["net_"] = {"layer_sizes": net.layer_sizes, "output": net.output, "activation": net.activation,
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
            net = MLP(spec["layer_sizes"], output=spec["output"], activation=spec["activation"], init="zeros",
                      dtype=spec["dtype"], backend=backend)
            net.set_parameters(spec["weights"], spec["biases"])
            state = dict(state, net_=net)
        super().__setstate__(state)


def stochastic_solver(estimator):
    """True when ``partial_fit`` is available (solver "sgd" or "adam"); AttributeError, scikit-learn's, otherwise."""
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {estimator.solver} is not "
                             "stochastic.")
    return True


def dense(X):
    """X as a dense array (a sparse matrix is densified: the kernels are dense)."""
    return X.toarray() if scipy.sparse.issparse(X) else X


@contextlib.contextmanager
def ragged_named(**arrays):
    """Scikit-learn's validation, with NumPy's "inhomogeneous shape" of a ragged list replaced by a message naming
    the argument and the rows that differ (``mlp.checks.ragged_message``); every other error is scikit-learn's."""
    try:
        yield
    except ValueError as exc:
        if "setting an array element with a sequence" not in str(exc):  # NumPy's words for a ragged list
            raise
        for name, value in arrays.items():
            message = checks.ragged_message(name, value)
            if message:
                raise ValueError(message) from exc
        raise
