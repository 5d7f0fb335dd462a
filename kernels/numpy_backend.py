"""The NumPy reference backend: the lecture's equations as plain vectorised NumPy.

This module is the specification every other backend is tested against, and the
fallback when Numba kernels are not wanted. Each function writes into the
preallocated output it is given (the fast backends need that to avoid allocating
in the training loop); the reference keeps the same signatures so the registry
can swap backends freely. ``kernels.spec`` declares each kernel's arguments,
what it writes and how it is checked.

Beside the standard set (``kernels.KERNELS``) it holds the reference of every
kernel any backend has: the fused layer kernels, the training-loop kernels and
the reduced network's kernels, each written as the chain of standard kernels
it merges, so that it equals that chain bit for bit.

Conventions, as in the lecture but batched row-wise:
    X  (n, d_in)          a minibatch, one example per row
    W  (d_out, d_in)      weights[l], so a layer is Z = X W^T + b
    b  (d_out,)
    Z  (n, d_out)         pre-activation z; H = relu(Z) the activation h
    mask (n, width)       dropout mask: 0 for a removed neuron, 1/keep for a kept one
    labels (n,)           integer classes; loss_out (1,) float64 receives a scalar loss
"""
import numpy as np

from .counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24, keep_threshold, stream_key

NAME = "numpy"

# Alternative implementations a backend offers beside the standard set, each
# mapped to the standard kernel it must agree with. Tests and benchmarks walk it.
ALTERNATIVES = {}


# ---------------------------------------------------------------- arrays
def to_device(a, dtype=None):
    """A C-contiguous array this backend computes on (a no-op for host arrays already so)."""
    return np.ascontiguousarray(a, dtype=dtype)


def to_host(a):
    """A NumPy array with the contents of ``a``."""
    return np.asarray(a)


def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def synchronize():
    """Wait for queued work (host backends compute eagerly)."""


# ---------------------------------------------------------------- matrix products
def matmul_nt(A, B, out):
    """out = A B^T.  A (n, k), B (m, k), out (n, m): the forward product X W^T."""
    np.matmul(A, B.T, out=out)


def matmul_tn(A, B, out):
    """out = A^T B.  A (n, m), B (n, k), out (m, k): the weight gradient delta^T H."""
    np.matmul(A.T, B, out=out)


def matmul_nn(A, B, out):
    """out = A B.  A (n, m), B (m, k), out (n, k): back-propagating delta W."""
    np.matmul(A, B, out=out)


# ---------------------------------------------------------------- forward
def apply_mask(X, mask, out):
    """out = X * mask: dropout on the input layer.  X, mask, out (n, d)."""
    np.multiply(X, mask, out=out)


def bias_add(Z, b):
    """Z += b in place: the output layer's pre-activation.  Z (n, d), b (d,)."""
    Z += b


def bias_relu_forward(Z, b, H):
    """Z += b in place, H = relu(Z).  Z, H (n, d), b (d,)."""
    Z += b
    np.maximum(Z, 0, out=H)


