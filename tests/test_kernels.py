"""The host backends' kernels (numpy, cpu), generated from ``kernels.spec``, and the registry.

Every kernel a host backend offers (and every ``ALTERNATIVES`` entry) is run on
fresh random data (never zeros, but exact zeros planted where relu'(0) and
sign(0) matter), in float32 and float64, at awkward sizes (1, 7, 257), with
every output poisoned (NaN, or -1 for integers) before the call so an element
left unwritten fails; every argument is compared afterwards, inputs included.

Tolerances, relative to the reference's largest magnitude (``kernels.spec.TOLERANCE``):
float64 1e-10, float32 1e-4. Kernels the spec marks exact (dropout masks, the
minibatch gather) must match bit for bit. A composite kernel that is exactly its
chain (the fused layer kernels, the layer updates) must equal that chain of the
same backend's standard kernels bit for bit; the gather, the accumulating losses
and the reduced network's kernels have tests of their own for the rest.

The helpers ``run``, ``check_against_reference``, ``check_chain``,
``check_gather`` and ``check_loss_bookkeeping`` take any backend module;
tests/test_cuda_backend.py runs them on the cuda backend.
"""
import inspect
import os
import subprocess
import sys
import warnings
import zlib

import numba
import numpy as np
import pytest

import kernels
from kernels import jit, spec
from kernels.codes import ACTIVATIONS, RELU
from kernels import numpy_backend as R

DTYPES = (np.float32, np.float64)
HOST_BACKENDS = ("numpy", "cpu")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Test sizes by the symbols a kernel's shapes use (``Kernel.symbols``): 1, 7 and 257 in every position.
SIZES = {
    ("n", "k", "m"): [(1, 1, 1), (7, 1, 7), (1, 257, 7), (257, 7, 1), (7, 257, 257), (64, 33, 17)],
    ("n", "d"): [(1, 1), (1, 257), (7, 1), (7, 7), (257, 7), (33, 257)],
    ("k", "m"): [(1, 1), (257, 7), (7, 257)],
    ("P",): [((1,),), ((7,),), ((257,),), ((1, 1),), ((7, 257),), ((257, 7),)],
    ("shape",): [((1,),), ((7,),), ((257, 7),), ((1, 257),), ((3, 2, 5),)],
}


def dtype_id(dtype):
    return np.dtype(dtype).name


def compute_kernels(backend):
    """The backend's kernels that compute (every one but the array functions)."""
    return [name for name in kernels.kernel_names(backend) if name not in spec.ARRAY_FUNCTIONS]


def cases(kernel, sizes_by_symbols):
    """The size bindings of ``kernel``: one dict per entry of the table, keyed by its symbols."""
    return [dict(zip(kernel.symbols, sizes)) for sizes in sizes_by_symbols[kernel.symbols]]


# ---------------------------------------------------------------- the harness, for any backend
def run(K, function, host_args):
    """Call ``function`` on K's copies of ``host_args``: (host copies of every argument after, its result)."""
    args = [K.to_device(a.copy()) if isinstance(a, np.ndarray) else a for a in host_args]
    result = function(*args)
    return [K.to_host(a) if isinstance(h, np.ndarray) else a for h, a in zip(host_args, args)], result


def assert_matches(kernel, got, want, dtype, what):
    """Every array argument of ``got`` against ``want``: bit for bit when exact, else within the tolerance."""
    tol = spec.TOLERANCE[np.dtype(dtype)]
    for arg, g, w in zip(kernel.args, got, want):
        if not isinstance(w, np.ndarray):
            continue
        label = f"{what}: {arg.name}"
        assert g.shape == w.shape and g.dtype == w.dtype, f"{label}: {g.dtype}{g.shape} != {w.dtype}{w.shape}"
        if kernel.exact or np.issubdtype(w.dtype, np.integer):
            assert np.array_equal(g, w), f"{label}: differs from the reference"
            continue
        assert not np.isnan(g).any(), f"{label}: {np.isnan(g).sum()} element(s) never written (NaN)"
        err = spec.relative_error(g, w, dtype)
        assert err <= tol, f"{label}: relative error {err:.3g} > {tol:g}"


