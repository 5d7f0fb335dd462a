"""The training-loop kernels: what ``mlp``'s cuda engine needs so that a step never leaves the GPU.

A minibatch gathered on the device from the resident data and its order (with
the input dropout mask), losses that also keep the epoch's sum on the device,
and a whole layer's update (SGD, momentum, Nesterov or Adam) in one launch.
Each equals the chain of standard kernels ``kernels.spec`` names for it.
"""
import numpy as np
from numba import cuda

from ..counter_rng import keep_threshold, stream_key
from .device_functions import device_functions
from .launch import EW_BLOCK_2D, grid_2d, launch_2d, no_labels, per_dtype
from .losses import (
    finish_loss, poisson_loss_partials, sigmoid_cross_entropy_partials, softmax_cross_entropy_partials,
    squared_error_partials,
)
from .updates import adam_scalars


# ---------------------------------------------------------------- kernels
@per_dtype
def gather_minibatch_2d(dtype):
    keep_value = device_functions(dtype).keep_value

    @cuda.jit
    def gather_minibatch_2d(X, perm, start, key, threshold, kept, masked, labels, with_labels, Xb, yb):
        # Xb[i] = X[perm[start + i]] (times the input dropout mask, element i*d + j of
        # stream ``key``, when masked); yb[i] = labels[perm[start + i]] when with_labels.
        j, i = cuda.grid(2)
        if i < Xb.shape[0] and j < Xb.shape[1]:
            src = perm[start + i]
            x = X[src, j]
            if masked:
                x = x * keep_value(key, i * Xb.shape[1] + j, threshold, kept)
            Xb[i, j] = x
            if with_labels and j == 0:
                yb[i] = labels[src]

    return gather_minibatch_2d


# A whole layer's update in one launch: thread (i, j) steps W[i, j], and the threads
# of column 0 step b[i] too (no regularisation on biases, as the reference).
@per_dtype
def layer_sgd_update_2d(dtype):
    zero = dtype.type(0)
    sgd_step = device_functions(dtype).sgd_step

    @cuda.jit
    def layer_sgd_update_2d(W, dW, b, db, lr, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j] = sgd_step(W[i, j], dW[i, j], lr, l2, l1, clip)
            if j == 0:
                b[i] = sgd_step(b[i], db[i], lr, zero, zero, False)

    return layer_sgd_update_2d


@per_dtype
def layer_sgd_momentum_update_2d(dtype):
    zero = dtype.type(0)
    momentum_step = device_functions(dtype).momentum_step

    @cuda.jit
    def layer_sgd_momentum_update_2d(W, dW, VW, b, db, Vb, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j], VW[i, j] = momentum_step(W[i, j], dW[i, j], VW[i, j], lr, momentum, l2, l1, clip)
            if j == 0:
                b[i], Vb[i] = momentum_step(b[i], db[i], Vb[i], lr, momentum, zero, zero, False)

    return layer_sgd_momentum_update_2d


@per_dtype
def layer_sgd_nesterov_update_2d(dtype):
    zero = dtype.type(0)
    nesterov_step = device_functions(dtype).nesterov_step

    @cuda.jit
    def layer_sgd_nesterov_update_2d(W, dW, VW, b, db, Vb, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j], VW[i, j] = nesterov_step(W[i, j], dW[i, j], VW[i, j], lr, momentum, l2, l1, clip)
            if j == 0:
                b[i], Vb[i] = nesterov_step(b[i], db[i], Vb[i], lr, momentum, zero, zero, False)

    return layer_sgd_nesterov_update_2d


@per_dtype
def layer_adam_update_2d(dtype):
    zero = dtype.type(0)
    adam_step = device_functions(dtype).adam_step

    @cuda.jit
    def layer_adam_update_2d(W, dW, MW, VW, b, db, Mb, Vb, step_size, beta_1, one_minus_beta_1, beta_2,
                             one_minus_beta_2, epsilon, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j], MW[i, j], VW[i, j] = adam_step(W[i, j], dW[i, j], MW[i, j], VW[i, j], step_size, beta_1,
                                                    one_minus_beta_1, beta_2, one_minus_beta_2, epsilon,
                                                    l2, l1, clip)
            if j == 0:
                b[i], Mb[i], Vb[i] = adam_step(b[i], db[i], Mb[i], Vb[i], step_size, beta_1, one_minus_beta_1,
                                               beta_2, one_minus_beta_2, epsilon, zero, zero, False)

    return layer_adam_update_2d


