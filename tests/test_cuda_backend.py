"""The cuda backend against the NumPy reference, kernel by kernel, generated from ``kernels.spec``.

Without a GPU these run under numba's CUDA simulator (the root conftest.py sets
NUMBA_ENABLE_CUDASIM=1 before numba is imported), so shapes stay small: the
simulator runs every GPU thread as a Python thread. On a real GPU (e.g.
benchmarks/gpu_check.sh) the same tests add realistic sizes, 257 and up.

Tolerances, relative to the reference's largest magnitude (``kernels.spec.TOLERANCE``):
    float64  1e-10
    float32  1e-4
Kernels the spec marks exact (dropout masks, the minibatch gather) must equal the
reference bit for bit, and each fused kernel its chain of cuda standard kernels.
Every output is poisoned (NaN, or -1 for integers) before the call, so an
element a kernel forgets to write fails the comparison; the harness is
tests/test_kernels.py's.

The simulator runs kernels as Python, so it cannot tell whether a kernel would
compile for a real GPU, nor whether float32 code slips into float64. One test
therefore compiles every kernel for the real target (down to LLVM IR, which
needs no GPU) in a subprocess and checks the dtypes of its typed IR.
"""
import functools
import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_kernels import (
    DTYPES, REPO, assert_matches, cases, check_against_reference, check_chain, check_gather,
    check_loss_bookkeeping, compute_kernels, dtype_id, run,
)

import kernels
from kernels import numpy_backend as R
from kernels import spec
from kernels.codes import ACTIVATIONS, LOGISTIC, RELU, TANH

C = kernels.get_backend("cuda")  # no GPU: the simulator (root conftest); fails loudly if unusable

ON_GPU = not C.SIMULATOR
# uint64 arithmetic wraps modulo 2**64 by design; under the simulator the counter-based
# generator runs as NumPy scalar code, which warns about every wrap.
UINT64_WRAPS = pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")


def gpu_only(*sizes):
    """Realistic sizes, only on a real GPU: the simulator would take minutes."""
    return list(sizes) if ON_GPU else []


ACCUMULATING_LOSSES = [name for name in spec.names("training") if name.endswith("_accumulate")]

# Test sizes by the symbols a kernel's shapes use, or by kernel name where a kernel needs
# fewer (each launch of 256 simulated threads costs a fraction of a second). 1, 7, and
# sizes that straddle the 16/32-wide tiles and the 32x8 element-wise blocks.
SIZES = {
    # (n, k, m): the product's output is n x m or m x k; k and m are inputs and outputs of a layer
    ("n", "k", "m"): [(1, 1, 1), (7, 9, 5), (17, 33, 20)] + gpu_only((257, 784, 513), (1000, 257, 10)),
    ("n", "d"): [(1, 1), (7, 7), (1, 33), (9, 33)] + gpu_only((257, 1000), (1000, 10)),
    ("k", "m"): [(1, 1), (33, 7)] + gpu_only((784, 513)),
    ("P",): [((1,),), ((7,),), ((1, 1),), ((9, 33),)] + gpu_only(((1000,),), ((513, 784),)),
    ("shape",): [((1,),), ((33,),), ((1, 1),), ((9, 33),), ((3, 2, 5),)] + gpu_only(((257, 1000),)),
}
SIZES_BY_KERNEL = {
    **{name: [(1, 1, 1), (9, 20, 33)] + gpu_only((257, 784, 513)) for name in spec.names("fused")},
    # one case per activation each: the simulator runs one block; the template's edges and its
    # many blocks and K slices are linear_forward's and the products' to test
    **{name: [(7, 9, 5)] + gpu_only((1, 1, 1), (9, 20, 33), (257, 784, 513))
       for name in spec.names("fused") if len(spec.SPECS[name].variants) > 1},
    # these reduce as squared_error does (tested at every size): the smallest and largest size suffice
    **{name: [(1, 1), (9, 33)] + gpu_only((7, 7), (1, 33), (257, 1000), (1000, 10))
       for name in ("sigmoid_cross_entropy", "poisson_loss")},
    # one block of rows or one row: the loss kernels' edge sizes are tested with the plain losses
    "gather_minibatch": [(1, 1), (5, 33)] + gpu_only((257, 784)),
    **{name: [(7, 7)] + gpu_only((1000, 10)) for name in ACCUMULATING_LOSSES},
}
# One size each for the composites' own properties, a block of threads per launch.
CHAIN_SIZES = {("n", "k", "m"): {"n": 7, "k": 9, "m": 5}, ("k", "m"): {"k": 9, "m": 7}}