def check_against_reference(K, name, dtype, sizes, standard=None):
    """K.<name> against the reference kernel ``standard`` (default: the same name), every variant of its spec."""
    kernel = spec.SPECS[standard or name]
    rng = np.random.default_rng(zlib.crc32(f"{name}{sizes}{dtype_id(dtype)}".encode()))
    for variant in kernel.variants:
        args = spec.arguments(kernel, sizes, dtype, rng, variant)
        want, want_result = run(R, getattr(R, kernel.name), args)
        got, got_result = run(K, getattr(K, name), args)
        what = f"{K.NAME}.{name} {sizes} {variant or ''}"
        assert_matches(kernel, got, want, dtype, what)
        if kernel.returns:
            assert isinstance(got_result, float), f"{what} returned {type(got_result).__name__}, not a Python float"
            err = spec.relative_error(got_result, want_result, dtype)
            assert err <= spec.TOLERANCE[np.dtype(dtype)], f"{what}: result off by {err:.3g}"


def check_chain(K, name, dtype, sizes):
    """A composite kernel equals its chain of K's standard kernels bit for bit (every variant)."""
    kernel = spec.SPECS[name]
    rng = np.random.default_rng(zlib.crc32(f"chain {name}{sizes}".encode()))
    for variant in kernel.variants:
        args = spec.arguments(kernel, sizes, dtype, rng, variant)
        got, _ = run(K, getattr(K, name), args)
        want, _ = run(K, lambda *a: spec.run_chain(K, kernel, a), args)
        for arg, g, w in zip(kernel.args, got, want):
            if isinstance(w, np.ndarray):
                assert not np.isnan(g).any(), f"{K.NAME}.{name}: {arg.name} never written"
                assert np.array_equal(g, w), f"{K.NAME}.{name} {sizes}: {arg.name} differs from its chain"


def check_gather(K, dtype, sizes):
    """gather_minibatch: rows (and labels) taken in perm order, then exactly dropout_mask + apply_mask."""
    kernel = spec.SPECS["gather_minibatch"]
    rng = np.random.default_rng(zlib.crc32(f"gather {sizes}".encode()))
    for variant in kernel.variants:
        args = spec.arguments(kernel, sizes, dtype, rng, variant)
        X, perm, start, out, labels, labels_out, seed, stream, keep = args
        (_, _, _, got, _, got_labels, *_), _ = run(K, K.gather_minibatch, args)
        rows = perm[start:start + out.shape[0]]
        taken = K.to_device(X[rows])
        if keep < 1.0:
            mask = K.to_device(np.full(out.shape, np.nan, dtype))
            K.dropout_mask(seed, stream, keep, mask)
            K.apply_mask(taken, mask, taken)
        assert np.array_equal(K.to_host(taken), got), f"{K.NAME} gather {sizes} {variant}: rows differ"
        if labels is not None:
            np.testing.assert_array_equal(got_labels, labels[rows])


def check_loss_bookkeeping(K, name, dtype):
    """An accumulating loss adds loss * rows while all is finite; a non-finite one records its step, ends the sum."""
    kernel = spec.SPECS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    args = spec.arguments(kernel, {"n": 7, "d": 3}, dtype, rng)
    stats_at = kernel.arg_names.index("epoch_stats")
    loss_at = kernel.arg_names.index("loss_out")
    device = [K.to_device(a) if isinstance(a, np.ndarray) else a for a in args[:-1]]
    stats = device[stats_at] = K.to_device(np.array([0.0, -1.0]))
    bad = device[:]
    bad[0] = K.to_device(np.where(np.arange(args[0].size).reshape(args[0].shape) == 0, np.nan, args[0]))
    getattr(K, name)(*device, 0)
    loss = K.to_host(device[loss_at])[0]
    assert np.isfinite(loss)
    np.testing.assert_array_equal(K.to_host(stats), [0.0 + loss * 7, -1.0])
    getattr(K, name)(*bad, 2)
    assert not np.isfinite(K.to_host(bad[loss_at])[0])
    getattr(K, name)(*device, 3)
    np.testing.assert_array_equal(K.to_host(stats), [loss * 7, 2.0])  # the step recorded, the sum stopped there