# ---------------------------------------------------------------- the public kernels
def gather_minibatch(X, perm, start, out, labels=None, labels_out=None, seed=0, stream=0, keep=1.0):
    """out[i] = X[perm[start + i]] for each row i of ``out``, on the device, in one launch.

    With ``labels``, also labels_out[i] = labels[perm[start + i]]. With keep < 1,
    ``out`` is multiplied by the input-layer dropout mask the standard kernels
    would draw: ``dropout_mask(seed, stream, keep, m)`` with m shaped like ``out``,
    then ``apply_mask`` (bit-identical), without storing the mask (the backward
    pass never needs the input layer's).

    X (n, d) device; perm (>= start + rows,) int64 device; out (rows, d);
    labels (n,) and labels_out (rows,) integer device arrays, or None.
    """
    rows, d = out.shape
    if rows == 0 or d == 0:
        return
    masked = keep < 1.0
    key = np.uint64(stream_key(seed, stream) if masked else 0)
    threshold = np.uint64(keep_threshold(keep) if masked else 0)
    with_labels = labels is not None
    if not with_labels:
        labels = labels_out = no_labels()
    gather_minibatch_2d(out.dtype)[grid_2d(rows, d), EW_BLOCK_2D](
        X, perm, np.int64(start), key, threshold, out.dtype.type(1.0 / keep), masked,
        labels, with_labels, out, labels_out)


def softmax_cross_entropy_accumulate(logits, labels, probs, dlogits, loss_out, epoch_stats, step):
    """``softmax_cross_entropy``, then the epoch's loss bookkeeping, on the device.

    epoch_stats (2,) float64 device array, set to (0, -1) at the start of an epoch:
    while every minibatch loss so far is finite, epoch_stats[0] += loss * rows;
    the first non-finite loss writes its ``step`` into epoch_stats[1] and ends the sum.
    Same launches as ``softmax_cross_entropy`` (the bookkeeping rides on its final
    reduction), so the loss never has to be read on the host during an epoch.
    """
    partials, count = softmax_cross_entropy_partials(logits, labels, probs, dlogits)
    finish_loss(partials, count, -1.0, logits.shape[0], loss_out, epoch_stats, step)


def squared_error_accumulate(outputs, targets, doutputs, loss_out, epoch_stats, step):
    """``squared_error``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    partials, count = squared_error_partials(outputs, targets, doutputs)
    finish_loss(partials, count, 0.5, outputs.shape[0], loss_out, epoch_stats, step)


def sigmoid_cross_entropy_accumulate(logits, targets, probs, dlogits, loss_out, epoch_stats, step):
    """``sigmoid_cross_entropy``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    partials, count = sigmoid_cross_entropy_partials(logits, targets, probs, dlogits)
    finish_loss(partials, count, 1.0, logits.shape[0], loss_out, epoch_stats, step)


def poisson_loss_accumulate(logits, targets, outputs, dlogits, loss_out, epoch_stats, step):
    """``poisson_loss``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    partials, count = poisson_loss_partials(logits, targets, outputs, dlogits)
    finish_loss(partials, count, 1.0, logits.shape[0], loss_out, epoch_stats, step)


def layer_sgd_update(W, dW, b, db, lr, l2, l1):
    """``sgd_update(W, dW, lr, l2, l1)`` and ``sgd_update(b, db, lr, 0, 0)`` in one launch.

    W, dW (m, k); b, db (m,).
    """
    t = W.dtype.type
    launch_2d(layer_sgd_update_2d(W.dtype), W, W, dW, b, db, t(lr), t(l2), t(l1), bool(l1 > 0))


def layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_momentum_update`` of W (with l2, l1) and of b (without) in one launch.

    W, dW, VW (m, k); b, db, Vb (m,).
    """
    t = W.dtype.type
    launch_2d(layer_sgd_momentum_update_2d(W.dtype), W, W, dW, VW, b, db, Vb, t(lr), t(momentum),
              t(l2), t(l1), bool(l1 > 0))


def layer_sgd_nesterov_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_nesterov_update`` of W (with l2, l1) and of b (without) in one launch.

    W, dW, VW (m, k); b, db, Vb (m,).
    """
    t = W.dtype.type
    launch_2d(layer_sgd_nesterov_update_2d(W.dtype), W, W, dW, VW, b, db, Vb, t(lr), t(momentum),
              t(l2), t(l1), bool(l1 > 0))


def layer_adam_update(W, dW, MW, VW, b, db, Mb, Vb, step_size, beta_1, beta_2, epsilon, l2, l1):
    """``adam_update`` of W (with l2, l1) and of b (without) in one launch.

    W, dW, MW, VW (m, k); b, db, Mb, Vb (m,).
    """
    t = W.dtype.type
    launch_2d(layer_adam_update_2d(W.dtype), W, W, dW, MW, VW, b, db, Mb, Vb,
              *adam_scalars(t, step_size, beta_1, beta_2, epsilon), t(l2), t(l1), bool(l1 > 0))