def kernel_sizes(name):
    kernel = spec.SPECS[name]
    table = {kernel.symbols: SIZES_BY_KERNEL[name]} if name in SIZES_BY_KERNEL else SIZES
    return cases(kernel, table)


def size_id(sizes):
    return "x".join("x".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in sizes.values())


def poisoned(shape, dtype):
    return C.to_device(np.full(shape, np.nan, dtype=dtype))


def assert_close(got, want, dtype, what):
    tol = spec.TOLERANCE[np.dtype(dtype)]
    assert not np.isnan(got).any(), f"{what}: element(s) never written (NaN)"
    err = spec.relative_error(got, want, dtype)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


# ---------------------------------------------------------------- registry and API
def test_registry_returns_this_package():
    import kernels.cuda as package
    assert kernels.get_backend("cuda") is package
    assert package.NAME == "cuda"
    assert "cuda" in kernels.available_backends(include_simulator=True)


@pytest.mark.parametrize("name", kernels.kernel_names("cuda"))
def test_signature_matches_reference(name):
    assert callable(getattr(C, name, None)), f"cuda backend lacks {name}"
    assert inspect.signature(getattr(C, name)) == inspect.signature(getattr(R, name))


def test_alternatives_fused_and_training_are_well_formed():
    assert C.ALTERNATIVES, "expected at least the naive and tiled products"
    for alt, std in C.ALTERNATIVES.items():
        assert std in kernels.KERNELS
        assert inspect.signature(getattr(C, alt)) == inspect.signature(getattr(C, std))
    for table, group in ((C.FUSED, "fused"), (C.TRAINING, "training")):
        assert tuple(table) == spec.names(group)
        for name, chain in table.items():
            assert name not in kernels.KERNELS and callable(getattr(C, name)) and getattr(C, name).__doc__
            assert chain and all(k in kernels.KERNELS for k in chain)


def test_arrays_round_trip():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((7, 5))
    d = C.to_device(a)
    np.testing.assert_array_equal(C.to_host(d), a)
    assert C.to_device(d) is d, "a device array of the right dtype must be returned as is"
    assert C.to_device(d, np.float64) is d
    d32 = C.to_device(d, np.float32)
    assert d32.dtype == np.float32
    np.testing.assert_array_equal(C.to_host(d32), a.astype(np.float32))
    strided = C.to_device(a[:, ::2], np.float32)   # a non-contiguous host array
    np.testing.assert_array_equal(C.to_host(strided), a[:, ::2].astype(np.float32))
    e = C.empty((3, 4), np.float32)
    assert e.shape == (3, 4) and e.dtype == np.float32
    z = C.zeros((3,), np.float64)
    np.testing.assert_array_equal(C.to_host(z), np.zeros(3))
    C.synchronize()
    assert isinstance(C.to_host(a), np.ndarray)


def test_free_memory_is_bytes_or_none():
    free = C.free_memory()
    if C.SIMULATOR:
        assert free is None   # the simulator reports inf
    else:
        assert isinstance(free, int) and free > 0


# ---------------------------------------------------------------- every kernel against the reference
def _kernel_params():
    pairs = [(name, name) for name in compute_kernels("cuda")] + list(C.ALTERNATIVES.items())
    for name, standard in pairs:
        marks = [UINT64_WRAPS] if standard in ("dropout_mask", "gather_minibatch") else []
        for dtype in DTYPES:
            for sizes in kernel_sizes(standard):
                yield pytest.param(name, standard, dtype, sizes, marks=marks,
                                   id=f"{name}-{dtype_id(dtype)}-{size_id(sizes)}")