# ---------------------------------------------------------------- the spec and the signatures
def test_every_kernel_has_a_spec_test_sizes_and_the_references_parameters():
    assert kernels.KERNELS == spec.ARRAY_FUNCTIONS + spec.names("standard")
    for backend in kernels.BACKENDS:
        for group in kernels.BACKEND_GROUPS[backend]:
            assert group in spec.GROUPS
    for name, kernel in spec.SPECS.items():
        assert kernel.symbols in SIZES, f"{name}: no test sizes for symbols {kernel.symbols}"
        parameters = tuple(inspect.signature(getattr(R, name)).parameters)
        assert kernel.arg_names == parameters, f"spec {name}{kernel.arg_names} != reference{parameters}"
        assert all(step.kernel in kernels.KERNELS for step in kernel.chain), name
        assert kernel.site is None or kernel.site in spec.SITES, name
        assert all(a.fill.partition(":")[0] in spec.FILL_KINDS for a in kernel.args if isinstance(a, spec.Array))
        assert (kernel.group == "standard") == (not kernel.chain), name


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_signatures_match_reference(backend):
    K = kernels.get_backend(backend)
    assert K.NAME == backend
    for name in kernels.kernel_names(backend):
        want = inspect.signature(getattr(R, name))
        fn = getattr(K, name)
        got = inspect.signature(getattr(fn, "py_func", fn))
        assert list(got.parameters) == list(want.parameters), f"{backend}.{name}{got} != reference{want}"
    for alternative, standard in K.ALTERNATIVES.items():
        assert standard in kernels.KERNELS
        fn = getattr(K, alternative)
        assert list(inspect.signature(getattr(fn, "py_func", fn)).parameters) == list(spec.SPECS[standard].arg_names)


# ---------------------------------------------------------------- every kernel against the reference
def _reference_params():
    K = kernels.get_backend("cpu")
    pairs = [(name, name) for name in compute_kernels("cpu")] + list(K.ALTERNATIVES.items())
    return [pytest.param(name, standard, dtype, id=f"cpu-{name}-{dtype_id(dtype)}")
            for name, standard in pairs for dtype in DTYPES]


@pytest.mark.parametrize("name, standard, dtype", _reference_params())
def test_kernel_matches_reference(name, standard, dtype):
    K = kernels.get_backend("cpu")
    for sizes in cases(spec.SPECS[standard], SIZES):
        check_against_reference(K, name, dtype, sizes, standard)


def _pure_chain_params():
    """Every (host backend, composite kernel that is exactly its chain, dtype)."""
    return [pytest.param(backend, name, dtype, id=f"{backend}-{name}-{dtype_id(dtype)}")
            for backend in HOST_BACKENDS for name in compute_kernels(backend)
            if spec.SPECS[name].chain and not spec.SPECS[name].also for dtype in DTYPES]


