"""The cpu backend's output layers and losses (``kernels.cpu_backend`` re-exports them): Numba ``@njit``.

Same functions and signatures as the reference, ``kernels.numpy_backend``; read the
equations there. Each loss is fused with its output activation and its gradient with
respect to the logits, and sums in float64; the ``_accumulate`` forms add the epoch's
bookkeeping for the compiled training loops. ``sigmoid`` is the overflow-free logistic
function the activation kernels share.

A cached function that calls these names this module in its ``depends_on`` (``kernels.jit``).
"""
import functools

import numpy as np

from . import jit

# NumPy's error model, as in ``kernels.cpu_updates``: no ZeroDivisionError check per division.
njit = functools.partial(jit.njit, error_model="numpy")


@njit
def sigmoid(z, one):
    """1 / (1 + exp(-z)) in z's precision (``one`` is 1 in it); exp never overflows."""
    if z >= 0:
        return one / (one + np.exp(-z))
    e = np.exp(z)
    return e / (one + e)


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


@njit
def sigmoid_cross_entropy(logits, targets, probs, dlogits, loss_out):
    """probs = sigmoid(logits), mean binary cross-entropy, dlogits = (probs - y) / n.

    The loss, summed in float64, is softplus(z) - y z = log1p(exp(-|z|)) + max(z, 0) - y z,
    finite for any logit.  logits, targets, probs, dlogits (n, k); loss_out (1,) float64.
    """
    n, k = logits.shape
    inv_n = logits.dtype.type(1.0 / n)
    one = logits.dtype.type(1)
    loss = 0.0
    for i in range(n):
        for j in range(k):
            z = logits[i, j]
            y = targets[i, j]
            p = sigmoid(z, one)
            probs[i, j] = p
            dlogits[i, j] = (p - y) * inv_n
            z64 = np.float64(z)
            loss += np.log1p(np.exp(-abs(z64))) + max(z64, 0.0) - np.float64(y) * z64
    loss_out[0] = loss / n


@njit
def poisson_loss(logits, targets, outputs, dlogits, loss_out):
    """outputs = exp(logits), mean half Poisson deviance, dlogits = (outputs - y) / n.

    The loss, summed in float64: y log y - y z - y + exp(z), with y log y = 0 at y = 0.
    logits, targets, outputs, dlogits (n, k), targets >= 0; loss_out (1,) float64.
    """
    n, k = logits.shape
    inv_n = logits.dtype.type(1.0 / n)
    loss = 0.0
    for i in range(n):
        for j in range(k):
            z = logits[i, j]
            y = targets[i, j]
            e = np.exp(z)
            outputs[i, j] = e
            dlogits[i, j] = (e - y) * inv_n
            z64 = np.float64(z)
            y64 = np.float64(y)
            y_log_y = y64 * np.log(y64) if y64 != 0.0 else 0.0
            loss += y_log_y - y64 * z64 - y64 + np.exp(z64)
    loss_out[0] = loss / n


# ---------------------------------------------------------------- with the epoch's bookkeeping
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


@njit(inline="always")
def softmax_cross_entropy_accumulate(logits, labels, probs, dlogits, loss_out, epoch_stats, step):
    """``softmax_cross_entropy``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    softmax_cross_entropy(logits, labels, probs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


@njit(inline="always")
def squared_error_accumulate(outputs, targets, doutputs, loss_out, epoch_stats, step):
    """``squared_error``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    squared_error(outputs, targets, doutputs, loss_out)
    _accumulate_loss(loss_out, outputs.shape[0], epoch_stats, step)


@njit(inline="always")
def sigmoid_cross_entropy_accumulate(logits, targets, probs, dlogits, loss_out, epoch_stats, step):
    """``sigmoid_cross_entropy``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    sigmoid_cross_entropy(logits, targets, probs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)


@njit(inline="always")
def poisson_loss_accumulate(logits, targets, outputs, dlogits, loss_out, epoch_stats, step):
    """``poisson_loss``, then the epoch's loss bookkeeping in epoch_stats (2,) float64."""
    poisson_loss(logits, targets, outputs, dlogits, loss_out)
    _accumulate_loss(loss_out, logits.shape[0], epoch_stats, step)
