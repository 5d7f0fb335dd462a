"""Bad input raises a clear error that names the problem; unscaled input a warning."""
import warnings

import numpy as np
import pytest

import kernels
import mlp


@pytest.fixture
def net():
    return mlp.MLP([4, 3, 2], seed=0, backend="numpy")


@pytest.fixture
def reg_net():
    return mlp.MLP([4, 3, 2], output="identity", seed=0, backend="numpy")


X = np.random.default_rng(0).random((5, 4))
y = np.array([0, 1, 1, 0, 1])


@pytest.mark.parametrize("sizes,error,match", [
    ([4], ValueError, "at least an input and an output"),
    ([4, 0, 2], ValueError, "must be >= 1"),
    ([4, -3, 2], ValueError, "must be >= 1"),
    ([4, 2.5, 2], TypeError, "must hold integers"),
    (5, TypeError, "sequence of ints"),
    ([4, 1], ValueError, "softmax output needs at least 2 classes"),
])
def test_bad_layer_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        mlp.MLP(sizes)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(backend="tpu"), ValueError, "unknown backend 'tpu'"),
    (dict(init="uniformish"), ValueError, "unknown init 'uniformish'"),
    (dict(output="sigmoid"), ValueError, "unknown output 'sigmoid'"),
    (dict(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (dict(dtype="float16"), TypeError, "dtype must be float32 or float64"),
])
def test_bad_model_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlp.MLP([4, 3, 2], **kwargs)


def test_cuda_backend_without_gpu_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(kernels, "cuda_unavailable_reason", lambda allow_simulator=True: "no usable CUDA GPU")
    with pytest.raises(kernels.BackendUnavailableError, match="backend 'cuda' is unavailable: no usable CUDA GPU"):
        mlp.MLP([4, 3, 2], backend="cuda")


@pytest.mark.parametrize("bad_X,error,match", [
    (X[:, :3], ValueError, r"X must have 4 columns; got shape \(5, 3\)"),
    (X[None], ValueError, "X must be 2-D"),  # a 1-D X is one example (MLP.forward), 3-D is nothing
    (np.zeros((0, 4)), ValueError, "X has no rows"),
    (np.where(np.eye(5, 4) > 0, np.nan, X), ValueError, "X contains NaN"),
    (np.where(np.eye(5, 4) > 0, np.inf, X), ValueError, "X contains inf"),
    (np.array([["a"] * 4] * 5), TypeError, "X must be numeric"),
])
def test_bad_X(net, bad_X, error, match):
    with pytest.raises(error, match=match):
        net.forward(bad_X)
    with pytest.raises(error, match=match):
        net.loss_and_gradients(bad_X, y)


@pytest.mark.parametrize("where", [0, 6, 7, 8, 20])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_a_bad_value_in_any_chunk(monkeypatch, where, bad):
    """The chunked check: the first, a middle and the last element of a chunk, and the last chunk (a partial one)."""
    monkeypatch.setattr(mlp.checks, "FINITE_CHUNK", 7)
    A = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float32)
    assert mlp.checks.all_finite(A)
    A.flat[where] = bad
    assert not mlp.checks.all_finite(A)


@pytest.mark.parametrize("bad_y,error,match", [
    (np.array([0, 1, 2, 0, 1]), ValueError, r"labels must lie in \[0, 2\)"),
    (np.array([0, 1, -1, 0, 1]), ValueError, r"labels must lie in \[0, 2\)"),
    (np.array([0.0, 1.0, 1.0, 0.0, 1.0]), TypeError, "class labels must be integers"),
    (np.array([0.0, 1.0, np.nan, 0.0, 1.0]), ValueError, "Y contains NaN"),
    (np.array([0, 1, 1]), ValueError, "Y has 3 labels but X has 5 rows"),
    (np.array([[1, 1], [0, 1], [1, 0], [0, 1], [1, 0]]), ValueError, "must be one-hot"),
    (np.zeros((5, 3)), ValueError, r"one-hot Y must have shape \(5, 2\)"),
])
def test_bad_labels(net, bad_y, error, match):
    with pytest.raises(error, match=match):
        net.loss_and_gradients(X, bad_y)


@pytest.mark.parametrize("bad_y,match", [
    (np.zeros((5, 3)), r"Y must have shape \(5, 2\)"),
    (np.zeros((4, 2)), "Y has 4 rows but X has 5"),
    (np.full((5, 2), np.inf), "Y contains inf"),
])
def test_bad_regression_targets(reg_net, bad_y, match):
    with pytest.raises(ValueError, match=match):
        reg_net.loss_and_gradients(X, bad_y)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(l2=-0.1), ValueError, "l2 must be finite and >= 0"),
    (dict(l1=[0.1, -1e-3]), ValueError, "l1 must be finite and >= 0"),
    (dict(l1=np.nan), ValueError, "l1 must be finite"),
    (dict(l2=[0.1, 0.2, 0.3]), ValueError, r"l2 needs one value per weight matrix \(2\); got 3"),
    (dict(l2="big"), TypeError, "l2 must be a number"),
])
def test_bad_regularisation(net, kwargs, error, match):
    with pytest.raises(error, match=match):
        net.loss_and_gradients(X, y, **kwargs)


