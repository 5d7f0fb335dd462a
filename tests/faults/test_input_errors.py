"""Bad arguments at every public entry point give an error naming the argument and the problem (issue 15, item 8).

One table per kind of argument (arrays, targets, seeds, the estimators' and the
data sets' arrays): each row is (entry point, bad value, exception type, a
regex the message must match). Every call runs with warnings turned into
errors, so that NumPy's ComplexWarning or overflow RuntimeWarning cannot stand
in for the message.
"""
import re
import warnings

import numpy as np
import pytest
import scipy.sparse

import mlp
from mlp.datasets.dataset import Dataset
from mlp.estimators import MLPClassifier, MLPRegressor

RNG = np.random.default_rng(0)
X = RNG.random((5, 4))
LABELS = np.array([0, 1, 1, 0, 1])
TARGETS = RNG.standard_normal((5, 2))


def with_value(A, row, column, value):
    """A copy of ``A`` (in a dtype that holds ``value``) with ``value`` at (row, column)."""
    A = A.astype(np.result_type(A, np.asarray(value)))
    A[row, column] = value
    return A


def ragged(A, row):
    """``A`` as nested lists whose row ``row`` lacks its last value."""
    rows = A.tolist()
    rows[row] = rows[row][:-1]
    return rows


def softmax_net(dtype=np.float64):
    return mlp.MLP([4, 3, 2], seed=0, dtype=dtype, backend="numpy")


def identity_net(dtype=np.float64):
    return mlp.MLP([4, 3, 2], output="identity", seed=0, dtype=dtype, backend="numpy")


