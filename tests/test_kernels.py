"""Every host kernel (and every ALTERNATIVES entry) against the NumPy reference.

Fresh random data (never zeros, but exact zeros planted where relu'(0) and
sign(0) matter), float32 and float64, awkward sizes (1, 7, 257), and every
output poisoned with NaN before the call so an element left unwritten fails.

Tolerances, relative to the largest magnitude in the reference output:
float64 1e-10, float32 1e-4. Dropout masks must match bit for bit.
"""
import inspect

import numpy as np
import pytest

import kernels
from kernels import numpy_backend as ref

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}
DTYPES = (np.float32, np.float64)
HOST_BACKENDS = ("cpu",)

# (n, k, m) for products, (n, d) for elementwise kernels: 1, 7 and 257 in every position.
MATMUL_SHAPES = [(1, 1, 1), (7, 1, 7), (1, 257, 7), (257, 7, 1), (7, 257, 257), (64, 33, 17)]
ELEMENTWISE_SHAPES = [(1, 1), (1, 257), (7, 1), (7, 7), (257, 7), (33, 257)]


def _randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _with_zeros(rng, A):
    """Plant exact zeros so relu'(0) = 0 and sign(0) = 0 are exercised."""
    A = A.copy()
    A.reshape(-1)[rng.random(A.size) < 0.1] = 0
    return A


def _mask(rng, shape, dtype, keep=0.7):
    return np.where(rng.random(shape) < keep, 1 / keep, 0).astype(dtype)


# Each case: name -> builder(rng, dtype, shape) -> (args, outputs), where
# ``outputs`` are the indices of the arguments a kernel writes (fresh outputs
# are poisoned, in-place ones compared after the call).
def _matmul_nt(rng, dt, s):
    n, k, m = s
    return [_randn(rng, (n, k), dt), _randn(rng, (m, k), dt), np.empty((n, m), dt)], {2: "out"}


def _matmul_tn(rng, dt, s):
    n, k, m = s
    return [_randn(rng, (n, m), dt), _randn(rng, (n, k), dt), np.empty((m, k), dt)], {2: "out"}


def _matmul_nn(rng, dt, s):
    n, k, m = s
    return [_randn(rng, (n, k), dt), _randn(rng, (k, m), dt), np.empty((n, m), dt)], {2: "out"}


def _elementwise(builder):
    return builder


