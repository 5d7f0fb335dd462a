"""The CPU backend: every kernel as a Numba ``@njit`` function.

Same functions and signatures as the reference, ``kernels.numpy_backend``; read
the equations there. Every group of ``kernels.spec``: the standard set, the fused
layer kernels and the training-loop kernels (each built from this module's
standard kernels, bit-identical to its chain of them), and the reduced
network's kernels. The functions are plain ``njit`` dispatchers, so a compiled
training loop (``mlp``'s epoch) calls them directly with no Python between; a
cached function that does must name this module and ``kernels.counter_rng`` in
its ``depends_on`` (see ``kernels.jit``).

Threads, chosen deliberately on a 2-core machine:
- the large products call BLAS (``np.dot`` inside njit reaches SciPy's OpenBLAS
  at full speed on contiguous operands) and BLAS owns the cores;
- the fused elementwise kernels are serial. They are memory-bound and short
  (tens of microseconds at batch 64): numba's threads on top of BLAS's
  oversubscribed the cores and made a fused step 20x slower here, and
  ``np.dot`` inside a ``prange`` loop is 13x slower than outside one.
The hand-written blocked matmuls (``ALTERNATIVES``, in ``kernels.cpu_blocked``) are
the one parallel (``prange``) code path, kept beside BLAS to be benchmarked, not
used by default.
"""
import functools

import numpy as np

from . import counter_rng, jit
from .counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24
from .cpu_blocked import matmul_nn_blocked, matmul_nt_blocked, matmul_tn_blocked

NAME = "cpu"

# Every function here is cached with counter_rng's source in its key: the dropout
# kernels compile its constants in, and the other kernels may call them.
njit = functools.partial(jit.njit, depends_on=(counter_rng,))


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
def _stream_key(seed, stream):
    return _mix64(np.uint64(seed) + GOLDEN * (np.uint64(stream) + np.uint64(1)))


@njit
def _keep_threshold(keep):
    return np.uint64(np.floor(keep * 16777216.0 + 0.5))


@njit
def dropout_mask(seed, stream, keep, out):
    """out = 1/keep where kept, 0 where removed; bit-identical to the reference (see counter_rng)."""
    key = _stream_key(seed, stream)
    threshold = _keep_threshold(keep)
    scale = out.dtype.type(1.0 / keep)
    zero = out.dtype.type(0)
    flat = out.reshape(out.size)
    for i in range(flat.size):
        bits = _mix64(key + GOLDEN * (np.uint64(i) + np.uint64(1)))
        flat[i] = scale if (bits >> SHIFT_TOP24) < threshold else zero


# ---------------------------------------------------------------- fused layer kernels
@njit
def linear_forward(X, W, b, Z):
    """Z = X W^T + b: ``matmul_nt`` then ``bias_add``."""
    matmul_nt(X, W, Z)
    bias_add(Z, b)


@njit
def linear_relu_forward(X, W, b, Z, H):
    """Z = X W^T + b, H = relu(Z): ``matmul_nt`` then ``bias_relu_forward``."""
    matmul_nt(X, W, Z)
    bias_relu_forward(Z, b, H)


@njit
def linear_relu_dropout_forward(X, W, b, mask, Z, H):
    """Z = X W^T + b, H = relu(Z) * mask: ``matmul_nt`` then ``bias_relu_dropout_forward``."""
    matmul_nt(X, W, Z)
    bias_relu_dropout_forward(Z, b, mask, H)


@njit
def linear_relu_backward(dZ_next, W, Z, dZ):
    """dZ = (dZ_next W) * relu'(Z): ``matmul_nn`` then ``relu_backward`` in place."""
    matmul_nn(dZ_next, W, dZ)
    relu_backward(dZ, Z, dZ)


@njit
def linear_relu_dropout_backward(dZ_next, W, Z, mask, dZ):
    """dZ = (dZ_next W) * relu'(Z) * mask: ``matmul_nn`` then ``relu_dropout_backward`` in place."""
    matmul_nn(dZ_next, W, dZ)
    relu_dropout_backward(dZ, Z, mask, dZ)


# ---------------------------------------------------------------- training-loop kernels
@njit
def gather_minibatch(X, perm, start, out, labels=None, labels_out=None, seed=0, stream=0, keep=1.0):
    """out[i] = X[perm[start + i]] (and labels_out[i] = labels[perm[start + i]] when labels are given).

    With keep < 1, each element is then multiplied by the value ``dropout_mask(seed, stream,
    keep, m)`` draws for it, as ``apply_mask`` would (the mask is not stored). From other
    njit code ``labels`` may be an array or None.  X (N, d), out (rows, d); perm, labels 1-D.
    """
    rows, d = out.shape
    for i in range(rows):
        src = perm[start + i]
        for j in range(d):
            out[i, j] = X[src, j]
    if labels is not None:
        for i in range(rows):
            labels_out[i] = labels[perm[start + i]]
    if keep < 1.0:
        key = _stream_key(seed, stream)
        threshold = _keep_threshold(keep)
        scale = out.dtype.type(1.0 / keep)
        zero = out.dtype.type(0)
        for i in range(rows):
            for j in range(d):
                bits = _mix64(key + GOLDEN * (np.uint64(i * d + j) + np.uint64(1)))
                out[i, j] = out[i, j] * (scale if (bits >> SHIFT_TOP24) < threshold else zero)


@njit
def _accumulate_loss(loss_out, rows, epoch_stats, step):
    # While every loss so far was finite, add loss * rows; the first non-finite one
    # records its step (epoch_stats[1] starts negative) and ends the sum.
    if epoch_stats[1] < 0:
        loss = loss_out[0]
        if np.isfinite(loss):
            epoch_stats[0] += loss * rows
        else:
            epoch_stats[1] = step


@njit
def softmax_cross_entropy_accumulate(logits, labels, probs, dlogits, loss_out, epoch_stats, step):
    """``softmax_cross_entropy``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    softmax_cross_entropy(logits, labels, probs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


@njit
def squared_error_accumulate(outputs, targets, doutputs, loss_out, epoch_stats, step):
    """``squared_error``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    squared_error(outputs, targets, doutputs, loss_out)
    _accumulate_loss(loss_out, outputs.shape[0], epoch_stats, step)


@njit
def layer_sgd_update(W, dW, b, db, lr, l2, l1):
    """``sgd_update`` of W (with l2, l1) and of b (without)."""
    sgd_update(W, dW, lr, l2, l1)
    sgd_update(b, db, lr, 0.0, 0.0)


@njit
def layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_momentum_update`` of W (with l2, l1) and of b (without)."""
    sgd_momentum_update(W, dW, VW, lr, momentum, l2, l1)
    sgd_momentum_update(b, db, Vb, lr, momentum, 0.0, 0.0)


# ---------------------------------------------------------------- the reduced network
@njit
def bias_relu_scale_forward(Z, b, scale, H):
    """Z += b in place, H = relu(Z) * scale (one pass; relu(z) * s is z * s for z > 0, else 0)."""
    n, d = Z.shape
    s = Z.dtype.type(scale)
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = z * s if z > zero else zero


@njit
def relu_scale_backward(dH, Z, scale, dZ):
    """dZ = dH * relu'(Z) * scale.  (n, d); dZ may be dH."""
    n, d = Z.shape
    s = Z.dtype.type(scale)
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            dZ[i, j] = dH[i, j] * s if Z[i, j] > zero else zero