@pytest.mark.parametrize("backend, name, dtype", _pure_chain_params())
def test_composite_kernel_equals_its_chain(backend, name, dtype):
    K = kernels.get_backend(backend)
    for sizes in cases(spec.SPECS[name], SIZES):
        check_chain(K, name, dtype, sizes)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gather_minibatch_is_take_then_the_standard_input_mask(backend, dtype):
    for sizes in cases(spec.SPECS["gather_minibatch"], SIZES):
        check_gather(kernels.get_backend(backend), dtype, sizes)


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("name", ["softmax_cross_entropy_accumulate", "squared_error_accumulate",
                                  "sigmoid_cross_entropy_accumulate", "poisson_loss_accumulate"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_accumulating_losses_keep_the_epoch_sum_until_a_loss_diverges(backend, name, dtype):
    check_loss_bookkeeping(kernels.get_backend(backend), name, dtype)


def _bits(a):
    return a.view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_reduced_kernels_are_the_standard_kernel_then_the_scaling(backend, dtype):
    """Bit for bit, signed zeros included: each backend's standard kernel, then the scaling in NumPy."""
    K = kernels.get_backend(backend)
    rng = np.random.default_rng(50)
    scale = dtype(1 / 0.7)
    for n, d in SIZES[("n", "d")]:
        Z, dH, b = (rng.standard_normal(shape).astype(dtype) for shape in ((n, d), (n, d), d))
        Z[rng.random((n, d)) < 0.25] = 0
        for f in range(len(ACTIVATIONS)):
            Z1, H1, Z2, H2 = Z.copy(), np.full_like(Z, np.nan), Z.copy(), np.full_like(Z, np.nan)
            K.bias_activation_scale_forward(Z1, b, f, scale, H1)
            K.bias_activation_forward(Z2, b, f, H2)
            H2 *= scale
            assert np.array_equal(_bits(Z1), _bits(Z2)) and np.array_equal(_bits(H1), _bits(H2))
            dZ1, dZ2 = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
            K.activation_scale_backward(dH, Z, f, scale, dZ1)
            K.activation_backward(dH, Z, f, dZ2)
            dZ2 *= scale
            assert np.array_equal(_bits(dZ1), _bits(dZ2))
            # a Python float scale acts as its value in the array dtype, as NumPy's H *= scale
            K.activation_scale_backward(dH, Z, f, 1 / 0.3, dZ1)
            K.activation_scale_backward(dH, Z, f, dtype(1 / 0.3), dZ2)
            K.bias_activation_scale_forward(Z.copy(), b, f, 1 / 0.3, H1)
            K.bias_activation_scale_forward(Z.copy(), b, f, dtype(1 / 0.3), H2)
            assert np.array_equal(_bits(dZ1), _bits(dZ2)) and np.array_equal(_bits(H1), _bits(H2))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_outputs_may_be_their_inputs_where_the_spec_says(backend, dtype):
    """In place equals out of place, every variant (each activation): the cpu kernels take another loop then."""
    K = kernels.get_backend(backend)
    rng = np.random.default_rng(51)
    for kernel in spec.SPECS.values():
        for output, source in kernel.aliases:
            if kernel.name not in kernels.kernel_names(backend):
                continue
            for variant in kernel.variants:
                args = spec.arguments(kernel, {"n": 7, "d": 33}, dtype, rng, variant)
                want, _ = run(K, getattr(K, kernel.name), args)
                names = list(kernel.arg_names)
                aliased = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
                aliased[names.index(output)] = aliased[names.index(source)]
                getattr(K, kernel.name)(*aliased)
                got = aliased[names.index(output)]
                assert np.array_equal(_bits(got), _bits(want[names.index(output)])), f"{kernel.name} {variant}"


# ---------------------------------------------------------------- the cpu kernels inside compiled code
def test_cpu_gather_minibatch_from_njit_code_with_labels_none_or_omitted():
    """The cpu epoch calls gather_minibatch positionally from njit code, with labels or None, or 2-D targets alone."""
    C = kernels.get_backend("cpu")

    @numba.njit
    def with_labels(X, perm, start, out, labels, labels_out, seed, stream, keep):
        C.gather_minibatch(X, perm, start, out, labels, labels_out, seed, stream, keep)

    @numba.njit
    def without_labels(X, perm, start, out, seed, stream, keep):
        C.gather_minibatch(X, perm, start, out, None, None, seed, stream, keep)

    @numba.njit
    def targets_only(T, perm, start, out):
        C.gather_minibatch(T, perm, start, out)

    rng = np.random.default_rng(52)
    X = rng.standard_normal((9, 33)).astype(np.float32)
    perm, labels = rng.permutation(9), rng.integers(0, 4, 9)
    want, want_labels = np.full((5, 33), np.nan, np.float32), np.full(5, -1)
    R.gather_minibatch(X, perm, 3, want, labels, want_labels, 7, 11, 0.7)
    for keep in (0.7, 1.0):
        if keep == 1.0:
            want, want_labels = X[perm[3:8]], labels[perm[3:8]]
        out, labels_out = np.full((5, 33), np.nan, np.float32), np.full(5, -1)
        with_labels(X, perm, 3, out, labels, labels_out, 7, 11, keep)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(labels_out, want_labels)
        out = np.full((5, 33), np.nan, np.float32)
        without_labels(X, perm, 3, out, 7, 11, keep)
        np.testing.assert_array_equal(out, want)
    out = np.full((5, 33), np.nan, np.float32)
    targets_only(X, perm, 3, out)
    np.testing.assert_array_equal(out, X[perm[3:8]])


# ---------------------------------------------------------------- kernel properties
def test_relu_derivative_at_zero_is_zero():
    for backend in HOST_BACKENDS:
        K = kernels.get_backend(backend)
        Z = np.array([[-1.0, 0.0, 2.0]])
        dZ = np.full_like(Z, np.nan)
        K.activation_backward(np.ones_like(Z), Z, RELU, dZ)
        np.testing.assert_array_equal(dZ, [[0.0, 0.0, 1.0]])


def test_l1_step_stops_at_zero_instead_of_crossing():
    for backend in HOST_BACKENDS:
        K = kernels.get_backend(backend)
        P = np.array([0.05, -0.05, 0.5, 0.0])
        K.sgd_update(P, np.zeros(4), 1.0, 0.0, 0.1)
        # 0.05 - 0.1 would cross zero: clipped; 0.5 - 0.1 does not; sign(0) = 0 leaves 0 alone
        np.testing.assert_allclose(P, [0.0, 0.0, 0.4, 0.0], rtol=0, atol=1e-15)


def test_dropout_mask_statistics_and_streams():
    keep = 0.8
    a = np.empty((200, 500))
    b = np.empty((200, 500))
    R.dropout_mask(1, 0, keep, a)
    R.dropout_mask(1, 1, keep, b)
    assert set(np.unique(a)) <= {0.0, 1 / keep}
    # 100000 Bernoulli(0.8) draws: standard error 0.0013, so 0.01 is > 7 sigma
    assert abs((a > 0).mean() - keep) < 0.01
    assert abs(a.mean() - 1.0) < 0.02  # inverted scaling keeps the expected activation
    assert (a != b).mean() > 0.2  # another stream is another mask
    c = np.empty((200, 500))
    R.dropout_mask(2, 0, keep, c)
    assert (a != c).mean() > 0.2  # another seed too
    ones = np.empty(1000)
    R.dropout_mask(3, 0, 1.0, ones)
    assert (ones == 1).all()


# ---------------------------------------------------------------- the registry
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


# ---------------------------------------------------------------- the on-disk cache
def test_cache_fallback_warns_once_and_still_compiles(monkeypatch):
    real_njit = numba.njit

    def njit_without_locator(*args, cache=False, **kw):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file '/ro/f.py'")
        return real_njit(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit_without_locator)
    jit.reset_warning()
    try:
        with pytest.warns(RuntimeWarning, match="cannot be cached"):
            f = jit.njit(lambda x: x + 1)
        assert f(1) == 2
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            g = jit.njit(lambda x: x * 3, depends_on=(R,))  # second fallback is silent
        assert g(2) == 6
    finally:
        jit.reset_warning()


_KERNEL_MODULE = '''
from kernels.jit import njit
VALUE = {value}

@njit
def value():
    return VALUE
'''
_CALLER_MODULE = '''
import kernel_module
from kernels.jit import njit

@njit(depends_on=(kernel_module,))
def tracked():
    return kernel_module.value()

@njit
def untracked():
    return kernel_module.value()
'''


def test_depends_on_recompiles_a_cached_caller_when_the_module_it_calls_changes(tmp_path):
    (tmp_path / "kernel_module.py").write_text(_KERNEL_MODULE.format(value=1))
    (tmp_path / "caller_module.py").write_text(_CALLER_MODULE)
    script = "import caller_module; print(caller_module.tracked(), caller_module.untracked())"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]))

    def fresh_process():
        proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout.split()

    assert fresh_process() == ["1", "1"]
    assert any((tmp_path / "cache").rglob("caller_module.tracked-*.nbi")), "the caller was not cached"
    (tmp_path / "kernel_module.py").write_text(_KERNEL_MODULE.format(value=22))
    # tracked sees the edit; untracked, keyed on its own file only, loads its stale machine code
    # (the control: the mechanism is what makes the difference)
    assert fresh_process() == ["22", "1"]


