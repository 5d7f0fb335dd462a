"""The CPU backend: every kernel as a Numba ``@njit`` function.

Same functions and signatures as the reference, ``kernels.numpy_backend``; read
the equations there. The functions are plain ``njit`` dispatchers, so a compiled
training loop (``mlp``'s epoch loop) calls them directly with no Python between.

Threads, chosen deliberately on a 2-core machine:
- the large products call BLAS (``np.dot`` inside njit reaches SciPy's OpenBLAS
  at full speed on contiguous operands) and BLAS owns the cores;
- the fused elementwise kernels are serial. They are memory-bound and short
  (tens of microseconds at batch 64): numba's threads on top of BLAS's
  oversubscribed the cores and made a fused step 20x slower here, and
  ``np.dot`` inside a ``prange`` loop is 13x slower than outside one.
The hand-written blocked matmuls (``ALTERNATIVES``) are the one parallel
(``prange``) code path, kept beside BLAS to be benchmarked, not used by default.
"""
import numpy as np
from numba import prange

from ._jit import njit
from .counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24

NAME = "cpu"


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
@njit
def matmul_nt(A, B, out):
    """out = A B^T.  A (n, k), B (m, k), out (n, m)."""
    np.dot(A, B.T, out)


@njit
def matmul_tn(A, B, out):
    """out = A^T B.  A (n, m), B (n, k), out (m, k)."""
    np.dot(A.T, B, out)


@njit
def matmul_nn(A, B, out):
    """out = A B.  A (n, m), B (m, k), out (n, k)."""
    np.dot(A, B, out)


# ---------------------------------------------------------------- matrix products (hand-written)
# Row blocks of the output are spread over the threads; the innermost loop runs
# along contiguous memory so LLVM vectorises it.
_ROW_BLOCK = 16


@njit(parallel=True, fastmath=True)
def matmul_nt_blocked(A, B, out):
    """out = A B^T by blocked dot products along the contiguous k axis.  A (n, k), B (m, k)."""
    n, k = A.shape
    m = B.shape[0]
    for ib in prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        for j in range(m):
            for i in range(ib * _ROW_BLOCK, min(n, (ib + 1) * _ROW_BLOCK)):
                acc = A.dtype.type(0)
                for p in range(k):
                    acc += A[i, p] * B[j, p]
                out[i, j] = acc


@njit(parallel=True, fastmath=True)
def matmul_nn_blocked(A, B, out):
    """out = A B as rank-1 row updates (i, p, j order).  A (n, m), B (m, k)."""
    n, m = A.shape
    k = B.shape[1]
    for ib in prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        for i in range(ib * _ROW_BLOCK, min(n, (ib + 1) * _ROW_BLOCK)):
            for j in range(k):
                out[i, j] = 0
            for p in range(m):
                a = A[i, p]
                for j in range(k):
                    out[i, j] += a * B[p, j]


