"""The CPU backend: every kernel as a Numba ``@njit`` function.

Same functions and signatures as the reference, ``kernels.numpy_backend``; read
the equations there. Every group of ``kernels.spec``: the standard set, the fused
layer kernels and the training-loop kernels (each built from this module's
standard kernels, bit-identical to its chain of them), and the reduced
network's kernels. The functions are plain ``njit`` dispatchers, so a compiled
training loop (``mlp``'s epoch) calls them directly with no Python between; a
cached function that does must name this module, ``kernels.cpu_losses``,
``kernels.cpu_updates`` and this module's ``DEPENDS_ON`` in its ``depends_on``
(see ``kernels.jit``). The losses and the updates are in ``kernels.cpu_losses``
and ``kernels.cpu_updates``, imported here: this module is the backend.

Threads, chosen deliberately on a 2-core machine:
- the products call BLAS's gemm (``kernels.cpu_blas``: NumPy's bundled OpenBLAS where
  it is there, else SciPy's, with its alpha and beta) and BLAS owns the cores;
- the fused elementwise kernels are serial. They are memory-bound and short
  (tens of microseconds at batch 64): numba's threads on top of BLAS's
  oversubscribed the cores and made a fused step 20x slower here, and
  ``np.dot`` inside a ``prange`` loop is 13x slower than outside one.
The hand-written blocked matmuls (``ALTERNATIVES``, in ``kernels.cpu_blocked``) are
the one parallel (``prange``) code path, kept beside BLAS to be benchmarked, not
used by default.

The activation kernels take the code of f (``kernels.codes.ACTIVATIONS``) and
branch on it once, outside their loops: each activation has a loop of its own,
so ReLU's is the plain compare-and-select loop it always was. The codes are
compiled in as constants.
"""
import functools

import numpy as np

from . import codes, counter_rng, cpu_blas, cpu_losses, jit
from .codes import LOGISTIC, RELU, TANH
from .cpu_blas import gemm_nn, gemm_nt, gemm_tn
from .counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24
from .cpu_blocked import matmul_nn_blocked, matmul_nt_blocked, matmul_tn_blocked
# The losses and the updates live in modules of their own; the backend is this module's namespace.
from .cpu_losses import (  # noqa: F401
    poisson_loss, poisson_loss_accumulate, sigmoid, sigmoid_cross_entropy, sigmoid_cross_entropy_accumulate,
    softmax, softmax_cross_entropy, softmax_cross_entropy_accumulate, squared_error, squared_error_accumulate)
from .cpu_updates import (  # noqa: F401
    adam_update, add_regularization_grad, layer_adam_update, layer_sgd_momentum_update, layer_sgd_nesterov_update,
    layer_sgd_update, regularization_loss, sgd_momentum_update, sgd_nesterov_update, sgd_update)

NAME = "cpu"

# Every function here is cached with the sources of the modules it compiles in: counter_rng's
# constants (the dropout kernels, which the others may call), codes' (the activation codes),
# cpu_losses' sigmoid (the logistic activation) and cpu_blas' gemm.
DEPENDS_ON = (counter_rng, codes, cpu_losses, cpu_blas)
njit = functools.partial(jit.njit, depends_on=DEPENDS_ON)


# ---------------------------------------------------------------- arrays
def to_device(a, dtype=None):
    """A C-contiguous host array (the cpu backend computes in host memory)."""
    return np.ascontiguousarray(a, dtype=dtype)


def to_host(a):
    return np.asarray(a)


def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def synchronize():
    """Kernels run eagerly on the host: nothing to wait for."""


# ---------------------------------------------------------------- matrix products (BLAS)
@njit(inline="always")
def matmul_nt(A, B, out):
    """out = A B^T.  A (n, k), B (m, k), out (n, m)."""
    gemm_nt(A, B, 1.0, 0.0, out)


@njit(inline="always")
def matmul_tn(A, B, out):
    """out = A^T B.  A (n, m), B (n, k), out (m, k)."""
    gemm_tn(A, B, 1.0, 0.0, out)


@njit(inline="always")
def matmul_nn(A, B, out):
    """out = A B.  A (n, m), B (m, k), out (n, k)."""
    gemm_nn(A, B, 1.0, 0.0, out)


@njit(inline="always")
def matmul_tn_update(A, B, alpha, beta, out):
    """out = alpha A^T B + beta out, in place: one BLAS gemm, no temporary."""
    gemm_tn(A, B, alpha, beta, out)


# Alternative implementations beside the standard set, each mapped to the standard
# kernel it must agree with. Tests and benchmarks walk it.
ALTERNATIVES = {
    "matmul_nt_blocked": "matmul_nt",
    "matmul_tn_blocked": "matmul_tn",
    "matmul_nn_blocked": "matmul_nn",
}


# ---------------------------------------------------------------- forward
@njit
def apply_mask(X, mask, out):
    """out = X * mask.  (n, d)."""
    n, d = X.shape
    for i in range(n):
        for j in range(d):
            out[i, j] = X[i, j] * mask[i, j]