def test_cpu_kernels_name_the_modules_they_compile_in_as_dependencies():
    """cpu_backend's own kernels compile in counter_rng, codes, cpu_losses (sigmoid) and cpu_blas (gemm);
    the losses and the updates call nothing outside their own file (numba keys those on it already)."""
    from kernels import cpu_blas, cpu_losses, cpu_updates
    C = kernels.get_backend("cpu")
    assert C.DEPENDS_ON == (kernels.counter_rng, kernels.codes, cpu_losses, cpu_blas)
    for name in compute_kernels("cpu"):
        module = getattr(C, name).py_func.__module__
        want = {"kernels.cpu_backend": jit.sources_digest(C.DEPENDS_ON), "kernels.cpu_losses": None,
                "kernels.cpu_updates": None}[module]
        assert jit.dependency_digest(getattr(C, name)) == want, f"cpu_backend.{name} ({module}): wrong cache key"
    assert {getattr(C, name).py_func.__module__ for name in compute_kernels("cpu")} == {
        "kernels.cpu_backend", "kernels.cpu_losses", "kernels.cpu_updates"}
    for module in (cpu_losses, cpu_updates):  # nothing from another kernel module is compiled in
        assert "from ." not in open(module.__file__).read().replace("from . import jit", "")


# ---------------------------------------------------------------- the cpu backend's BLAS
def test_cpu_products_refuse_operands_whose_rows_are_not_contiguous():
    C = kernels.get_backend("cpu")
    A = np.ones((8, 6), np.float32)
    with pytest.raises(ValueError, match="rows must be contiguous"):
        C.matmul_nt(A[:, ::2], np.ones((5, 3), np.float32), np.empty((8, 5), np.float32))


