"""MLPClassifier / MLPRegressor: scikit-learn's estimator checks and the usual workflows."""
import functools
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import estimator_checks_generator

import mlp
from mlp.estimators import MLPClassifier, MLPRegressor

REPO = Path(__file__).resolve().parent.parent

# Checks left out on purpose, with the reason. Every other check must pass.
NOT_RUN = {
    "check_array_api_input": "the networks compute with NumPy/Numba kernels, not through the "
                             "array API; sklearn itself skips it unless SCIPY_ARRAY_API=1",
}
# Small networks and few epochs keep the ~60 checks per estimator quick; 30
# epochs of Adam at 0.01 are enough for the checks that ask for a good fit on easy data.
CHECKED = [MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01, random_state=0),
           MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01, random_state=0)]


def _check_id(estimator, check):
    func = check.func if isinstance(check, functools.partial) else check
    keywords = getattr(check, "keywords", {})
    suffix = "".join(f"[{k}={v}]" for k, v in sorted(keywords.items()))
    return f"{type(estimator).__name__}-{func.__name__}{suffix}"


def _estimator_checks():
    for estimator in CHECKED:
        for est, check in estimator_checks_generator(estimator, mark=None):
            func = check.func if isinstance(check, functools.partial) else check
            if func.__name__ not in NOT_RUN:
                yield pytest.param(est, check, id=_check_id(est, check))


@pytest.mark.parametrize("estimator, check", list(_estimator_checks()))
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    # A quarter of the data keeps the cross-validation tests fast.
    X, _, y, _ = train_test_split(X, y, train_size=450, stratify=y, random_state=0)
    return X / 16.0, y


def test_digits_accuracy_and_fitted_attributes(digits):
    X, y = digits
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=40, learning_rate_init=0.01, random_state=0).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.85
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 64
    assert clf.net_.layer_sizes == [64, 32, 10]
    assert 1 <= clf.n_iter_ <= 40
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.validation_scores_ is None


def test_predict_proba_rows_sum_to_one_and_agree_with_predict(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 10)
    assert proba.dtype == np.float64  # the input's dtype, as scikit-learn
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-12)


def test_string_labels_round_trip():
    rng = np.random.default_rng(0)
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[np.arange(150) % 3]
    X = rng.normal(size=(150, 4)) + 3.0 * (np.arange(150) % 3)[:, None]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.05, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, names)
    pred = clf.predict(X)
    assert pred.dtype == y.dtype
    assert set(pred) <= set(names)
    assert np.mean(pred == y) > 0.9


def test_a_single_class_is_predicted_as_scikit_learn_does():
    X = np.random.default_rng(0).normal(size=(5, 2))
    clf = MLPClassifier(max_iter=2).fit(X, ["a"] * 5)
    assert clf.out_activation_ == "logistic" and list(clf.predict(X)) == ["a"] * 5


def test_early_stopping_records_validation_scores(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, early_stopping=True,
                        validation_fraction=0.2, n_iter_no_change=3, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert all(0 <= s <= 1 for s in clf.validation_scores_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None


def test_training_loss_plateau_stops_before_max_iter():
    # A tiny learning rate: no epoch improves the loss by tol, so more than n_iter_no_change epochs end it.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    clf = MLPClassifier(hidden_layer_sizes=(4,), learning_rate_init=1e-9, solver="sgd", momentum=0.0,
                        max_iter=100, n_iter_no_change=3, tol=1e-3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 1 + 3 + 1  # the first epoch sets the best loss; scikit-learn stops after > 3 more


def test_pipeline_grid_search_and_cross_validation(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=8,
                                                         learning_rate_init=0.02, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(pipe, {"mlpclassifier__l2": [0.0, 1e-3],
                               "mlpclassifier__keep_prob": [1.0, (0.9, 0.7)]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"mlpclassifier__l2", "mlpclassifier__keep_prob"}
    assert grid.best_score_ > 0.7
    assert grid.score(X, y) > 0.7


def test_regressor_fits_a_smooth_function_far_better_than_the_mean():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 1))
    y = np.sin(2 * X[:, 0]) + 0.05 * rng.normal(size=400)
    X_tr, X_te, y_tr, y_te = X[:300], X[300:], y[:300], y[300:]
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=150, learning_rate_init=0.02,
                       batch_size=32, random_state=0).fit(X_tr, y_tr)
    pred = reg.predict(X_te)
    assert pred.shape == (100,)
    # R^2 = 1 - MSE / MSE(mean predictor): above 0 beats the mean; require far better.
    assert reg.score(X_te, y_te) > 0.8


def test_regressor_multi_output_shapes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    Y = np.column_stack([X.sum(axis=1), X[:, 0] - X[:, 1]])
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.01,
                       random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 2
    assert reg.predict(X).shape == (50, 2)


def test_pickle_round_trip_predicts_the_same(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.net_.backend == clf.net_.backend


def test_same_random_state_same_model_and_clone_is_unfitted(digits):
    X, y = digits
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, keep_prob=0.8, random_state=7).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not hasattr(clone(a), "net_")


def test_batch_size_auto_and_oversized_batches():
    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3
    for batch_size in ("auto", 1000):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf = MLPClassifier(hidden_layer_sizes=(4,), batch_size=batch_size, max_iter=2,
                                random_state=0).fit(X, y)
        assert clf.n_iter_ == 2
        assert any("It is going to be clipped" in str(w.message) for w in caught) == (batch_size == 1000)


def test_estimators_are_exported_lazily_and_import_mlp_needs_no_sklearn():
    assert mlp.MLPClassifier is MLPClassifier and mlp.MLPRegressor is MLPRegressor
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import mlp\n"
            "mlp.MLP([2, 2])\n"
            "try:\n"
            "    mlp.MLPClassifier\n"
            "except ImportError as exc:\n"
            "    assert 'numba-mlp[sklearn]' in str(exc), exc\n"
            "else:\n"
            "    raise SystemExit('no ImportError')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- threads (not a scikit-learn parameter)
def _blas_threads():
    import threadpoolctl
    return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_threads_parameter_limits_blas_during_fit_and_is_recorded(digits, solver, monkeypatch):
    from mlp.estimators import solvers
    from mlp.threads import DEFAULT_THREADS

    X, y = digits
    assert MLPClassifier().get_params()["threads"] == DEFAULT_THREADS == MLPRegressor().threads
    seen = []
    # the BLAS limit in force during each pass over the data: an epoch, or an L-BFGS evaluation
    owner, name = (solvers, "_epoch") if solver == "adam" else (mlp.MLP, "loss_and_gradients")
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *a, **k: (seen.append(_blas_threads()), original(*a, **k))[1])
    before = _blas_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((8,), solver=solver, max_iter=3, random_state=0, threads=1).fit(X, y)
    assert seen and set(seen) == {1}
    assert clf.net_.metadata["threads"] == {"setting": 1, "counts": [1], "probes": []}
    assert _blas_threads() == before
    with pytest.raises(ValueError, match="threads"):
        MLPClassifier((8,), max_iter=1, threads="two").fit(X, y)


def test_partial_fit_continues_autos_choice(digits):
    X, y = digits
    clf = MLPClassifier((8,), random_state=0, threads="auto")
    clf.partial_fit(X, y, classes=np.unique(y))
    assert len(clf.net_.metadata["threads"]["probes"]) == (1 if mlp.threads.usable_cores() > 1 else 0)
    first = clf.net_.metadata["threads"]
    clf.partial_fit(X, y)
    second = clf.net_.metadata["threads"]
    assert second["probes"] == []  # the first call's choice, not timed again
    assert second["counts"] == first["counts"][-1:]