@njit(parallel=True, fastmath=True)
def matmul_tn_blocked(A, B, out):
    """out = A^T B as rank-1 updates over the batch (p, i, j order).  A (n, m), B (n, k)."""
    n, m = A.shape
    k = B.shape[1]
    for ib in prange((m + _ROW_BLOCK - 1) // _ROW_BLOCK):
        i0 = ib * _ROW_BLOCK
        i1 = min(m, i0 + _ROW_BLOCK)
        for i in range(i0, i1):
            for j in range(k):
                out[i, j] = 0
        for p in range(n):
            for i in range(i0, i1):
                a = A[p, i]
                for j in range(k):
                    out[i, j] += a * B[p, j]


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
def bias_relu_forward(Z, b, H):
    """Z += b in place, H = relu(Z).  Z, H (n, d), b (d,)."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = z if z > zero else zero


@njit
def bias_relu_dropout_forward(Z, b, mask, H):
    """Z += b in place, H = relu(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = z * mask[i, j] if z > zero else zero


@njit
def softmax(logits, probs):
    """probs = row-wise softmax of logits, shifted by the row max.  (n, k)."""
    n, k = logits.shape
    for i in range(n):
        row_max = logits[i, 0]
        for j in range(1, k):
            row_max = max(row_max, logits[i, j])
        total = logits.dtype.type(0)
        for j in range(k):
            e = np.exp(logits[i, j] - row_max)
            probs[i, j] = e
            total += e
        for j in range(k):
            probs[i, j] /= total


@njit
def softmax_cross_entropy(logits, labels, probs, dlogits, loss_out):
    """Softmax + mean cross-entropy + dlogits = (probs - onehot) / n, one pass per row.

    logits, probs, dlogits (n, k); labels (n,) ints; loss_out (1,) float64.
    """
    n, k = logits.shape
    inv_n = logits.dtype.type(1.0 / n)
    loss = 0.0
    for i in range(n):
        row_max = logits[i, 0]
        for j in range(1, k):
            row_max = max(row_max, logits[i, j])
        total = logits.dtype.type(0)
        for j in range(k):
            e = np.exp(logits[i, j] - row_max)
            probs[i, j] = e
            total += e
        inv_total = 1 / total
        for j in range(k):
            p = probs[i, j] * inv_total
            probs[i, j] = p
            dlogits[i, j] = p * inv_n
        y = labels[i]
        dlogits[i, y] -= inv_n
        # log p_y = (z_y - max) - log(sum exp(z - max)), never log of an underflowed 0
        loss += np.log(np.float64(total)) - np.float64(logits[i, y] - row_max)
    loss_out[0] = loss / n


@njit
def squared_error(outputs, targets, doutputs, loss_out):
    """loss = (1/2n) sum ||y_hat - y||^2, doutputs = (y_hat - y) / n.  (n, k); loss_out (1,) float64."""
    n, k = outputs.shape
    inv_n = outputs.dtype.type(1.0 / n)
    loss = 0.0
    for i in range(n):
        for j in range(k):
            r = outputs[i, j] - targets[i, j]
            loss += np.float64(r) * np.float64(r)
            doutputs[i, j] = r * inv_n
    loss_out[0] = 0.5 * loss / n


# ---------------------------------------------------------------- backward
@njit
def relu_backward(dH, Z, dZ):
    """dZ = dH * relu'(Z), relu'(0) = 0.  (n, d); dZ may be dH."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            dZ[i, j] = dH[i, j] if Z[i, j] > zero else zero


@njit
def relu_dropout_backward(dH, Z, mask, dZ):
    """dZ = dH * relu'(Z) * mask.  (n, d); dZ may be dH."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            dZ[i, j] = dH[i, j] * mask[i, j] if Z[i, j] > zero else zero


@njit
def bias_grad(dZ, db):
    """db = column sums of dZ.  dZ (n, d), db (d,)."""
    n, d = dZ.shape
    for j in range(d):
        db[j] = 0
    for i in range(n):
        for j in range(d):
            db[j] += dZ[i, j]


# ---------------------------------------------------------------- regularisation and update
# These take parameters of any shape (weights (m, k), biases (m,)) through flat
# views of the C-contiguous arrays.
@njit
def add_regularization_grad(W, dW, l2, l1):
    """dW += l2 * W + l1 * sign(W).  W, dW (m, k)."""
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    a = W.dtype.type(l2)
    c = W.dtype.type(l1)
    for i in range(w.size):
        g[i] += a * w[i] + c * np.sign(w[i])


@njit
def regularization_loss(W, l2, l1):
    """(l2/2) ||W||_F^2 + l1 sum|W|, accumulated in float64."""
    w = W.reshape(W.size)
    squares = 0.0
    absolutes = 0.0
    for i in range(w.size):
        x = np.float64(w[i])
        squares += x * x
        absolutes += abs(x)
    return 0.5 * l2 * squares + l1 * absolutes


@njit
def sgd_update(P, dP, lr, l2, l1):
    """P -= lr * (dP + l2 * P + l1 * sign(P)), in place; with l1 > 0 a weight crossing zero stops at 0."""
    p = P.reshape(P.size)
    g = dP.reshape(dP.size)
    step = P.dtype.type(lr)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        new = old - step * (g[i] + a * old + c * np.sign(old))
        p[i] = zero if clip and new * old < zero else new


@njit
def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
    """V = momentum * V - lr * (dP + l2 * P + l1 * sign(P));  P += V, in place.

    With l1 > 0 a weight crossing zero stops at 0 and its velocity resets to 0.
    """
    p = P.reshape(P.size)
    g = dP.reshape(dP.size)
    v = V.reshape(V.size)
    step = P.dtype.type(lr)
    mu = P.dtype.type(momentum)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        vel = mu * v[i] - step * (g[i] + a * old + c * np.sign(old))
        new = old + vel
        if clip and new * old < zero:
            new = zero
            vel = zero
        v[i] = vel
        p[i] = new


# ---------------------------------------------------------------- dropout masks
@njit
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@njit
def dropout_mask(seed, stream, keep, out):
    """out = 1/keep where kept, 0 where removed; bit-identical to the reference (see counter_rng)."""
    key = _mix64(np.uint64(seed) + GOLDEN * (np.uint64(stream) + np.uint64(1)))
    threshold = np.uint64(np.floor(keep * 16777216.0 + 0.5))
    scale = out.dtype.type(1.0 / keep)
    zero = out.dtype.type(0)
    flat = out.reshape(out.size)
    for i in range(flat.size):
        bits = _mix64(key + GOLDEN * (np.uint64(i) + np.uint64(1)))
        flat[i] = scale if (bits >> SHIFT_TOP24) < threshold else zero