def bias_relu_dropout_forward(Z, b, mask, H):
    """Z += b in place, H = relu(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    Z += b
    np.maximum(Z, 0, out=H)
    H *= mask


def softmax(logits, probs):
    """probs = softmax of each row of logits, shifted by the row max for stability.  (n, k)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels, probs, dlogits, loss_out):
    """Softmax, mean cross-entropy and its gradient with respect to the logits, fused.

    logits, probs, dlogits (n, k); labels (n,) integers in [0, k); loss_out (1,) float64.
    loss_out[0] = -(1/n) sum_i log probs[i, labels[i]];  dlogits = (probs - onehot(labels)) / n,
    the lecture's (y_hat - y) averaged over the minibatch.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs[...] = np.exp(shifted - log_norm)
    loss_out[0] = -(shifted[rows, labels] - log_norm[:, 0]).astype(np.float64).sum() / n
    dlogits[...] = probs
    dlogits[rows, labels] -= 1
    dlogits /= n


def squared_error(outputs, targets, doutputs, loss_out):
    """Squared error of an identity output layer and its gradient, fused.

    outputs, targets, doutputs (n, k); loss_out (1,) float64.
    loss_out[0] = (1/2n) sum ||y_hat - y||^2;  doutputs = (y_hat - y) / n.
    """
    n = outputs.shape[0]
    np.subtract(outputs, targets, out=doutputs)
    loss_out[0] = 0.5 * np.sum(doutputs.astype(np.float64) ** 2) / n
    doutputs /= n


# ---------------------------------------------------------------- backward
def relu_backward(dH, Z, dZ):
    """dZ = dH * relu'(Z) with relu'(0) = 0 exactly (the lecture's exercise 1).  (n, d)."""
    np.multiply(dH, Z > 0, out=dZ)


def relu_dropout_backward(dH, Z, mask, dZ):
    """dZ = dH * relu'(Z) * mask: the lecture's g = (delta W) (.) relu'(z), for the kept neurons.  (n, d)."""
    np.multiply(dH, Z > 0, out=dZ)
    dZ *= mask


def bias_grad(dZ, db):
    """db = sum of dZ over the minibatch rows.  dZ (n, d), db (d,)."""
    np.sum(dZ, axis=0, out=db)


# ---------------------------------------------------------------- regularisation and update
def add_regularization_grad(W, dW, l2, l1):
    """dW += l2 * W + l1 * sign(W): the gradient of (l2/2)||W||_F^2 + l1 |W|.  W, dW (m, k)."""
    dW += l2 * W + l1 * np.sign(W)


def regularization_loss(W, l2, l1):
    """(l2/2) ||W||_F^2 + l1 sum|W| as a Python float."""
    W64 = W.astype(np.float64)
    return float(0.5 * l2 * np.sum(W64 * W64) + l1 * np.sum(np.abs(W64)))


def sgd_update(P, dP, lr, l2, l1):
    """P -= lr * (dP + l2 * P + l1 * sign(P)) in place, the L1 step clipped at zero.

    The lecture's regularised step. With l1 > 0 a weight that the step would
    carry across zero stops at exactly 0 instead ("clipping", Tsuruoka et al.
    2009): otherwise sign(W) makes small weights oscillate around zero forever
    and L1 would never produce the exact zeros it is used for. Where no sign
    flips, this is the plain formula. Biases pass l2 = l1 = 0.
    """
    new = P - lr * (dP + l2 * P + l1 * np.sign(P))
    if l1 > 0:
        new[new * P < 0] = 0
    P[...] = new


def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
    """V = momentum * V - lr * (dP + l2 * P + l1 * sign(P));  P += V, in place.

    With l1 > 0, a weight the step carries across zero stops at exactly 0 and
    its velocity is reset to 0 (see ``sgd_update``).
    """
    V *= momentum
    V -= lr * (dP + l2 * P + l1 * np.sign(P))
    new = P + V
    if l1 > 0:
        crossed = new * P < 0
        new[crossed] = 0
        V[crossed] = 0
    P[...] = new


# ---------------------------------------------------------------- dropout masks
def dropout_mask(seed, stream, keep, out):
    """Fill ``out`` with 1/keep for kept neurons and 0 for removed ones, each kept with probability keep.

    Element i (in C order) is a pure function of (seed, stream, i), see
    ``kernels.counter_rng``, so every backend draws the same mask.  seed and stream are
    integers in [0, 2**63); out: any C-contiguous array.
    """
    key = np.uint64(stream_key(seed, stream))
    threshold = np.uint64(keep_threshold(keep))
    z = key + GOLDEN * (np.arange(out.size, dtype=np.uint64) + np.uint64(1))
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    z ^= z >> np.uint64(31)
    kept = (z >> SHIFT_TOP24) < threshold
    out.reshape(-1)[...] = np.where(kept, out.dtype.type(1.0 / keep), out.dtype.type(0))


# ---------------------------------------------------------------- fused layer kernels
def linear_forward(X, W, b, Z):
    """Z = X W^T + b: ``matmul_nt`` then ``bias_add``.  X (n, k), W (m, k), b (m,), Z (n, m)."""
    matmul_nt(X, W, Z)
    bias_add(Z, b)


def linear_relu_forward(X, W, b, Z, H):
    """Z = X W^T + b, H = relu(Z): ``matmul_nt`` then ``bias_relu_forward``.  Z, H (n, m)."""
    matmul_nt(X, W, Z)
    bias_relu_forward(Z, b, H)


def linear_relu_dropout_forward(X, W, b, mask, Z, H):
    """Z = X W^T + b, H = relu(Z) * mask: ``matmul_nt`` then ``bias_relu_dropout_forward``.  mask, Z, H (n, m)."""
    matmul_nt(X, W, Z)
    bias_relu_dropout_forward(Z, b, mask, H)


def linear_relu_backward(dZ_next, W, Z, dZ):
    """dZ = (dZ_next W) * relu'(Z): ``matmul_nn`` into dZ, then ``relu_backward`` in place.

    dZ_next (n, m) the next layer's delta, W (m, k) its weights, Z, dZ (n, k).
    """
    matmul_nn(dZ_next, W, dZ)
    relu_backward(dZ, Z, dZ)


def linear_relu_dropout_backward(dZ_next, W, Z, mask, dZ):
    """dZ = (dZ_next W) * relu'(Z) * mask: ``matmul_nn`` then ``relu_dropout_backward`` in place."""
    matmul_nn(dZ_next, W, dZ)
    relu_dropout_backward(dZ, Z, mask, dZ)


# ---------------------------------------------------------------- training-loop kernels
def gather_minibatch(X, perm, start, out, labels=None, labels_out=None, seed=0, stream=0, keep=1.0):
    """out[i] = X[perm[start + i]] for each row i of ``out``; with keep < 1, times the input dropout mask.

    With ``labels``, also labels_out[i] = labels[perm[start + i]]. The mask is the
    one the standard kernels draw, ``dropout_mask(seed, stream, keep, m)`` with m
    shaped like ``out``, applied by ``apply_mask``; it is not stored (the backward
    pass never needs the input layer's).

    X (N, d); perm (>= start + rows,) integers; out (rows, d);
    labels (N,) and labels_out (rows,) integers, or None.
    """
    rows = perm[start:start + out.shape[0]]
    out[...] = X[rows]
    if labels is not None:
        labels_out[...] = labels[rows]
    if keep < 1.0:
        mask = np.empty_like(out)
        dropout_mask(seed, stream, keep, mask)
        apply_mask(out, mask, out)


def _accumulate_loss(loss_out, rows, epoch_stats, step):
    # While every loss so far was finite, add loss * rows; the first non-finite one
    # records its step (epoch_stats[1] starts negative) and ends the sum.
    if epoch_stats[1] < 0:
        loss = loss_out[0]
        if np.isfinite(loss):
            epoch_stats[0] += loss * rows
        else:
            epoch_stats[1] = step


def softmax_cross_entropy_accumulate(logits, labels, probs, dlogits, loss_out, epoch_stats, step):
    """``softmax_cross_entropy``, then the epoch's loss bookkeeping.

    epoch_stats (2,) float64, set to (0, -1) at the start of an epoch: while every
    minibatch loss so far is finite, epoch_stats[0] += loss * rows; the first
    non-finite loss writes its ``step`` into epoch_stats[1] and ends the sum.
    """
    softmax_cross_entropy(logits, labels, probs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


def squared_error_accumulate(outputs, targets, doutputs, loss_out, epoch_stats, step):
    """``squared_error``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    squared_error(outputs, targets, doutputs, loss_out)
    _accumulate_loss(loss_out, outputs.shape[0], epoch_stats, step)


def layer_sgd_update(W, dW, b, db, lr, l2, l1):
    """``sgd_update(W, dW, lr, l2, l1)`` and ``sgd_update(b, db, lr, 0, 0)``: biases are not regularised.

    W, dW (m, k); b, db (m,).
    """
    sgd_update(W, dW, lr, l2, l1)
    sgd_update(b, db, lr, 0.0, 0.0)


def layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_momentum_update`` of W (with l2, l1) and of b (without).  W, dW, VW (m, k); b, db, Vb (m,)."""
    sgd_momentum_update(W, dW, VW, lr, momentum, l2, l1)
    sgd_momentum_update(b, db, Vb, lr, momentum, 0.0, 0.0)


# ---------------------------------------------------------------- the reduced network
# The lecture's per-minibatch dropout runs on the kept units only; their activations
# are scaled by 1/keep (inverted dropout) instead of multiplied by a mask.
def bias_relu_scale_forward(Z, b, scale, H):
    """Z += b in place, H = relu(Z) * scale: ``bias_relu_forward``, then H *= scale.  Z, H (n, d), b (d,)."""
    bias_relu_forward(Z, b, H)
    H *= scale


def relu_scale_backward(dH, Z, scale, dZ):
    """dZ = dH * relu'(Z) * scale: ``relu_backward``, then dZ *= scale.  (n, d); dZ may be dH."""
    relu_backward(dH, Z, dZ)
    dZ *= scale