def raises(call, value, error, pattern):
    """``call(value)`` raises ``error`` whose message matches ``pattern``, and no warning is given on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error) as caught:
            call(value)
    assert re.search(pattern, str(caught.value)), f"{str(caught.value)!r} does not match {pattern!r}"


# ---------------------------------------------------------------- X at every MLP entry point
X_ENTRY_POINTS = {
    "forward": lambda net, X_: net.forward(X_),
    "predict": lambda net, X_: net.predict(X_),
    "predict_proba": lambda net, X_: net.predict_proba(X_),
    "evaluate": lambda net, X_: net.evaluate(X_, LABELS),
    "loss_and_gradients": lambda net, X_: net.loss_and_gradients(X_, LABELS),
    "mc_dropout_proba": lambda net, X_: net.mc_dropout_proba(X_, 0.5),
    "fit": lambda net, X_: net.fit(X_, LABELS, epochs=1, threads=1),
    "Trainer.fit": lambda net, X_: mlp.Trainer(net, epochs=1, threads=1).fit(X_, LABELS),
    "mlp.fit": lambda net, X_: mlp.fit(net, X_, LABELS, epochs=1, threads=1),
    "fit X_val": lambda net, X_: net.fit(X, LABELS, X_val=X_, y_val=LABELS, epochs=1, threads=1),
}
# (case, bad X, error, pattern); the pattern's "{X}" is the argument's name (X, or X_val for the validation set)
BAD_X = [
    ("complex", X + 1j, TypeError, r"{X} has complex values; .*\.real"),
    ("complex with zero imaginary parts", X.astype(complex), TypeError, r"{X} has complex values"),
    ("complex objects", with_value(X.astype(object), 1, 2, 1 + 2j), TypeError,
     r"{X} has complex values \({X}\[1, 2\] is \(1\+2j\)\)"),
    ("sparse", scipy.sparse.csr_matrix(X), TypeError, r"{X} is a sparse csr_matrix; .*{X}\.toarray\(\)"),
    ("None", None, TypeError, r"{X} is None; expected an array of numbers"),
    ("ragged list", ragged(X, 2), ValueError, r"{X} is a ragged list: row 0 has 4 values, row 2 has 3 values"),
    ("strings", with_value(X.astype(object), 1, 2, "a"), TypeError,
     r"{X} must be numeric; {X}\[1, 2\] is 'a' \(str\)"),
    ("text dtype", X.astype(str), TypeError, r"{X} must be numeric; got dtype <U"),
    ("0-d", np.float64(1.0), ValueError, r"{X} must be 2-D"),
    ("3-d", X[None], ValueError, r"{X} must be 2-D .*got shape \(1, 5, 4\)"),
    ("no rows", X[:0], ValueError, r"{X} has no rows"),
    ("NaN", with_value(X, 3, 1, np.nan), ValueError, r"{X} contains NaN at row 3, column 1"),
    ("inf", with_value(X, 4, 0, -np.inf), ValueError, r"{X} contains inf at row 4, column 0"),
]
X_CASES = [pytest.param(entry, *case, id=f"{entry}-{case[0]}") for entry in X_ENTRY_POINTS for case in BAD_X
           if (entry, case[0]) != ("fit X_val", "None")]  # X_val=None is no validation set, not a bad one


@pytest.mark.parametrize("entry, case, bad, error, pattern", X_CASES)
def test_bad_X_is_named_with_its_problem(entry, case, bad, error, pattern):
    call = X_ENTRY_POINTS[entry]
    raises(lambda X_: call(softmax_net(), X_), bad, error, pattern.format(X="X_val" if entry == "fit X_val" else "X"))


@pytest.mark.parametrize("entry", X_ENTRY_POINTS)
def test_a_value_beyond_float32s_range_is_named_with_its_place(entry):
    """1e300 is finite in float64: a float32 network's message says where it is and float32's limit, not 'inf'."""
    name = "X_val" if entry == "fit X_val" else "X"
    call = X_ENTRY_POINTS[entry]
    raises(lambda X_: call(softmax_net(np.float32), X_), with_value(X, 2, 3, 1e300), ValueError,
           rf"{name} holds 1e\+300 at row 2, column 3, beyond the range of float32 \(magnitudes up to 3\.403e\+38\)")


def test_booleans_and_object_arrays_of_numbers_are_numbers():
    net = softmax_net()
    mask = X > 0.5
    np.testing.assert_array_equal(net.forward(mask), net.forward(mask.astype(np.float64)))
    np.testing.assert_array_equal(net.forward(X.astype(object)), net.forward(X))
    one = net.forward(X[0].tolist())  # a plain list of one example's features
    np.testing.assert_array_equal(one, net.forward(X[:1])[0])
# ---------------------------------------------------------------- targets, weights, masks, parameters
TARGET_ENTRY_POINTS = {
    "evaluate": lambda net, y_: net.evaluate(X, y_),
    "loss_and_gradients": lambda net, y_: net.loss_and_gradients(X, y_),
    "fit": lambda net, y_: net.fit(X, y_, epochs=1, threads=1),
    "Trainer.fit": lambda net, y_: mlp.Trainer(net, epochs=1, threads=1).fit(X, y_),
    "fit y_val": lambda net, y_: net.fit(X, LABELS if net.output == "softmax" else TARGETS, X_val=X, y_val=y_,
                                         epochs=1, threads=1),
}
# what each entry point calls its targets: the model's own methods Y, the training entry points y and y_val
TARGET_NAMES = {"evaluate": "Y", "loss_and_gradients": "Y", "fit y_val": "y_val"}
# (case, network, bad y, error, pattern): labels of a softmax output, targets of an identity output
BAD_TARGETS = [
    ("complex labels", softmax_net, LABELS + 1j, TypeError, r"{y} has complex values"),
    ("complex targets", identity_net, TARGETS + 0j, TypeError, r"{y} has complex values"),
    ("None labels", softmax_net, None, TypeError, r"{y} is None"),
    ("sparse targets", identity_net, scipy.sparse.csr_matrix(TARGETS), TypeError, r"{y} is a sparse csr_matrix"),
    ("ragged labels", softmax_net, [0, [1, 1], 1, 0, 1], ValueError,
     r"{y} is a ragged list: row 0 is a single number, row 1 has 2 values"),
    ("ragged targets", identity_net, ragged(TARGETS, 3), ValueError,
     r"{y} is a ragged list: row 0 has 2 values, row 3 has 1 value"),
    ("text labels", softmax_net, np.array(["a", "b", "b", "a", "b"]), TypeError, r"{y} must be numeric"),
    ("float labels", softmax_net, LABELS + 0.5, TypeError, r"class labels must be integers; got dtype float64 in {y}"),
    ("bool labels", softmax_net, LABELS > 0, TypeError, r"class labels must be integers; got dtype bool in {y}"),
    ("NaN target", identity_net, with_value(TARGETS, 2, 1, np.nan), ValueError,
     r"{y} contains NaN at row 2, column 1"),
    ("1e300 target into float32", lambda: identity_net(np.float32), with_value(TARGETS, 1, 0, 1e300), ValueError,
     r"{y} holds 1e\+300 at row 1, column 0, beyond the range of float32"),
]


TARGET_CASES = [pytest.param(entry, *case, id=f"{entry}-{case[0]}") for entry in TARGET_ENTRY_POINTS
                for case in BAD_TARGETS if (entry, case[0]) != ("fit y_val", "None labels")]  # y_val=None: no set


@pytest.mark.parametrize("entry, case, make_net, bad, error, pattern", TARGET_CASES)
def test_bad_targets_are_named_with_their_problem(entry, case, make_net, bad, error, pattern):
    call = TARGET_ENTRY_POINTS[entry]
    name = TARGET_NAMES.get(entry, "y")
    raises(lambda y_: call(make_net(), y_), bad, error, pattern.format(y=name))


OTHER_ARRAYS = [
    ("sample_weight complex", lambda w: softmax_net().loss_and_gradients(X, LABELS, sample_weight=w),
     np.ones(5) + 1j, TypeError, r"sample_weight has complex values"),
    ("sample_weight ragged", lambda w: softmax_net().loss_and_gradients(X, LABELS, sample_weight=w),
     [1, [1, 2], 1, 1, 1], ValueError, r"sample_weight is a ragged list: row 0 is a single number, row 1 has 2"),
    ("sample_weight text", lambda w: softmax_net().loss_and_gradients(X, LABELS, sample_weight=w),
     "heavy", TypeError, r"sample_weight must be numeric; got dtype <U5 such as 'heavy'"),
    ("sample_weight NaN", lambda w: softmax_net().loss_and_gradients(X, LABELS, sample_weight=w),
     np.array([1, 1, np.nan, 1, 1]), ValueError, r"sample_weight contains NaN at position 2"),
    ("masks complex", lambda m: softmax_net().forward(X, masks=[m, None]),
     np.ones(4) + 1j, TypeError, r"masks\[0\] has complex values"),
    ("masks 1e300 into float32", lambda m: softmax_net(np.float32).forward(X, masks=[None, m]),
     np.array([1.0, 1e300, 1.0]), ValueError,
     r"masks\[1\] holds 1e\+300 at row 0, column 1, beyond the range of float32"),
    ("set_parameters complex", lambda W: softmax_net().set_parameters([W, np.ones((2, 3))], [np.zeros(3), np.zeros(2)]),
     np.ones((3, 4)) + 1j, TypeError, r"weights\[0\] has complex values"),
    ("set_parameters 1e300 into float32",
     lambda W: softmax_net(np.float32).set_parameters([W, np.ones((2, 3))], [np.zeros(3), np.zeros(2)]),
     with_value(np.ones((3, 4)), 1, 2, 1e300), ValueError, r"weights\[0\] holds 1e\+300 at row 1, column 2"),
]


@pytest.mark.parametrize("case, call, bad, error, pattern", OTHER_ARRAYS, ids=[case[0] for case in OTHER_ARRAYS])
def test_weights_masks_and_parameters_are_named_with_their_problem(case, call, bad, error, pattern):
    raises(call, bad, error, pattern)


# ---------------------------------------------------------------- seeds
SEED_ENTRY_POINTS = {
    "MLP": lambda seed: mlp.MLP([4, 3, 2], seed=seed, backend="numpy"),
    "TrainConfig.validate": lambda seed: mlp.TrainConfig(seed=seed).validate(),
    "Trainer": lambda seed: mlp.Trainer(softmax_net(), seed=seed),
    "MLP.fit": lambda seed: softmax_net().fit(X, LABELS, seed=seed, epochs=1, threads=1),
    "mlp.fit": lambda seed: mlp.fit(softmax_net(), X, LABELS, seed=seed, epochs=1, threads=1),
    "mc_dropout_proba": lambda seed: softmax_net().mc_dropout_proba(X, 0.5, seed=seed),
}
BAD_SEEDS = [(-1, ValueError), (1.5, TypeError), ("abc", TypeError), (True, TypeError), (2**63, ValueError),
             (np.float64(2.0), TypeError), (None, TypeError)]
SEED_CASES = [pytest.param(entry, seed, error, id=f"{entry}-{seed!r}") for entry in SEED_ENTRY_POINTS
              for seed, error in BAD_SEEDS if (entry, seed) != ("MLP", None)]  # MLP's seed may be None


@pytest.mark.parametrize("entry, seed, error", SEED_CASES)
def test_a_bad_seed_is_named_with_the_accepted_range(entry, seed, error):
    raises(SEED_ENTRY_POINTS[entry], seed, error, r"seed must be an integer in \[0, 2\*\*63\)")


def test_the_accepted_seeds_are_accepted():
    weights = mlp.MLP([4, 3, 2], seed=3, backend="numpy").get_parameters()[0][0]
    np.testing.assert_array_equal(mlp.MLP([4, 3, 2], seed=np.int64(3), backend="numpy").get_parameters()[0][0],
                                  weights)
    for seed in (None, 0, 2**63 - 1):
        mlp.MLP([4, 3, 2], seed=seed, backend="numpy")
        softmax_net().mc_dropout_proba(X, 0.5, seed=0 if seed is None else seed)


# ---------------------------------------------------------------- the scikit-learn estimators
def estimator(kind, **params):
    return kind(hidden_layer_sizes=(3,), max_iter=1, backend="numpy", threads=1, **params)


@pytest.fixture(scope="module")
def fitted32():
    """A float32 classifier fitted for one epoch (its ConvergenceWarning is not what the tests look at)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator(MLPClassifier, dtype="float32").fit(X, LABELS)