def test_the_bound_blas_library_is_part_of_the_cache_key(monkeypatch):
    """Code compiled against one library's integer width must never load against the other's."""
    from kernels import cpu_blas
    before = jit.sources_digest([cpu_blas])
    monkeypatch.setattr(cpu_blas, "CACHE_KEY", cpu_blas.CACHE_KEY + " (another library)")
    assert jit.sources_digest([cpu_blas]) != before


def test_cpu_products_on_scipys_blas(tmp_path):
    """NUMBA_MLP_BLAS=scipy binds SciPy's cython_blas (32-bit integers): the products still match NumPy."""
    script = (
        "import numpy as np\n"
        "from kernels import cpu_backend as C, cpu_blas\n"
        "assert cpu_blas.CACHE_KEY == 'scipy.linalg.cython_blas', cpu_blas.CACHE_KEY\n"
        "rng = np.random.default_rng(0)\n"
        "for dt in (np.float32, np.float64):\n"
        "    A, B = rng.standard_normal((7, 257)).astype(dt), rng.standard_normal((33, 257)).astype(dt)\n"
        "    out = np.full((7, 33), np.nan, dt); C.matmul_nt(A, B, out)\n"
        "    np.testing.assert_allclose(out, A @ B.T, rtol=1e-4)\n"
        "    W = rng.standard_normal((257, 33)).astype(dt); want = 0.5 * W - 0.1 * (A.T @ out)\n"
        "    C.matmul_tn_update(A, out, -0.1, 0.5, W)\n"
        "    assert np.abs(W - want).max() <= 1e-4 * np.abs(want).max()\n"
        "print('ok')\n")
    environment = dict(os.environ, NUMBA_MLP_BLAS="scipy", NUMBA_CACHE_DIR=str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment, capture_output=True,
                              text=True)
    assert finished.returncode == 0 and finished.stdout.strip() == "ok", finished.stderr
