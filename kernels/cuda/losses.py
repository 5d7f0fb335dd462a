"""The cuda backend's losses and regularisation penalty, reduced on the device in float64.

Every reduction takes two deterministic passes: each block leaves the float64 sum
of its elements in a slot of a reusable scratch buffer (a tree reduction in a
fixed order, no atomics), then one block sums those partials into the (1,)
result. The same inputs therefore always give the same loss bits. The float32
kernels here use float64 on purpose, for these sums only (``FLOAT64_ACCUMULATORS``
in ``kernels.cuda``).
"""
import math

import numpy as np
from numba import cuda

from .device_functions import device_functions
from .launch import (
    DEVICE_INLINE, EW_BLOCK_2D, EW_BX, EW_BY, REDUCE_BLOCK, grid_1d, grid_2d, partials_buffer, per_dtype,
    scalar_buffer, to_host,
)

_ZERO64 = np.float64(0.0)


# ---------------------------------------------------------------- the second pass (dtype-independent)
@cuda.jit(device=True, **DEVICE_INLINE)
def block_sum64(buf, tid):
    # Tree reduction over REDUCE_BLOCK float64 slots; a fixed order, so deterministic.
    step = REDUCE_BLOCK // 2
    while step > 0:
        cuda.syncthreads()
        if tid < step:
            buf[tid] += buf[tid + step]
        step //= 2
    cuda.syncthreads()
    return buf[0]


@cuda.jit
def sum_partials(partials, count, coef, divisor, out):
    # out[0] = (coef * sum(partials[:count])) / divisor, in the reference's order.
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
    acc = _ZERO64
    for i in range(tid, count, REDUCE_BLOCK):
        acc += partials[i]
    buf[tid] = acc
    total = block_sum64(buf, tid)
    if tid == 0:
        out[0] = (coef * total) / divisor


@cuda.jit
def sum_partials_accumulate(partials, count, coef, divisor, out, epoch_stats, weight, step):
    # sum_partials, then the training loop's bookkeeping: epoch_stats[0] += weight * loss
    # while every loss so far was finite; the first non-finite one records its step
    # in epoch_stats[1] (which starts negative) and stops the sum there, as the host loops do.
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
    acc = _ZERO64
    for i in range(tid, count, REDUCE_BLOCK):
        acc += partials[i]
    buf[tid] = acc
    total = block_sum64(buf, tid)
    if tid == 0:
        loss = (coef * total) / divisor
        out[0] = loss
        if epoch_stats[1] < _ZERO64:
            if math.isnan(loss) or math.isinf(loss):
                epoch_stats[1] = step
            else:
                epoch_stats[0] += loss * weight


def finish_loss(partials, count, coef, divisor, out, epoch_stats=None, step=0):
    """out[0] = coef * sum(partials[:count]) / divisor; with ``epoch_stats``, the epoch's bookkeeping too."""
    if epoch_stats is None:
        sum_partials[1, REDUCE_BLOCK](partials, np.int64(count), np.float64(coef), np.float64(divisor), out)
    else:
        sum_partials_accumulate[1, REDUCE_BLOCK](partials, np.int64(count), np.float64(coef),
                                                 np.float64(divisor), out, epoch_stats,
                                                 np.float64(divisor), np.float64(step))


# ---------------------------------------------------------------- the first pass
@per_dtype
def softmax_cross_entropy_rows(dtype):
    DT = dtype.type
    zero = DT(0)
    one = DT(1)

    @cuda.jit
    def softmax_cross_entropy_rows(logits, labels, probs, dlogits, partials):
        # Per row: probs, dlogits = (probs - onehot)/n and the row's log-likelihood
        # (float64, as the reference sums it); each block leaves its rows' sum in partials.
        tid = cuda.threadIdx.x
        i = cuda.blockIdx.x * REDUCE_BLOCK + tid
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = logits.shape[0]
        row_ll = _ZERO64
        if i < n:
            k = logits.shape[1]
            nf = DT(n)
            m = logits[i, 0]
            for c in range(1, k):
                v = logits[i, c]
                if v > m:
                    m = v
            s = zero
            for c in range(k):
                s += math.exp(logits[i, c] - m)
            log_norm = math.log(s)
            label = labels[i]
            for c in range(k):
                p = math.exp((logits[i, c] - m) - log_norm)
                probs[i, c] = p
                d = p - one if c == label else p
                dlogits[i, c] = d / nf
            row_ll = np.float64((logits[i, label] - m) - log_norm)
        buf[tid] = row_ll
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.x] = total

    return softmax_cross_entropy_rows