ESTIMATOR_CASES = [
    ("fit X 1e300 into float32", lambda X_: estimator(MLPClassifier, dtype="float32").fit(X_, LABELS),
     with_value(X, 2, 3, 1e300), ValueError, r"X holds 1e\+300 at row 2, column 3, beyond the range of float32"),
    ("fit y 1e300 into float32", lambda y_: estimator(MLPRegressor, dtype="float32").fit(X, y_),
     with_value(TARGETS, 1, 0, 1e300), ValueError, r"y holds 1e\+300 at row 1, column 0, beyond the range of float32"),
    ("fit ragged X", lambda X_: estimator(MLPClassifier).fit(X_, LABELS),
     ragged(X, 2), ValueError, r"X is a ragged list: row 0 has 4 values, row 2 has 3 values"),
    ("fit ragged y", lambda y_: estimator(MLPRegressor).fit(X, y_),
     ragged(TARGETS, 1), ValueError, r"y is a ragged list: row 0 has 2 values, row 1 has 1 value"),
    ("partial_fit ragged X", lambda X_: estimator(MLPClassifier).partial_fit(X_, LABELS, classes=[0, 1]),
     ragged(X, 4), ValueError, r"X is a ragged list: row 0 has 4 values, row 4 has 3 values"),
    # complex X keeps scikit-learn's own error (its estimator checks ask for exactly this one)
    ("fit complex X", lambda X_: estimator(MLPClassifier).fit(X_, LABELS),
     X + 1j, ValueError, r"Complex data not supported"),
]