@pytest.mark.parametrize("name, standard, dtype, sizes", list(_kernel_params()))
def test_kernel_matches_reference(name, standard, dtype, sizes):
    check_against_reference(C, name, dtype, sizes, standard)


# The composites' own properties, in float32 at one size each: the float64 kernels are
# the same code (and are compared with the reference above), and the simulator is slow.
@pytest.mark.parametrize("name", [n for n in compute_kernels("cuda") if spec.SPECS[n].chain and not spec.SPECS[n].also])
def test_composite_kernel_equals_its_chain(name):
    check_chain(C, name, np.float32, CHAIN_SIZES[spec.SPECS[name].symbols])


@UINT64_WRAPS
def test_gather_minibatch_is_take_then_the_standard_input_mask():
    check_gather(C, np.float32, kernel_sizes("gather_minibatch")[-1])


@pytest.mark.parametrize("name", ACCUMULATING_LOSSES)
def test_accumulating_losses_keep_the_epoch_sum_until_a_loss_diverges(name):
    check_loss_bookkeeping(C, name, np.float32)


# ---------------------------------------------------------------- matrix products
# A tiny blocking (4x4 threads, 2x2 outputs each, 8x8 tiles, K slices of 4) runs the
# register-blocked kernel over many blocks and K slices at simulator-friendly sizes.
TINY = C.MatmulConfig(4, 4, 2, 2, 4)

# The production blockings at one block's worth (the simulator is slow at 256 threads).
BLOCKED_CASES = ([("tiny", dtype) for dtype in DTYPES]
                 + [("small", np.float32), ("large", np.float64)]
                 + gpu_only(("small", np.float64), ("large", np.float32)))


def _matmul_operands(rng, orient, n, k, m, dtype):
    """Operands of ``matmul_<orient>`` whose output is (n, m) with reduction length k."""
    if orient == "nt":
        return rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((m, k)).astype(dtype)
    if orient == "tn":
        return rng.standard_normal((k, n)).astype(dtype), rng.standard_normal((k, m)).astype(dtype)
    return rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((k, m)).astype(dtype)


@pytest.mark.parametrize("cfg_name, dtype", BLOCKED_CASES, ids=lambda v: dtype_id(v) if isinstance(v, type) else v)
@pytest.mark.parametrize("orient", ("nt", "tn", "nn"))
def test_blocked_matmul_configs(orient, cfg_name, dtype):
    cfg = {"tiny": TINY, "small": C.MATMUL_SMALL, "large": C.MATMUL_LARGE}[cfg_name]
    rng = np.random.default_rng(7)
    n, k, m = (19, 13, 17) if cfg == TINY else (33, 17, 31)
    if ON_GPU:
        n, k, m = (257, 300, 513)
    A, B = _matmul_operands(rng, orient, n, k, m, dtype)
    ref = np.empty((n, m), dtype)
    getattr(R, f"matmul_{orient}")(A, B, ref)
    out = poisoned((n, m), dtype)
    C.matmul_blocked(C.to_device(A), C.to_device(B), out, orient, cfg)
    assert_close(C.to_host(out), ref, dtype, f"blocked {orient} {cfg}")


def test_matmul_rejects_mismatched_shapes():
    a = C.to_device(np.ones((3, 4)))
    with pytest.raises(ValueError):
        C.matmul_nt(a, C.to_device(np.ones((2, 5))), C.empty((3, 2), np.float64))
    with pytest.raises(ValueError):
        C.matmul_nn(a, C.to_device(np.ones((4, 2))), C.empty((3, 3), np.float64))
    with pytest.raises(TypeError):
        C.matmul_nt(a, C.to_device(np.ones((2, 4), np.float32)), C.empty((3, 2), np.float64))


# ---------------------------------------------------------------- losses
def test_softmax_cross_entropy_takes_int32_labels():
    kernel = spec.SPECS["softmax_cross_entropy"]
    args = spec.arguments(kernel, {"n": 7, "d": 10}, np.float32, np.random.default_rng(20))
    args[1] = args[1].astype(np.int32)
    want, _ = run(R, R.softmax_cross_entropy, args)
    got, _ = run(C, C.softmax_cross_entropy, args)
    assert got[1].dtype == np.int32
    assert_matches(kernel, got, want, np.float32, "int32 labels")