@per_dtype
def squared_error_2d(dtype):
    DT = dtype.type

    @cuda.jit
    def squared_error_2d(outputs, targets, doutputs, partials):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = outputs.shape[0]
        sq = _ZERO64
        if i < n and j < outputs.shape[1]:
            d = outputs[i, j] - targets[i, j]
            d64 = np.float64(d)
            sq = d64 * d64
            doutputs[i, j] = d / DT(n)
        buf[tid] = sq
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    return squared_error_2d


@per_dtype
def sigmoid_cross_entropy_2d(dtype):
    DT = dtype.type
    sigmoid = device_functions(dtype).sigmoid

    @cuda.jit
    def sigmoid_cross_entropy_2d(logits, targets, probs, dlogits, partials):
        # probs = sigmoid(z), dlogits = (probs - y) / n in the array dtype; the loss term
        # softplus(z) - y z in float64 (softplus(z) = max(z, 0) + log1p(exp(-|z|)), finite for any z).
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = logits.shape[0]
        term = _ZERO64
        if i < n and j < logits.shape[1]:
            z = logits[i, j]
            y = targets[i, j]
            p = sigmoid(z)
            probs[i, j] = p
            dlogits[i, j] = (p - y) / DT(n)
            z64 = np.float64(z)
            term = (max(z64, _ZERO64) + math.log1p(math.exp(-abs(z64)))) - np.float64(y) * z64
        buf[tid] = term
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    return sigmoid_cross_entropy_2d


@per_dtype
def poisson_loss_2d(dtype):
    DT = dtype.type

    @cuda.jit
    def poisson_loss_2d(logits, targets, outputs, dlogits, partials):
        # outputs = exp(z), dlogits = (outputs - y) / n in the array dtype; the loss term
        # y log y - y z - y + exp(z) in float64, with y log y = 0 at y = 0.
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = logits.shape[0]
        term = _ZERO64
        if i < n and j < logits.shape[1]:
            z = logits[i, j]
            y = targets[i, j]
            out = math.exp(z)
            outputs[i, j] = out
            dlogits[i, j] = (out - y) / DT(n)
            z64 = np.float64(z)
            y64 = np.float64(y)
            ylogy = y64 * math.log(y64) if y64 != _ZERO64 else _ZERO64
            term = ((ylogy - y64 * z64) - y64) + math.exp(z64)
        buf[tid] = term
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    return poisson_loss_2d


@per_dtype
def regularization_loss_1d(dtype):
    @cuda.jit
    def regularization_loss_1d(W, half_l2, l1, partials):
        tid = cuda.threadIdx.x
        i = cuda.blockIdx.x * REDUCE_BLOCK + tid
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        v = _ZERO64
        if i < W.shape[0]:
            w = np.float64(W[i])
            v = half_l2 * (w * w) + l1 * abs(w)
        buf[tid] = v
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.x] = total

    return regularization_loss_1d


@per_dtype
def regularization_loss_2d(dtype):
    @cuda.jit
    def regularization_loss_2d(W, half_l2, l1, partials):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        v = _ZERO64
        if i < W.shape[0] and j < W.shape[1]:
            w = np.float64(W[i, j])
            v = half_l2 * (w * w) + l1 * abs(w)
        buf[tid] = v
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    return regularization_loss_2d


def softmax_cross_entropy_partials(logits, labels, probs, dlogits):
    """The first pass of ``softmax_cross_entropy``: (partials buffer, number of partials)."""
    blocks = grid_1d(logits.shape[0], REDUCE_BLOCK)
    partials = partials_buffer(blocks)
    softmax_cross_entropy_rows(probs.dtype)[blocks, REDUCE_BLOCK](logits, labels, probs, dlogits, partials)
    return partials, blocks


def squared_error_partials(outputs, targets, doutputs):
    """The first pass of ``squared_error``: (partials buffer, number of partials)."""
    grid = grid_2d(*outputs.shape)
    blocks = grid[0] * grid[1]
    partials = partials_buffer(blocks)
    squared_error_2d(doutputs.dtype)[grid, EW_BLOCK_2D](outputs, targets, doutputs, partials)
    return partials, blocks