@pytest.mark.parametrize("case, call, bad, error, pattern", ESTIMATOR_CASES, ids=[c[0] for c in ESTIMATOR_CASES])
def test_the_estimators_name_the_argument_where_the_message_is_ours(case, call, bad, error, pattern):
    raises(call, bad, error, pattern)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_a_fitted_float32_estimator_names_x_beyond_its_range_and_ragged_rows(fitted32, method):
    call = getattr(fitted32, method)
    raises(call, with_value(X, 0, 1, -1e300), ValueError,
           r"X holds -1e\+300 at row 0, column 1, beyond the range of float32")
    raises(call, ragged(X, 1), ValueError, r"X is a ragged list: row 0 has 4 values, row 1 has 3 values")


# ---------------------------------------------------------------- Dataset
def dataset(**parts):
    arrays = {"X_train": X, "y_train": LABELS, "X_test": X, "y_test": LABELS, **parts}
    return Dataset(**arrays, name="t", n_classes=2, source="here")


DATASET_CASES = [
    ("X_train", X + 1j, TypeError, r"Dataset: X_train has complex values"),
    ("X_train", scipy.sparse.csr_matrix(X), TypeError, r"Dataset: X_train is a sparse csr_matrix.*X_train\.toarray"),
    ("X_train", None, TypeError, r"Dataset: X_train is None"),
    ("X_train", ragged(X, 1), ValueError, r"Dataset: X_train is a ragged list: row 0 has 4 values, row 1 has 3"),
    ("X_train", with_value(X, 1, 1, np.nan), ValueError, r"Dataset: X_train contains NaN at row 1, column 1"),
    ("X_test", with_value(X, 4, 2, 1e300), ValueError,
     r"Dataset: X_test holds 1e\+300 at row 4, column 2, beyond the range of float32"),
    ("X_test", X[:0], ValueError, r"Dataset: X_test is empty: shape \(0, 4\)"),
    ("y_train", LABELS + 1j, TypeError, r"Dataset: y_train has complex values"),
    ("y_test", None, TypeError, r"Dataset: y_test is None"),
]


@pytest.mark.parametrize("part, bad, error, pattern", DATASET_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DATASET_CASES)])
def test_a_dataset_names_the_bad_part(part, bad, error, pattern):
    raises(lambda value: dataset(**{part: value}), bad, error, pattern)