@pytest.mark.parametrize("masks,match", [
    ([np.ones(4)], r"masks needs one entry per non-output layer .*: 2; got 1"),
    ([np.ones(3), np.ones(3)], r"masks\[0\] must have shape \(4,\) or \(5, 4\)"),
    ([np.ones(4), np.full(3, np.nan)], r"masks\[1\] contains NaN"),
])
def test_bad_masks(net, masks, match):
    with pytest.raises(ValueError, match=match):
        net.forward(X, masks=masks)


def test_keep_probability_outside_0_1_is_rejected():
    from mlp.checks import check_keep_probs
    for bad in (0.0, -0.5, 1.5, [0.8, 1.01]):
        with pytest.raises(ValueError, match=r"keep probability must lie in \(0, 1\]"):
            check_keep_probs(bad, 2)
    with pytest.raises(ValueError, match="one value for the input and each hidden layer"):
        check_keep_probs([0.8, 0.5, 0.5], 2)
    assert check_keep_probs(1, 2) == [1.0, 1.0]


def test_set_parameters_checks_shapes_and_values(net):
    W, b = net.get_parameters()
    with pytest.raises(ValueError, match=r"layer 0: expected W \(3, 4\)"):
        net.set_parameters([W[0].T, W[1]], b)
    W[1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"weights\[1\] contains NaN at row 0, column 0"):
        net.set_parameters(W, b)


# ---------------------------------------------------------------- unscaled inputs
PIXELS = np.random.default_rng(0).integers(0, 256, (40, 64)).astype(np.uint8)
PIXELS[0, 0] = 255


def _no_warning(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp.checks.warn_if_unscaled("X", X)


def test_uint8_pixels_are_warned_about_pointing_at_the_callers_line():
    with pytest.warns(mlp.checks.UnscaledInputWarning) as caught:
        mlp.checks.warn_if_unscaled("X", PIXELS)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "X looks like unscaled 0-255 pixel data (dtype uint8, max 255): divide by 255 so inputs are in [0, 1] "
        "as the initialisation std 1/sqrt(cols(W)) assumes")
    assert issubclass(mlp.checks.UnscaledInputWarning, UserWarning)
    assert caught[0].filename == __file__  # not a line inside numba-mlp


@pytest.mark.parametrize("X, text", [
    (PIXELS.astype(np.float32), r"0-255 pixel data \(dtype float32, max 255\)"),
    (PIXELS.astype(np.float64) / 16, None),  # not whole numbers
    (np.minimum(PIXELS, 16).astype(np.float64), r"unscaled counts in \[0, 16\] \(dtype float64, max 16\): divide by 16 "),
    (PIXELS.astype(np.int64) - 100, r"holds unscaled integers \(dtype int64, values in \[-100, 155\]\)"),
    (PIXELS.astype(np.float64) * 2, None),  # whole numbers beyond 255: not pixels
    (PIXELS.astype(np.float64) - 100, None),  # negative whole numbers: not pixels
])
def test_whole_numbers_above_1_are_warned_about(X, text):
    if text is None:
        _no_warning(X)
    else:
        with pytest.warns(mlp.checks.UnscaledInputWarning, match=text):
            mlp.checks.warn_if_unscaled("X", X)


@pytest.mark.parametrize("X", [
    PIXELS / 255.0,  # in [0, 1]
    (PIXELS / 255.0).astype(np.float32),
    (PIXELS - PIXELS.mean(axis=0)) / (PIXELS.std(axis=0) + 1e-8),  # standardised, with negatives
    (PIXELS > 128).astype(np.uint8),  # binary features
    PIXELS > 128,
    np.full((3, 2), np.nan),
    np.zeros((0, 4), np.uint8),
    [[1, 2], [3]],  # ragged: check_X reports it
    np.array([["a", "b"]]),
])
def test_scaled_or_non_numeric_inputs_are_not_warned_about(X):
    _no_warning(X)


def test_a_fraction_in_the_last_chunk_clears_whole_numbers(monkeypatch):
    monkeypatch.setattr(mlp.checks, "FINITE_CHUNK", 7)
    X = PIXELS.astype(np.float64)
    X.flat[-1] = 3.5
    _no_warning(X)
    X.flat[-1] = 3.0
    with pytest.warns(mlp.checks.UnscaledInputWarning):
        mlp.checks.warn_if_unscaled("X", X)


@pytest.mark.parametrize("form", ["csr_matrix", "dok_matrix", "lil_matrix", "coo_array"])
def test_sparse_pixels_are_warned_about(form):
    import scipy.sparse as sparse

    make = getattr(sparse, form)
    with pytest.warns(mlp.checks.UnscaledInputWarning, match="dtype uint8, max 255"):
        mlp.checks.warn_if_unscaled("X", make(PIXELS))
    _no_warning(make(PIXELS / 255.0))