def test_loss_reduction_is_deterministic_and_stays_on_device():
    rng = np.random.default_rng(21)
    n = 5000 if ON_GPU else 33   # many blocks of partial sums on a GPU
    logits = C.to_device(rng.standard_normal((n, 10)).astype(np.float32))
    labels = C.to_device(rng.integers(0, 10, n))
    probs, dl = C.empty((n, 10), np.float32), C.empty((n, 10), np.float32)
    losses = []
    for _ in range(2):
        loss_out = poisoned((1,), np.float64)
        C.softmax_cross_entropy(logits, labels, probs, dl, loss_out)
        assert not isinstance(loss_out, np.ndarray), "loss_out must stay a device array"
        losses.append(C.to_host(loss_out)[0])
    assert losses[0] == losses[1]


def test_loss_scratch_buffer_grows_when_a_batch_needs_more_blocks(monkeypatch):
    # Start from a one-slot scratch buffer: a 2-block loss must replace it, not overrun it.
    monkeypatch.setitem(C.scratch, "partials", C.empty(1, np.float64))
    check_against_reference(C, "squared_error", np.float64, {"n": 1, "d": 33})
    assert C.scratch["partials"].shape[0] >= 2


# ---------------------------------------------------------------- kernel properties
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_relu_derivative_at_zero_is_zero(dtype):
    Z = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.0]], dtype)
    dZ = poisoned(Z.shape, dtype)
    C.activation_backward(C.to_device(np.ones_like(Z)), C.to_device(Z), RELU, dZ)
    np.testing.assert_array_equal(C.to_host(dZ), [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_saturating_activations_stay_finite_for_large_inputs(dtype):
    """logistic and tanh at |z| far beyond exp's range: f is 0, 1 or +-1 and f' is 0, never NaN."""
    Z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype)
    H, dZ = poisoned(Z.shape, dtype), poisoned(Z.shape, dtype)
    for code, values, slopes in ((LOGISTIC, [0, 0, 0.5, 1, 1], [0, 0, 0.25, 0, 0]),
                                 (TANH, [-1, -1, 0, 1, 1], [0, 0, 1, 0, 0])):
        C.bias_activation_forward(C.to_device(Z), C.to_device(np.zeros(5, dtype)), code, H)
        C.activation_backward(C.to_device(np.ones_like(Z)), C.to_device(Z), code, dZ)
        np.testing.assert_allclose(C.to_host(H), [values], atol=1e-30, err_msg=ACTIVATIONS[code])
        np.testing.assert_allclose(C.to_host(dZ), [slopes], atol=1e-30, err_msg=ACTIVATIONS[code])


def test_outputs_may_be_their_inputs_where_the_spec_says():
    rng = np.random.default_rng(51)
    for kernel in spec.SPECS.values():
        for output, source in kernel.aliases:
            if kernel.name not in kernels.kernel_names("cuda"):
                continue
            names = list(kernel.arg_names)
            args = spec.arguments(kernel, {"n": 7, "d": 7}, np.float64, rng)
            want = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            getattr(R, kernel.name)(*want)
            dev = [C.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
            dev[names.index(output)] = dev[names.index(source)]
            getattr(C, kernel.name)(*dev)
            assert_close(C.to_host(dev[names.index(output)]), want[names.index(output)], np.float64, kernel.name)


def test_sgd_without_regularisation_is_plain_sgd():
    rng = np.random.default_rng(34)
    P, dP = rng.standard_normal((7, 7)), rng.standard_normal((7, 7))
    d = C.to_device(P)
    C.sgd_update(d, C.to_device(dP), 0.5, 0.0, 0.0)
    assert_close(C.to_host(d), P - 0.5 * dP, np.float64, "plain sgd")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_l1_step_stops_at_zero_instead_of_crossing(dtype):
    P = np.array([[0.01, -0.01, 0.5], [-0.5, 0.0, 0.02]], dtype)
    dP = np.array([[1.0, -1.0, 0.1], [-0.1, 1.0, -1.0]], dtype)   # pushes the small ones across
    V = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.3]], dtype)
    d = C.to_device(P)
    C.sgd_update(d, C.to_device(dP), 0.1, 0.0, 0.01)
    got = C.to_host(d)
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[1, 1] != 0 and got[1, 2] > 0
    d, dv = C.to_device(P), C.to_device(V)
    C.sgd_momentum_update(d, C.to_device(dP), dv, 0.1, 0.9, 0.0, 0.01)
    got, vel = C.to_host(d), C.to_host(dv)
    assert got[0, 0] == 0 and got[0, 1] == 0 and vel[0, 0] == 0 and vel[0, 1] == 0