def elementwise_loss_partials(kernel, logits, targets, outputs, dlogits):
    """The first pass of a loss with one thread per element (``kernel(dtype)``): (partials, count)."""
    grid = grid_2d(*logits.shape)
    blocks = grid[0] * grid[1]
    partials = partials_buffer(blocks)
    if blocks:
        kernel(dlogits.dtype)[grid, EW_BLOCK_2D](logits, targets, outputs, dlogits, partials)
    return partials, blocks


def sigmoid_cross_entropy_partials(logits, targets, probs, dlogits):
    """The first pass of ``sigmoid_cross_entropy``: (partials buffer, number of partials)."""
    return elementwise_loss_partials(sigmoid_cross_entropy_2d, logits, targets, probs, dlogits)


def poisson_loss_partials(logits, targets, outputs, dlogits):
    """The first pass of ``poisson_loss``: (partials buffer, number of partials)."""
    return elementwise_loss_partials(poisson_loss_2d, logits, targets, outputs, dlogits)


# ---------------------------------------------------------------- the public kernels
def softmax_cross_entropy(logits, labels, probs, dlogits, loss_out):
    """Softmax, mean cross-entropy and its gradient with respect to the logits, fused.

    logits, probs, dlogits (n, k); labels (n,) integers in [0, k) (a device array);
    loss_out (1,) float64 device array.
    loss_out[0] = -(1/n) sum_i log probs[i, labels[i]];  dlogits = (probs - onehot(labels)) / n.
    The loss is reduced on the device (per-block float64 partials, then one block).
    """
    partials, count = softmax_cross_entropy_partials(logits, labels, probs, dlogits)
    finish_loss(partials, count, -1.0, logits.shape[0], loss_out)


def squared_error(outputs, targets, doutputs, loss_out):
    """Squared error of an identity output layer and its gradient, fused.

    outputs, targets, doutputs (n, k); loss_out (1,) float64 device array.
    loss_out[0] = (1/2n) sum ||y_hat - y||^2;  doutputs = (y_hat - y) / n.
    """
    partials, count = squared_error_partials(outputs, targets, doutputs)
    finish_loss(partials, count, 0.5, outputs.shape[0], loss_out)


def sigmoid_cross_entropy(logits, targets, probs, dlogits, loss_out):
    """Logistic outputs, mean binary cross-entropy and its gradient, fused (binary and multilabel).

    logits, targets, probs, dlogits (n, k), targets in [0, 1]; loss_out (1,) float64 device array.
    probs = sigmoid(logits);  loss_out[0] = (1/n) sum softplus(z) - y z (finite for any logit);
    dlogits = (probs - y) / n.
    """
    partials, count = sigmoid_cross_entropy_partials(logits, targets, probs, dlogits)
    finish_loss(partials, count, 1.0, logits.shape[0], loss_out)


def poisson_loss(logits, targets, outputs, dlogits, loss_out):
    """Exponential outputs, mean half Poisson deviance and its gradient, fused.

    logits, targets, outputs, dlogits (n, k), targets >= 0; loss_out (1,) float64 device array.
    outputs = exp(logits);  loss_out[0] = (1/n) sum y log(y / y_hat) - y + y_hat (y log y = 0 at y = 0);
    dlogits = (outputs - y) / n.
    """
    partials, count = poisson_loss_partials(logits, targets, outputs, dlogits)
    finish_loss(partials, count, 1.0, logits.shape[0], loss_out)


def regularization_loss(W, l2, l1):
    """(l2/2) ||W||_F^2 + l1 sum|W| as a Python float (accumulated in float64; waits for the GPU)."""
    out = scalar_buffer()
    if W.size == 0:
        return 0.0
    if W.ndim == 1:
        blocks = grid_1d(W.shape[0], REDUCE_BLOCK)
        partials = partials_buffer(blocks)
        regularization_loss_1d(W.dtype)[blocks, REDUCE_BLOCK](W, np.float64(0.5 * l2), np.float64(l1), partials)
    elif W.ndim == 2:
        grid = grid_2d(*W.shape)
        blocks = grid[0] * grid[1]
        partials = partials_buffer(blocks)
        regularization_loss_2d(W.dtype)[grid, EW_BLOCK_2D](W, np.float64(0.5 * l2), np.float64(l1), partials)
    else:
        raise ValueError(f"W must be 1-D or 2-D; got shape {tuple(W.shape)}")
    finish_loss(partials, blocks, 1.0, 1.0, out)
    return float(to_host(out)[0])