CASES = {
    "matmul_nt": (_matmul_nt, MATMUL_SHAPES),
    "matmul_tn": (_matmul_tn, MATMUL_SHAPES),
    "matmul_nn": (_matmul_nn, MATMUL_SHAPES),
    "apply_mask": (lambda r, dt, s: ([_randn(r, s, dt), _mask(r, s, dt), np.empty(s, dt)], {2: "out"}),
                   ELEMENTWISE_SHAPES),
    "bias_add": (lambda r, dt, s: ([_randn(r, s, dt), _randn(r, s[1], dt)], {0: "inout"}), ELEMENTWISE_SHAPES),
    "bias_relu_forward": (
        lambda r, dt, s: ([_randn(r, s, dt), _randn(r, s[1], dt), np.empty(s, dt)], {0: "inout", 2: "out"}),
        ELEMENTWISE_SHAPES),
    "bias_relu_dropout_forward": (
        lambda r, dt, s: ([_randn(r, s, dt), _randn(r, s[1], dt), _mask(r, s, dt), np.empty(s, dt)],
                          {0: "inout", 3: "out"}),
        ELEMENTWISE_SHAPES),
    "softmax": (lambda r, dt, s: ([3 * _randn(r, s, dt), np.empty(s, dt)], {1: "out"}), ELEMENTWISE_SHAPES),
    "softmax_cross_entropy": (
        lambda r, dt, s: ([3 * _randn(r, s, dt), r.integers(0, s[1], s[0]), np.empty(s, dt), np.empty(s, dt),
                           np.empty(1)], {2: "out", 3: "out", 4: "out"}),
        ELEMENTWISE_SHAPES),
    "squared_error": (
        lambda r, dt, s: ([_randn(r, s, dt), _randn(r, s, dt), np.empty(s, dt), np.empty(1)], {2: "out", 3: "out"}),
        ELEMENTWISE_SHAPES),
    "relu_backward": (
        lambda r, dt, s: ([_randn(r, s, dt), _with_zeros(r, _randn(r, s, dt)), np.empty(s, dt)], {2: "out"}),
        ELEMENTWISE_SHAPES),
    "relu_dropout_backward": (
        lambda r, dt, s: ([_randn(r, s, dt), _with_zeros(r, _randn(r, s, dt)), _mask(r, s, dt), np.empty(s, dt)],
                          {3: "out"}),
        ELEMENTWISE_SHAPES),
    "bias_grad": (lambda r, dt, s: ([_randn(r, s, dt), np.empty(s[1], dt)], {1: "out"}), ELEMENTWISE_SHAPES),
    "add_regularization_grad": (
        lambda r, dt, s: ([_with_zeros(r, _randn(r, s, dt)), _randn(r, s, dt), 0.3, 0.02], {1: "inout"}),
        ELEMENTWISE_SHAPES),
    "regularization_loss": (lambda r, dt, s: ([_randn(r, s, dt), 0.3, 0.02], {}), ELEMENTWISE_SHAPES),
    "sgd_update": (
        lambda r, dt, s: ([_with_zeros(r, _randn(r, s, dt)), _randn(r, s, dt), 0.1, 0.3, 0.5], {0: "inout"}),
        ELEMENTWISE_SHAPES),
    "sgd_momentum_update": (
        lambda r, dt, s: ([_with_zeros(r, _randn(r, s, dt)), _randn(r, s, dt), _randn(r, s, dt), 0.1, 0.9, 0.3, 0.5],
                          {0: "inout", 2: "inout"}),
        ELEMENTWISE_SHAPES),
}

COMPUTE_KERNELS = [k for k in kernels.KERNELS if k in CASES]


def test_every_compute_kernel_has_a_case():
    untested = set(kernels.KERNELS) - set(CASES) - {
        "to_device", "to_host", "empty", "zeros", "synchronize", "dropout_mask"}  # covered below
    assert not untested


def _kernel_params():
    for backend in HOST_BACKENDS:
        K = kernels.get_backend(backend)
        for name in COMPUTE_KERNELS:
            yield pytest.param(backend, name, name, id=f"{backend}-{name}")
        for alt, standard in K.ALTERNATIVES.items():
            yield pytest.param(backend, alt, standard, id=f"{backend}-{alt}")


def _run(fn, args, outputs):
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    for i, kind in outputs.items():
        if kind == "out":
            args[i].fill(np.nan)
    result = fn(*args)
    return args, result


def _assert_close(got, want, dtype, what):
    tol = TOLERANCE[dtype]
    assert not np.isnan(got).any(), f"{what}: NaN left in the output (an element was not written)"
    scale = max(np.abs(want).max(), np.finfo(dtype).tiny)
    err = np.abs(np.asarray(got, np.float64) - want).max() / scale
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend,name,standard", list(_kernel_params()))
def test_kernel_matches_reference(backend, name, standard, dtype):
    K = kernels.get_backend(backend)
    builder, shapes = CASES[standard]
    rng = np.random.default_rng(abs(hash((name, np.dtype(dtype).name))) % 2**32)
    for shape in shapes:
        args, outputs = builder(rng, dtype, shape)
        ref_args, ref_result = _run(getattr(ref, standard), args, outputs)
        got_args, got_result = _run(getattr(K, name), args, outputs)
        for i in outputs:
            _assert_close(got_args[i], ref_args[i], dtype, f"{name}{shape} argument {i}")
        if ref_result is not None:
            _assert_close(np.float64(got_result), np.float64(ref_result), dtype, f"{name}{shape} result")