@njit
def bias_add(Z, b):
    """Z += b in place.  Z (n, d), b (d,)."""
    n, d = Z.shape
    for i in range(n):
        for j in range(d):
            Z[i, j] += b[j]


@njit
def _bias_activation(Z, b, activation, mask, scale, H):
    """Z += b in place, H = f(Z), times mask (an array, or None) and times scale (a number, or None).

    One loop per activation; ``mask is None`` and ``scale is None`` are resolved at compile time.
    """
    n, d = Z.shape
    zero = Z.dtype.type(0)
    one = Z.dtype.type(1)
    s = Z.dtype.type(1 if scale is None else scale)
    if activation == RELU:
        for i in range(n):
            for j in range(d):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                h = z if z > zero else zero
                if mask is not None:
                    h = h * mask[i, j]
                if scale is not None:
                    h = h * s
                H[i, j] = h
    elif activation == TANH:
        for i in range(n):
            for j in range(d):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                h = np.tanh(z)
                if mask is not None:
                    h = h * mask[i, j]
                if scale is not None:
                    h = h * s
                H[i, j] = h
    elif activation == LOGISTIC:
        for i in range(n):
            for j in range(d):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                h = sigmoid(z, one)
                if mask is not None:
                    h = h * mask[i, j]
                if scale is not None:
                    h = h * s
                H[i, j] = h
    else:  # identity
        for i in range(n):
            for j in range(d):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                h = z
                if mask is not None:
                    h = h * mask[i, j]
                if scale is not None:
                    h = h * s
                H[i, j] = h


@njit(inline="always")
def bias_activation_forward(Z, b, activation, H):
    """Z += b in place, H = f(Z).  Z, H (n, d), b (d,)."""
    _bias_activation(Z, b, activation, None, None, H)


@njit(inline="always")
def bias_activation_dropout_forward(Z, b, activation, mask, H):
    """Z += b in place, H = f(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    _bias_activation(Z, b, activation, mask, None, H)


# ---------------------------------------------------------------- backward
@njit(inline="always")
def _activation_backward(dH, Z, activation, mask, scale, dZ):
    """dZ = dH * f'(Z), times mask (an array, or None) and times scale (a number, or None); dZ may be dH.

    In place, the loops get one array to read and write instead of two names for it: LLVM's
    vectoriser cannot prove two pointers equal, and its run-time overlap check sends such a
    loop to the scalar path (3x slower, 1024x256 float32, measured 2026-11-30).
    """
    if dH.ctypes.data == dZ.ctypes.data:
        _activation_backward_loops(None, Z, activation, mask, scale, dZ)
    else:
        _activation_backward_loops(dH, Z, activation, mask, scale, dZ)


@njit
def _activation_backward_loops(dH, Z, activation, mask, scale, dZ):
    """``_activation_backward``; dH None: dZ holds dH and is overwritten (resolved at compile time).

    relu'(z) = (z > 0), so relu'(0) = 0 exactly; tanh' = 1 - tanh^2; logistic' = s (1 - s)
    with s the sigmoid (never NaN: s is in [0, 1]); identity' = 1. One loop per activation.
    ReLU multiplies by 1 or 0, as the reference does (bit-identical, -0 included): the select
    ``dH if z > 0 else 0`` written back in place became a conditional store, a branch that the
    random signs of z mispredict half the time (30x slower, measured 2026-11-30).
    """
    n, d = Z.shape
    zero = Z.dtype.type(0)
    one = Z.dtype.type(1)
    s = Z.dtype.type(1 if scale is None else scale)
    src = dZ if dH is None else dH
    if activation == RELU:
        for i in range(n):
            for j in range(d):
                g = src[i, j] * (one if Z[i, j] > zero else zero)
                if mask is not None:
                    g = g * mask[i, j]
                if scale is not None:
                    g = g * s
                dZ[i, j] = g
    elif activation == TANH:
        for i in range(n):
            for j in range(d):
                t = np.tanh(Z[i, j])
                g = src[i, j] * (one - t * t)
                if mask is not None:
                    g = g * mask[i, j]
                if scale is not None:
                    g = g * s
                dZ[i, j] = g
    elif activation == LOGISTIC:
        for i in range(n):
            for j in range(d):
                p = sigmoid(Z[i, j], one)
                g = src[i, j] * (p * (one - p))
                if mask is not None:
                    g = g * mask[i, j]
                if scale is not None:
                    g = g * s
                dZ[i, j] = g
    else:  # identity
        for i in range(n):
            for j in range(d):
                g = src[i, j]
                if mask is not None:
                    g = g * mask[i, j]
                if scale is not None:
                    g = g * s
                dZ[i, j] = g


@njit(inline="always")
def activation_backward(dH, Z, activation, dZ):
    """dZ = dH * f'(Z), relu'(0) = 0.  (n, d); dZ may be dH."""
    _activation_backward(dH, Z, activation, None, None, dZ)


@njit(inline="always")
def activation_dropout_backward(dH, Z, activation, mask, dZ):
    """dZ = dH * f'(Z) * mask.  (n, d); dZ may be dH."""
    _activation_backward(dH, Z, activation, mask, None, dZ)