@UINT64_WRAPS
def test_dropout_mask_keep_one_keeps_everything():
    out = poisoned((7, 5), np.float32)
    C.dropout_mask(3, 1, 1.0, out)
    np.testing.assert_array_equal(C.to_host(out), np.ones((7, 5), np.float32))


# ---------------------------------------------------------------- real-target compilation
# A script; the lines ``def exercise():`` and ``exercise()`` delimit the part that launches
# the kernels, so that another test can run the same checks on kernels of its own.
COMPILE_CHECK = textwrap.dedent('''
    import json, os, sys, types as pytypes
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    import numpy as np
    try:  # numba-cuda internals: a later release may move them
        from numba import cuda
        import numba.cuda.dispatcher as D
        from numba.cuda.compiler import compile_cuda
        from numba.cuda import types as nbt
        from numba.cuda.core import ir
        from numba.cuda.typing.typeof import typeof, Purpose
    except ImportError as exc:
        print(json.dumps({"unavailable": str(exc)}))
        sys.exit(0)

    # Lower each launched kernel to LLVM IR for an sm_90 target: typing and lowering
    # need no driver. Launches are intercepted; device memory is stood in by NumPy.
    CC = (9, 0)
    dev = pytypes.SimpleNamespace(compute_capability=CC, MULTIPROCESSOR_COUNT=132)
    D.get_current_device = lambda: dev
    cuda.get_current_device = lambda: dev
    cuda.device_array = lambda shape, dtype=np.float64, **kw: np.empty(shape, dtype)
    cuda.to_device = lambda a, **kw: np.array(a)
    cuda.synchronize = lambda: None
    compiled = {}

    def fake_getitem(self, launch_config):
        def launch(*args):
            argtys = tuple(typeof(a, Purpose.argument) for a in args)
            if (self.py_func, argtys) not in compiled:
                compiled[(self.py_func, argtys)] = compile_cuda(self.py_func, nbt.void, argtys, cc=CC)
        return launch

    D.CUDADispatcher.__getitem__ = fake_getitem
    sys.path.insert(0, os.getcwd())
    import kernels.cuda as C

    F32, F64 = nbt.float32, nbt.float64
    device_functions = set()

    def check(cres, name, pure, problems):
        """Flag float32 values promoted to float64 (and any float64 at all when pure)."""
        ta = cres.type_annotation
        tm, ct = ta.typemap, ta.calltypes
        if pure:
            problems += [f"{name}: float64 variable {v}" for v, t in tm.items() if t == F64]
        for block in ta.blocks.values():
            for stmt in block.body:
                if isinstance(stmt, (ir.SetItem, ir.StaticSetItem)):
                    arr, val = tm[stmt.target.name], tm[stmt.value.name]
                    if getattr(arr, "dtype", None) == F32 and val != F32:
                        problems.append(f"{name}: {val} stored in a float32 array, line {stmt.loc.line}")
                if not (isinstance(stmt, ir.Assign) and isinstance(stmt.value, ir.Expr)):
                    continue
                expr = stmt.value
                sig = ct.get(expr)
                if sig is None:
                    continue
                if expr.op in ("binop", "inplace_binop"):
                    operands = [expr.lhs, expr.rhs]
                elif expr.op == "unary":
                    operands = [expr.value]
                elif expr.op == "call":
                    fnty = tm[expr.func.name]
                    if isinstance(fnty, nbt.NumberClass):
                        continue  # an explicit cast, e.g. np.float64(x)
                    operands = list(expr.args)
                    if isinstance(fnty, nbt.Dispatcher):  # a device function: check its body
                        disp = fnty.dispatcher
                        device_functions.add(disp.py_func.__name__)
                        check(disp.overloads[tuple(sig.args)],
                              f"{name}->{disp.py_func.__name__}", pure, problems)
                else:
                    continue
                for var, formal in zip(operands, sig.args):
                    if tm[var.name] == F32 and formal != F32:
                        problems.append(f"{name}: float32 promoted to {formal} in {expr.op}, "
                                        f"line {stmt.loc.line}")

    def exercise():
        # float32 only: float64 kernels are the same code with wider types, and the
        # dtype checks below are about float32. Every public kernel is launched.
        rng = np.random.default_rng(0)
        for dt in (np.float32,):
            r = lambda *s: rng.standard_normal(s).astype(dt)
            X, W, Z, H, mask, b = r(5, 4), r(3, 4), r(5, 3), r(5, 3), r(5, 3), r(3)
            for o, (a, bb, out) in {"nt": (X, W, Z), "tn": (Z, X, r(3, 4)), "nn": (Z, W, X)}.items():
                getattr(C, "matmul_" + o)(a, bb, out)
                getattr(C, "matmul_" + o + "_naive")(a, bb, out)
                getattr(C, "matmul_" + o + "_tiled")(a, bb, out)
                for cfg in (C.MATMUL_LARGE, C.MATMUL_SMALL):
                    C.matmul_blocked(a, bb, out, o, cfg)
            C.linear_forward(X, W, b, Z)
            # the activation's code is a kernel argument: one instantiation serves every activation
            for f in (3, 2):
                C.linear_activation_forward(X, W, b, f, Z, H)
                C.linear_activation_dropout_forward(X, W, b, f, mask, Z, H)
                C.linear_activation_backward(Z, W, X.copy(), f, X)
                C.linear_activation_dropout_backward(Z, W, X.copy(), f, X.copy(), X)
                C.bias_activation_forward(Z, b, f, H)
                C.bias_activation_dropout_forward(Z, b, f, mask, H)
                C.activation_backward(Z, H, f, mask)
                C.activation_dropout_backward(Z, H, f, mask, X[:, :3].copy())
            C.apply_mask(Z, mask, H)
            C.bias_add(Z, b)
            C.softmax(Z, H)
            loss, stats = np.zeros(1), np.array([0.0, -1.0])
            for lab_dt in (np.int64, np.int32):
                labels = np.arange(5).astype(lab_dt) % 3
                C.softmax_cross_entropy(Z, labels, H, mask, loss)
                C.softmax_cross_entropy_accumulate(Z, labels, H, mask, loss, stats, 0)
            C.squared_error(Z, H, mask, loss)
            C.squared_error_accumulate(Z, H, mask, loss, stats, 1)
            C.sigmoid_cross_entropy(Z, H, mask, X[:, :3].copy(), loss)
            C.sigmoid_cross_entropy_accumulate(Z, H, mask, X[:, :3].copy(), loss, stats, 2)
            C.poisson_loss(Z, H, mask, X[:, :3].copy(), loss)
            C.poisson_loss_accumulate(Z, H, mask, X[:, :3].copy(), loss, stats, 3)
            C.bias_grad(Z, b)
            for P in (r(3, 4), r(3)):
                C.add_regularization_grad(P, P.copy(), 0.1, 0.01)
                C.regularization_loss(P, 0.1, 0.01)
                C.sgd_update(P, P.copy(), 0.1, 0.01, 0.001)
                C.sgd_momentum_update(P, P.copy(), P.copy(), 0.1, 0.9, 0.01, 0.001)
                C.sgd_nesterov_update(P, P.copy(), P.copy(), 0.1, 0.9, 0.01, 0.001)
                C.adam_update(P, P.copy(), P.copy(), abs(P), 0.01, 0.9, 0.999, 1e-8, 0.01, 0.001)
            C.layer_sgd_update(r(3, 4), r(3, 4), r(3), r(3), 0.1, 0.01, 0.001)
            C.layer_sgd_momentum_update(r(3, 4), r(3, 4), r(3, 4), r(3), r(3), r(3), 0.1, 0.9, 0.01, 0.001)
            C.layer_sgd_nesterov_update(r(3, 4), r(3, 4), r(3, 4), r(3), r(3), r(3), 0.1, 0.9, 0.01, 0.001)
            C.layer_adam_update(r(3, 4), r(3, 4), r(3, 4), abs(r(3, 4)), r(3), r(3), r(3), abs(r(3)),
                                0.01, 0.9, 0.999, 1e-8, 0.01, 0.001)
            for shape in ((5, 3), (7,), (2, 2, 3)):
                C.dropout_mask(1, 2, 0.8, np.empty(shape, dt))
            labels = np.arange(8) % 3
            C.gather_minibatch(r(8, 4), np.arange(8), 2, r(5, 4), labels, labels[:5].copy(), seed=1, stream=2, keep=0.8)
            C.gather_minibatch(r(8, 4), np.arange(8), 2, r(5, 4))

    exercise()
    problems = []
    for (py_func, argtys), cres in compiled.items():
        if any(getattr(t, "dtype", t) == F32 for t in argtys):
            pure = py_func.__name__ not in C.FLOAT64_ACCUMULATORS
            check(cres, py_func.__name__ + str(tuple(map(str, argtys))), pure, problems)
    print(json.dumps({"compiled": len(compiled),
                      "kernels": sorted({f.__name__ for f, _ in compiled}),
                      "device_functions": sorted(device_functions),
                      "problems": problems}))
''')