def test_signatures_match_reference():
    for backend in HOST_BACKENDS:
        K = kernels.get_backend(backend)
        for name in kernels.KERNELS:
            want = inspect.signature(getattr(ref, name))
            fn = getattr(K, name)
            got = inspect.signature(getattr(fn, "py_func", fn))
            assert list(got.parameters) == list(want.parameters), f"{backend}.{name}{got} != reference{want}"


def test_relu_derivative_at_zero_is_zero():
    for backend in ("numpy",) + HOST_BACKENDS:
        K = kernels.get_backend(backend)
        Z = np.array([[-1.0, 0.0, 2.0]])
        dZ = np.full_like(Z, np.nan)
        K.relu_backward(np.ones_like(Z), Z, dZ)
        np.testing.assert_array_equal(dZ, [[0.0, 0.0, 1.0]])


def test_l1_step_stops_at_zero_instead_of_crossing():
    for backend in ("numpy",) + HOST_BACKENDS:
        K = kernels.get_backend(backend)
        P = np.array([0.05, -0.05, 0.5, 0.0])
        K.sgd_update(P, np.zeros(4), 1.0, 0.0, 0.1)
        # 0.05 - 0.1 would cross zero: clipped; 0.5 - 0.1 does not; sign(0) = 0 leaves 0 alone
        np.testing.assert_allclose(P, [0.0, 0.0, 0.4, 0.0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1,), (7,), (257, 7), (1, 257)])
def test_dropout_mask_bit_identical_to_reference(backend, dtype, shape):
    K = kernels.get_backend(backend)
    for seed, stream, keep in [(0, 0, 0.5), (12345, 7, 0.8), (2**62 + 11, 2**40, 0.3), (5, 1, 1.0)]:
        want = np.empty(shape, dtype)
        got = np.full(shape, np.nan, dtype)
        ref.dropout_mask(seed, stream, keep, want)
        K.dropout_mask(seed, stream, keep, got)
        np.testing.assert_array_equal(got, want)


def test_dropout_mask_statistics_and_streams():
    keep = 0.8
    a = np.empty((200, 500))
    b = np.empty((200, 500))
    ref.dropout_mask(1, 0, keep, a)
    ref.dropout_mask(1, 1, keep, b)
    assert set(np.unique(a)) <= {0.0, 1 / keep}
    # 100000 Bernoulli(0.8) draws: standard error 0.0013, so 0.01 is > 7 sigma
    assert abs((a > 0).mean() - keep) < 0.01
    assert abs(a.mean() - 1.0) < 0.02  # inverted scaling keeps the expected activation
    assert (a != b).mean() > 0.2  # another stream is another mask
    c = np.empty((200, 500))
    ref.dropout_mask(2, 0, keep, c)
    assert (a != c).mean() > 0.2  # another seed too
    ones = np.empty(1000)
    ref.dropout_mask(3, 0, 1.0, ones)
    assert (ones == 1).all()


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        kernels.get_backend("gpu")
    with pytest.raises(TypeError, match="backend must be a string"):
        kernels.get_backend(3)
    assert kernels.resolve_backend_name("auto") in ("cpu", "cuda")
    assert set(kernels.available_backends()) >= {"numpy", "cpu"}


def test_auto_never_picks_the_simulator(monkeypatch):
    from numba import config
    monkeypatch.setattr(config, "ENABLE_CUDASIM", True)
    assert kernels.resolve_backend_name("auto") == "cpu"
    assert "cuda" not in kernels.available_backends(include_simulator=False)


def test_cache_fallback_warns_once_and_still_compiles(monkeypatch):
    import numba

    from kernels import _jit

    real_njit = numba.njit

    def njit_without_locator(*args, cache=False, **kw):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file '/ro/f.py'")
        return real_njit(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit_without_locator)
    monkeypatch.setattr(_jit, "_warned", False)
    with pytest.warns(RuntimeWarning, match="cannot be cached"):
        f = _jit.njit(lambda x: x + 1)
    assert f(1) == 2
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = _jit.njit(lambda x: x * 3)  # second fallback is silent
    assert g(2) == 6
