"""mlp.MLPClassifier / MLPRegressor beside scikit-learn's, on the same data: what must agree does.

The estimators consume the random state as scikit-learn does (initial weights,
validation split, shuffles) and run the same update rules, so on the same data
with the same ``random_state`` they follow the same trajectory: in float64 the
fitted coefficients agree with scikit-learn's to 1e-10 of their largest
magnitude after several epochs (rounding differs only in the order of sums).
``loss_curve_`` agrees to 1e-10 relative without alpha; with alpha it differs by
design: scikit-learn adds alpha's penalty with the weights of each minibatch, this
library with the epoch's last weights (its engines never leave their epoch loop).

Parameter validation uses scikit-learn's constraints: the same bad value raises
the same exception with the same message.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse
from sklearn import neural_network as sk
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from mlp import MLPClassifier, MLPRegressor

COEF_TOL = 1e-10      # float64 coefficients, relative to the largest
LOSS_RTOL = 1e-10     # loss_curve_ without alpha (see the module docstring)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


def _quiet_fit(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


def _assert_same_coefs(ours, theirs, tol=COEF_TOL):
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= tol * np.abs(b).max()


# ---------------------------------------------------------------- the same trajectory
SOLVERS = [
    ("sgd", {"learning_rate_init": 0.1}),                                          # Nesterov (the default)
    ("sgd", {"learning_rate_init": 0.1, "nesterovs_momentum": False}),
    ("sgd", {"learning_rate_init": 0.5, "momentum": 0.0, "learning_rate": "invscaling"}),
    ("sgd", {"learning_rate_init": 0.1, "learning_rate": "adaptive", "n_iter_no_change": 1, "tol": 0.05}),
    ("adam", {}),
    ("adam", {"early_stopping": True}),
    ("lbfgs", {"max_fun": 40}),
]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("solver, extra", SOLVERS, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
def test_classifier_follows_scikit_learns_trajectory(digits, backend, solver, extra):
    X, y = digits
    for activation in ("relu", "tanh", "logistic", "identity"):
        params = dict(hidden_layer_sizes=(12,), solver=solver, activation=activation, alpha=1e-3, batch_size=50,
                      max_iter=6, random_state=3, **extra)
        theirs = _quiet_fit(sk.MLPClassifier(**params), X, y)
        ours = _quiet_fit(MLPClassifier(backend=backend, **params), X, y)
        _assert_same_coefs(ours, theirs)
        assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
        assert ours.out_activation_ == theirs.out_activation_ == "softmax"
        if solver != "lbfgs":
            assert len(ours.loss_curve_) == len(theirs.loss_curve_)
            assert (ours.best_loss_ is None) == (theirs.best_loss_ is None)
        if extra.get("early_stopping"):
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
            assert ours.best_validation_score_ == theirs.best_validation_score_
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_without_alpha_the_losses_agree_too(digits, backend, solver):
    X, y = digits
    params = dict(hidden_layer_sizes=(12,), solver=solver, alpha=0.0, batch_size=50, max_iter=4, random_state=3)
    theirs = _quiet_fit(sk.MLPClassifier(**params), X, y)
    ours = _quiet_fit(MLPClassifier(backend=backend, **params), X, y)
    _assert_same_coefs(ours, theirs)
    if solver == "lbfgs":
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=LOSS_RTOL)
    else:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=LOSS_RTOL)
        assert ours.best_loss_ == min(ours.loss_curve_)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_binary_and_multilabel_outputs_are_logistic_as_in_scikit_learn(digits, backend):
    X, y = digits
    targets = {"binary": np.where(y > 4, "big", "small"),
               "multilabel": np.stack([y > 4, y % 2 == 0, y == 3], axis=1).astype(int)}
    for name, labels in targets.items():
        params = dict(hidden_layer_sizes=(10,), max_iter=4, random_state=0, solver="sgd", learning_rate_init=0.2)
        theirs = _quiet_fit(sk.MLPClassifier(**params), X, labels)
        ours = _quiet_fit(MLPClassifier(backend=backend, **params), X, labels)
        assert ours.out_activation_ == theirs.out_activation_ == "logistic", name
        assert ours.n_outputs_ == theirs.n_outputs_ and ours.coefs_[-1].shape == theirs.coefs_[-1].shape
        _assert_same_coefs(ours, theirs)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_follows_scikit_learn_single_and_multi_output(digits, backend, loss):
    X, _ = digits
    t = X[:, 20:23] @ np.array([[1.0, 0.5], [2.0, 0.0], [0.5, 1.0]])
    for y in (t[:, 0], t):
        params = dict(loss=loss, hidden_layer_sizes=(9,), max_iter=5, random_state=1, solver="sgd",
                      learning_rate_init=0.01, alpha=0.0)
        theirs = _quiet_fit(sk.MLPRegressor(**params), X, y)
        ours = _quiet_fit(MLPRegressor(backend=backend, **params), X, y)
        assert ours.out_activation_ == theirs.out_activation_
        _assert_same_coefs(ours, theirs)
        assert ours.predict(X).shape == theirs.predict(X).shape
        if y.ndim == 1 or loss == "poisson":  # scikit-learn reports the squared error averaged over outputs
            np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=LOSS_RTOL)


def test_partial_fit_follows_scikit_learn_and_needs_classes_first(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(10,), random_state=0, solver="adam", learning_rate_init=0.01)
    theirs, ours = sk.MLPClassifier(**params), MLPClassifier(**params)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        MLPClassifier(**params).partial_fit(X[:50], y[:50])
    for start in range(0, 240, 60):
        theirs.partial_fit(X[start:start + 60], y[start:start + 60], classes=np.arange(10))
        ours.partial_fit(X[start:start + 60], y[start:start + 60], classes=np.arange(10))
    _assert_same_coefs(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_ == 1 and ours.t_ == theirs.t_ == 240
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


# ---------------------------------------------------------------- parameters
BAD_VALUES = {
    "hidden_layer_sizes": ["a", -1.5], "activation": ["softplus"], "solver": ["newton"], "alpha": [-1.0, "x"],
    "batch_size": [0, "big"], "learning_rate": ["cosine"], "learning_rate_init": [0.0, -1], "power_t": [-0.5],
    "max_iter": [0, 2.5], "shuffle": ["yes"], "random_state": ["seed"], "tol": [-1e-3], "warm_start": [1.5],
    "momentum": [1.5, -0.1], "nesterovs_momentum": ["no"], "early_stopping": [None],
    "validation_fraction": [1.0, -0.1], "beta_1": [1.0], "beta_2": [-0.1], "epsilon": [0.0],
    "n_iter_no_change": [0, 1.5], "max_fun": [0],
}


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_bad_parameters_raise_scikit_learns_error(estimator):
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    ours_class, theirs_class = {"MLPClassifier": (MLPClassifier, sk.MLPClassifier),
                                "MLPRegressor": (MLPRegressor, sk.MLPRegressor)}[estimator]
    bad = dict(BAD_VALUES, **({"loss": ["huber"]} if estimator == "MLPRegressor" else {}))
    for name, values in bad.items():
        for value in values:
            with pytest.raises(Exception) as theirs:
                theirs_class(**{name: value}).fit(X, y)
            with pytest.raises(type(theirs.value)) as ours:
                ours_class(**{name: value}).fit(X, y)
            assert str(ours.value) == str(theirs.value), (name, value)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)


def test_defaults_and_parameter_names_are_scikit_learns():
    for ours, theirs in ((MLPClassifier(), sk.MLPClassifier()), (MLPRegressor(), sk.MLPRegressor())):
        mine, reference = ours.get_params(), theirs.get_params()
        assert {k: mine[k] for k in reference} == reference
        assert set(mine) - set(reference) == {"l1", "l2", "keep_prob", "dropout_mode", "backend", "dtype", "threads"}


@pytest.mark.parametrize("bad, error, match", [
    ({"keep_prob": 0.0}, ValueError, "keep_prob"),
    ({"l2": -1.0}, ValueError, "'l2' parameter"),
    ({"l1": [0.1, 0.1, 0.1]}, ValueError, "l1"),
    ({"backend": "tpu"}, ValueError, "'backend' parameter"),
    ({"dropout_mode": "per_epoch"}, ValueError, "'dropout_mode' parameter"),
    ({"dtype": "int8"}, TypeError, "dtype"),
    ({"solver": "lbfgs", "keep_prob": 0.5}, ValueError, "stochastic solver"),
])
def test_the_lectures_parameters_are_checked_too(bad, error, match):
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(error, match=match):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, **bad).fit(X, y)


# ---------------------------------------------------------------- behaviour
def test_float32_input_trains_in_float32_and_float64_stays_float64(digits):
    X, y = digits
    for dtype in (np.float32, np.float64):
        clf = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), X.astype(dtype), y)
        assert clf.net_.dtype == dtype and clf.coefs_[0].dtype == dtype
        assert clf.predict_proba(X.astype(dtype)).dtype == dtype
    clf = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0, dtype="float64"), X.astype(np.float32), y)
    assert clf.net_.dtype == np.float64
    integers = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), (X * 16).astype(np.int64), y)
    assert integers.net_.dtype == np.float64


def test_max_iter_without_convergence_warns_as_scikit_learn(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\) reached"):
        MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier((8,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_diverging_fit_raises_and_keeps_finite_parameters(digits, backend):
    X, y = digits
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0, max_iter=80,
                       n_iter_no_change=1000, random_state=0, backend=backend)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights.*loss diverged in epoch"):
        reg.fit(X, y * 1e4)
    assert all(np.isfinite(W).all() for W in reg.coefs_ + reg.intercepts_)
    assert np.isfinite(reg.loss_curve_).all()


def test_warm_start_continues_from_the_fitted_weights(digits):
    X, y = digits
    clf = _quiet_fit(MLPClassifier((10,), max_iter=5, random_state=0, warm_start=True), X, y)
    first = list(clf.loss_curve_)
    before = [W.copy() for W in clf.coefs_]
    _quiet_fit(clf, X, y)
    assert clf.n_iter_ == 5 and clf.loss_curve_[:5] == first and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < first[0]  # continued, not restarted
    cold = _quiet_fit(MLPClassifier((10,), max_iter=5, random_state=0), X, y)
    np.testing.assert_array_equal(cold.coefs_[0], before[0])


def test_sparse_input_gives_the_dense_result(digits):
    X, y = digits
    dense = _quiet_fit(MLPClassifier((8,), max_iter=3, random_state=0), X, y)
    sparse = _quiet_fit(MLPClassifier((8,), max_iter=3, random_state=0), scipy.sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.coefs_[0], sparse.coefs_[0])
    np.testing.assert_array_equal(dense.predict_proba(X), sparse.predict_proba(scipy.sparse.csc_matrix(X)))


def test_pandas_input_keeps_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    clf = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_coefs_are_views_of_the_weights_and_assignable(digits):
    X, y = digits
    clf = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), X, y)
    assert np.shares_memory(clf.coefs_[0], clf.net_.weights[0])
    clf.coefs_[1][...] = 0
    clf.intercepts_[1][...] = [10.0 if c == 7 else 0.0 for c in clf.classes_]
    assert (clf.predict(X) == 7).all()
    clf.coefs_ = [np.zeros_like(W) for W in clf.coefs_]
    np.testing.assert_array_equal(clf.net_.weights[0], 0)
    with pytest.raises(AttributeError, match="not fitted"):
        MLPClassifier().coefs_


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("solver, extra", [("sgd", {"learning_rate_init": 0.1}), ("adam", {"early_stopping": True}),
                                           ("lbfgs", {"max_fun": 30})], ids=["sgd", "adam-early", "lbfgs"])
def test_sample_weights_are_weighted_as_in_scikit_learn(digits, backend, solver, extra):
    X, y = digits
    weights = np.random.default_rng(4).uniform(0, 3, len(y))
    weights[::7] = 0.0
    params = dict(hidden_layer_sizes=(10,), solver=solver, alpha=1e-3, batch_size=40, max_iter=4, random_state=2,
                  **extra)
    theirs = _quiet_fit(sk.MLPClassifier(**params), X, y, sample_weight=weights)
    ours = _quiet_fit(MLPClassifier(backend=backend, **params), X, y, sample_weight=weights)
    _assert_same_coefs(ours, theirs)
    plain = _quiet_fit(MLPClassifier(backend=backend, **params), X, y)
    assert np.abs(plain.coefs_[0] - ours.coefs_[0]).max() > 1e-3  # the weights did something
    if extra.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    t = X[:, 20:23] @ np.array([1.0, 2.0, 0.5])
    reg_params = dict(params, solver="sgd", learning_rate_init=0.01, alpha=0.0, early_stopping=False)
    reg_params.pop("max_fun", None)
    theirs = _quiet_fit(sk.MLPRegressor(**reg_params), X, t, sample_weight=weights)
    ours = _quiet_fit(MLPRegressor(backend=backend, **reg_params), X, t, sample_weight=weights)
    _assert_same_coefs(ours, theirs)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=LOSS_RTOL)


def test_bad_sample_weights_raise_scikit_learns_error(digits):
    X, y = digits
    for bad in (np.ones(3), np.zeros(len(y)), "heavy", np.ones((len(y), 2))):
        with pytest.raises(Exception) as theirs:
            sk.MLPClassifier(max_iter=1).fit(X, y, sample_weight=bad)
        with pytest.raises(type(theirs.value)) as ours:
            MLPClassifier(max_iter=1).fit(X, y, sample_weight=bad)
        assert str(ours.value) == str(theirs.value)


def test_l1_gives_exact_zeros_and_dropout_trains(digits):
    X, y = digits
    sparse = _quiet_fit(MLPClassifier((16,), solver="sgd", learning_rate_init=0.1, l1=[1e-2, 0.0], max_iter=20,
                                      random_state=0), X, y)
    plain = _quiet_fit(MLPClassifier((16,), solver="sgd", learning_rate_init=0.1, max_iter=20, random_state=0), X, y)
    assert (sparse.coefs_[0] == 0).mean() > 0.3 and (plain.coefs_[0] == 0).mean() == 0
    for mode in ("per_sample", "per_batch"):
        dropped = _quiet_fit(MLPClassifier((32,), keep_prob=[0.9, 0.6], dropout_mode=mode, max_iter=30,
                                           learning_rate_init=0.01, random_state=0), X, y)
        assert dropped.score(X, y) > 0.85