@functools.lru_cache(maxsize=None)
def compile_report():
    """COMPILE_CHECK's report, from one subprocess per session: test_cuda_training's check of the
    training kernels reads the same report (this script launches each of them with the same types)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    proc = subprocess.run([sys.executable, "-c", COMPILE_CHECK], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kernels_compile_for_a_real_gpu_without_float64_in_float32_code():
    report = compile_report()
    if "unavailable" in report:  # the internals it drives moved; benchmarks/gpu_check.sh still compiles
        pytest.skip(f"numba-cuda internals used by the compile check are missing: {report['unavailable']}")
    assert not report["problems"], "\n".join(report["problems"])
    expected = {"matmul_naive", "matmul_tiled", "matmul_blocked",
                "apply_mask_2d", "bias_add_2d", "bias_activation_forward_2d", "bias_activation_dropout_forward_2d",
                "softmax_rows", "softmax_cross_entropy_rows", "squared_error_2d",
                "sigmoid_cross_entropy_2d", "poisson_loss_2d",
                "sum_partials", "sum_partials_accumulate",
                "activation_backward_2d", "activation_dropout_backward_2d", "bias_grad_cols",
                "add_regularization_grad_1d", "add_regularization_grad_2d",
                "regularization_loss_1d", "regularization_loss_2d",
                "sgd_update_1d", "sgd_update_2d", "sgd_momentum_update_1d", "sgd_momentum_update_2d",
                "sgd_nesterov_update_1d", "sgd_nesterov_update_2d", "adam_update_1d", "adam_update_2d",
                "dropout_mask_1d", "dropout_mask_2d",
                "gather_minibatch_2d", "layer_sgd_update_2d", "layer_sgd_momentum_update_2d",
                "layer_sgd_nesterov_update_2d", "layer_adam_update_2d"}
    assert expected <= set(report["kernels"]), sorted(expected - set(report["kernels"]))
    # the register-blocked template with each epilogue: the plain products and every fused kernel
    epilogues = {"matmul_store"} | {f"{name}_epilogue" for name in spec.names("fused")}
    assert epilogues <= set(report["device_functions"]), sorted(epilogues - set(report["device_functions"]))