@njit
def bias_grad(dZ, db):
    """db = column sums of dZ.  dZ (n, d), db (d,)."""
    n, d = dZ.shape
    for j in range(d):
        db[j] = 0
    for i in range(n):
        for j in range(d):
            db[j] += dZ[i, j]


# ---------------------------------------------------------------- dropout masks
@njit
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@njit
def _stream_key(seed, stream):
    return _mix64(np.uint64(seed) + GOLDEN * (np.uint64(stream) + np.uint64(1)))


@njit
def _keep_threshold(keep):
    return np.uint64(np.floor(keep * 16777216.0 + 0.5))


@njit
def dropout_mask(seed, stream, keep, out):
    """out = 1/keep where kept, 0 where removed; bit-identical to the reference (see counter_rng)."""
    counter = _stream_key(seed, stream)
    threshold = _keep_threshold(keep)
    scale = out.dtype.type(1.0 / keep)
    zero = out.dtype.type(0)
    flat = out.reshape(out.size)
    for i in range(flat.size):
        counter += GOLDEN  # key + GOLDEN (i + 1), by addition: a 64-bit multiply less per element
        flat[i] = scale if (_mix64(counter) >> SHIFT_TOP24) < threshold else zero


# ---------------------------------------------------------------- fused layer kernels
@njit(inline="always")
def linear_forward(X, W, b, Z):
    """Z = X W^T + b: ``matmul_nt`` then ``bias_add``."""
    matmul_nt(X, W, Z)
    bias_add(Z, b)


@njit(inline="always")
def linear_activation_forward(X, W, b, activation, Z, H):
    """Z = X W^T + b, H = f(Z): ``matmul_nt`` then ``bias_activation_forward``."""
    matmul_nt(X, W, Z)
    bias_activation_forward(Z, b, activation, H)


@njit(inline="always")
def linear_activation_dropout_forward(X, W, b, activation, mask, Z, H):
    """Z = X W^T + b, H = f(Z) * mask: ``matmul_nt`` then ``bias_activation_dropout_forward``."""
    matmul_nt(X, W, Z)
    bias_activation_dropout_forward(Z, b, activation, mask, H)


@njit(inline="always")
def linear_activation_backward(dZ_next, W, Z, activation, dZ):
    """dZ = (dZ_next W) * f'(Z): ``matmul_nn`` then ``activation_backward`` in place.

    In place by construction, so the in-place loops directly: ``_activation_backward``'s run-time
    test would compile the out-of-place ones into every caller too.
    """
    matmul_nn(dZ_next, W, dZ)
    _activation_backward_loops(None, Z, activation, None, None, dZ)


@njit(inline="always")
def linear_activation_dropout_backward(dZ_next, W, Z, activation, mask, dZ):
    """dZ = (dZ_next W) * f'(Z) * mask: ``matmul_nn`` then ``activation_dropout_backward`` in place (the loops
    directly, as ``linear_activation_backward``)."""
    matmul_nn(dZ_next, W, dZ)
    _activation_backward_loops(None, Z, activation, mask, None, dZ)


# ---------------------------------------------------------------- training-loop kernels
@njit
def gather_minibatch(X, perm, start, out, labels=None, labels_out=None, seed=0, stream=0, keep=1.0):
    """out[i] = X[perm[start + i]] (and labels_out[i] = labels[perm[start + i]] when labels are given).

    With keep < 1, each element is then multiplied by the value ``dropout_mask(seed, stream,
    keep, m)`` draws for it, as ``apply_mask`` would (the mask is not stored). From other
    njit code ``labels`` may be an array or None.  X (N, d), out (rows, d); perm, labels 1-D.
    """
    rows, d = out.shape
    if keep < 1.0:
        # one pass: each element taken and masked, its mask value drawn as ``dropout_mask`` draws it
        counter = _stream_key(seed, stream)
        threshold = _keep_threshold(keep)
        scale = out.dtype.type(1.0 / keep)
        zero = out.dtype.type(0)
        for i in range(rows):
            src = perm[start + i]
            for j in range(d):
                counter += GOLDEN
                out[i, j] = X[src, j] * (scale if (_mix64(counter) >> SHIFT_TOP24) < threshold else zero)
    else:
        for i in range(rows):
            src = perm[start + i]
            for j in range(d):
                out[i, j] = X[src, j]
    if labels is not None:
        for i in range(rows):
            labels_out[i] = labels[perm[start + i]]


# ---------------------------------------------------------------- the reduced network
@njit(inline="always")
def bias_activation_scale_forward(Z, b, activation, scale, H):
    """Z += b in place, H = f(Z) * scale, in one pass (f(Z) rounded first, as the chain then H *= scale)."""
    _bias_activation(Z, b, activation, None, scale, H)


@njit(inline="always")
def activation_scale_backward(dH, Z, activation, scale, dZ):
    """dZ = dH * f'(Z) * scale, in one pass.  (n, d); dZ may be dH."""
    _activation_backward(dH, Z, activation, None, scale, dZ)
