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
    Z  (n, d_out)         pre-activation z; H = f(Z) the activation h
    activation            the code of f in ``kernels.codes.ACTIVATIONS`` (relu, tanh, logistic, identity)
    mask (n, width)       dropout mask: 0 for a removed neuron, 1/keep for a kept one
    labels (n,)           integer classes; loss_out (1,) float64 receives a scalar loss
"""
import numpy as np
from scipy.special import expit, xlogy

from .codes import IDENTITY, LOGISTIC, RELU, TANH
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


def matmul_tn_update(A, B, alpha, beta, out):
    """out = alpha A^T B + beta out, in place (BLAS's gemm).  A (n, m), B (n, k), out (m, k).

    The weight gradient written into what it updates: with alpha = -lr and beta = 1 - lr l2,
    out = W becomes the plain SGD step W - lr (delta^T H + l2 W), no gradient buffer between.
    """
    product = alpha * (A.T @ B)
    if beta == 0:  # BLAS's convention: out's old values (NaN included) are not read
        out[...] = product
    else:
        out *= beta
        out += product


# ---------------------------------------------------------------- forward
def apply_mask(X, mask, out):
    """out = X * mask: dropout on the input layer.  X, mask, out (n, d)."""
    np.multiply(X, mask, out=out)


def bias_add(Z, b):
    """Z += b in place: the output layer's pre-activation.  Z (n, d), b (d,)."""
    Z += b


def _activate(Z, activation, H):
    """H = f(Z) for the activation's code."""
    if activation == RELU:
        np.maximum(Z, 0, out=H)
    elif activation == TANH:
        np.tanh(Z, out=H)
    elif activation == LOGISTIC:
        expit(Z, out=H)
    else:
        H[...] = Z


def _derivative(Z, activation):
    """f'(Z) for the activation's code, with relu'(0) = 0 exactly (the lecture's exercise 1)."""
    if activation == RELU:
        return Z > 0
    if activation == TANH:
        t = np.tanh(Z)
        return 1 - t * t
    if activation == LOGISTIC:
        s = expit(Z)
        return s * (1 - s)
    return np.ones_like(Z)


def bias_activation_forward(Z, b, activation, H):
    """Z += b in place, H = f(Z).  Z, H (n, d), b (d,)."""
    Z += b
    _activate(Z, activation, H)


def bias_activation_dropout_forward(Z, b, activation, mask, H):
    """Z += b in place, H = f(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    Z += b
    _activate(Z, activation, H)
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


def sigmoid_cross_entropy(logits, targets, probs, dlogits, loss_out):
    """Logistic outputs, mean binary cross-entropy and its gradient, fused (binary and multilabel).

    logits, targets, probs, dlogits (n, k), targets in [0, 1]; loss_out (1,) float64.
    probs = sigmoid(logits);  loss_out[0] = (1/n) sum -(y log p + (1 - y) log(1 - p)),
    computed as (1/n) sum softplus(z) - y z so that it stays finite for any logit;
    dlogits = (probs - y) / n.
    """
    n = logits.shape[0]
    expit(logits, out=probs)
    z = logits.astype(np.float64)
    loss_out[0] = np.sum(np.logaddexp(0.0, z) - targets.astype(np.float64) * z) / n
    np.subtract(probs, targets, out=dlogits)
    dlogits /= n


def poisson_loss(logits, targets, outputs, dlogits, loss_out):
    """Exponential outputs, mean half Poisson deviance and its gradient, fused (scikit-learn's ``loss="poisson"``).

    logits, targets, outputs, dlogits (n, k), targets >= 0; loss_out (1,) float64.
    outputs = exp(logits);  loss_out[0] = (1/n) sum y log(y / y_hat) - y + y_hat
    (y log y = 0 at y = 0);  dlogits = (outputs - y) / n.
    """
    n = logits.shape[0]
    np.exp(logits, out=outputs)
    z = logits.astype(np.float64)
    y = targets.astype(np.float64)
    loss_out[0] = np.sum(xlogy(y, y) - y * z - y + np.exp(z)) / n
    np.subtract(outputs, targets, out=dlogits)
    dlogits /= n


# ---------------------------------------------------------------- backward
def activation_backward(dH, Z, activation, dZ):
    """dZ = dH * f'(Z), with relu'(0) = 0 exactly (the lecture's exercise 1).  (n, d); dZ may be dH."""
    np.multiply(dH, _derivative(Z, activation), out=dZ)


def activation_dropout_backward(dH, Z, activation, mask, dZ):
    """dZ = dH * f'(Z) * mask: the lecture's g = (delta W) (.) f'(z), for the kept neurons.  (n, d)."""
    np.multiply(dH, _derivative(Z, activation), out=dZ)
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


def _crossed_zero(new, P, l1):
    """Where an L1 step carried a parameter across zero (only when l1 > 0): there it stops at 0."""
    return (new * P < 0) if l1 > 0 else np.zeros(P.shape, bool)


def sgd_nesterov_update(P, dP, V, lr, momentum, l2, l1):
    """Nesterov's momentum as scikit-learn writes it, in place, with g = dP + l2 * P + l1 * sign(P):

        V = momentum * V - lr * g;   P += momentum * V - lr * g

    With l1 > 0, a weight the step carries across zero stops at exactly 0 and
    its velocity is reset to 0 (see ``sgd_update``).
    """
    g = dP + l2 * P + l1 * np.sign(P)
    V *= momentum
    V -= lr * g
    new = P + (momentum * V - lr * g)
    crossed = _crossed_zero(new, P, l1)
    new[crossed] = 0
    V[crossed] = 0
    P[...] = new


def adam_step_size(learning_rate, beta_1, beta_2, t):
    """Adam's bias-corrected step size at step t >= 1: lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) (scikit-learn's).

    A Python float, so that a float32 update multiplies by it in float32 (a NumPy float64 would promote).
    """
    return float(learning_rate * np.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t))


def adam_update(P, dP, M, V, step_size, beta_1, beta_2, epsilon, l2, l1):
    """Adam (Kingma and Ba 2015) as scikit-learn writes it, in place, with g = dP + l2 * P + l1 * sign(P):

        M = beta_1 * M + (1 - beta_1) * g;   V = beta_2 * V + (1 - beta_2) * g * g
        P -= step_size * M / (sqrt(V) + epsilon)

    ``step_size`` is ``adam_step_size(learning_rate, beta_1, beta_2, t)``: the bias
    correction of both moments folded into one scalar per step, epsilon outside it.
    With l1 > 0, a weight the step carries across zero stops at exactly 0 (the
    moments keep their values).
    """
    g = dP + l2 * P + l1 * np.sign(P)
    M *= beta_1
    M += (1 - beta_1) * g
    V *= beta_2
    V += (1 - beta_2) * (g * g)
    new = P - step_size * M / (np.sqrt(V) + epsilon)
    new[_crossed_zero(new, P, l1)] = 0
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


def linear_activation_forward(X, W, b, activation, Z, H):
    """Z = X W^T + b, H = f(Z): ``matmul_nt`` then ``bias_activation_forward``.  Z, H (n, m)."""
    matmul_nt(X, W, Z)
    bias_activation_forward(Z, b, activation, H)


def linear_activation_dropout_forward(X, W, b, activation, mask, Z, H):
    """Z = X W^T + b, H = f(Z) * mask: ``matmul_nt`` then ``bias_activation_dropout_forward``.  mask, Z, H (n, m)."""
    matmul_nt(X, W, Z)
    bias_activation_dropout_forward(Z, b, activation, mask, H)


def linear_activation_backward(dZ_next, W, Z, activation, dZ):
    """dZ = (dZ_next W) * f'(Z): ``matmul_nn`` into dZ, then ``activation_backward`` in place.

    dZ_next (n, m) the next layer's delta, W (m, k) its weights, Z, dZ (n, k).
    """
    matmul_nn(dZ_next, W, dZ)
    activation_backward(dZ, Z, activation, dZ)


def linear_activation_dropout_backward(dZ_next, W, Z, activation, mask, dZ):
    """dZ = (dZ_next W) * f'(Z) * mask: ``matmul_nn`` then ``activation_dropout_backward`` in place."""
    matmul_nn(dZ_next, W, dZ)
    activation_dropout_backward(dZ, Z, activation, mask, dZ)


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


def sigmoid_cross_entropy_accumulate(logits, targets, probs, dlogits, loss_out, epoch_stats, step):
    """``sigmoid_cross_entropy``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    sigmoid_cross_entropy(logits, targets, probs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


def poisson_loss_accumulate(logits, targets, outputs, dlogits, loss_out, epoch_stats, step):
    """``poisson_loss``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    poisson_loss(logits, targets, outputs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


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


def layer_sgd_nesterov_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_nesterov_update`` of W (with l2, l1) and of b (without).  W, dW, VW (m, k); b, db, Vb (m,)."""
    sgd_nesterov_update(W, dW, VW, lr, momentum, l2, l1)
    sgd_nesterov_update(b, db, Vb, lr, momentum, 0.0, 0.0)


def layer_adam_update(W, dW, MW, VW, b, db, Mb, Vb, step_size, beta_1, beta_2, epsilon, l2, l1):
    """``adam_update`` of W (with l2, l1) and of b (without).  W, dW, MW, VW (m, k); b, db, Mb, Vb (m,)."""
    adam_update(W, dW, MW, VW, step_size, beta_1, beta_2, epsilon, l2, l1)
    adam_update(b, db, Mb, Vb, step_size, beta_1, beta_2, epsilon, 0.0, 0.0)


# ---------------------------------------------------------------- the reduced network
# The lecture's per-minibatch dropout runs on the kept units only; their activations
# are scaled by 1/keep (inverted dropout) instead of multiplied by a mask.
def bias_activation_scale_forward(Z, b, activation, scale, H):
    """Z += b in place, H = f(Z) * scale: ``bias_activation_forward``, then H *= scale.  Z, H (n, d), b (d,)."""
    bias_activation_forward(Z, b, activation, H)
    H *= scale


def activation_scale_backward(dH, Z, activation, scale, dZ):
    """dZ = dH * f'(Z) * scale: ``activation_backward``, then dZ *= scale.  (n, d); dZ may be dH."""
    activation_backward(dH, Z, activation, dZ)
    dZ *= scale
