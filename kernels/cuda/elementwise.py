"""The cuda backend's elementwise kernels: activations, their derivatives, bias gradients, dropout masks.

The activation kernels take the activation's code (``kernels.codes.ACTIVATIONS``)
as an argument and branch on it in ``device_functions``' ``activate`` /
``derivative``: one compiled kernel serves every activation.

One thread per element on 2-D grids of 32x8 blocks (a warp reads 32 consecutive
elements of a row), except ``softmax`` (one thread per row: an MLP's output
layer has few classes) and ``bias_grad`` (a block per 32 columns). Each kernel
is built per dtype and named after the public kernel it serves.
"""
import math

import numpy as np
from numba import cuda

from ..counter_rng import keep_threshold, stream_key
from .device_functions import device_functions
from .launch import (
    EW_BLOCK_1D, EW_BLOCK_2D, EW_BX, EW_BY, ROWS_BLOCK, cdiv, grid_1d, grid_2d, launch_2d, per_dtype,
)


# ---------------------------------------------------------------- kernels
@per_dtype
def apply_mask_2d(dtype):
    @cuda.jit
    def apply_mask_2d(X, mask, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = X[i, j] * mask[i, j]

    return apply_mask_2d


@per_dtype
def bias_add_2d(dtype):
    @cuda.jit
    def bias_add_2d(Z, b):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            Z[i, j] += b[j]

    return bias_add_2d


@per_dtype
def bias_activation_forward_2d(dtype):
    activate = device_functions(dtype).activate

    @cuda.jit
    def bias_activation_forward_2d(Z, b, activation, H):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = activate(z, activation)

    return bias_activation_forward_2d


@per_dtype
def bias_activation_dropout_forward_2d(dtype):
    activate = device_functions(dtype).activate

    @cuda.jit
    def bias_activation_dropout_forward_2d(Z, b, activation, mask, H):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = activate(z, activation) * mask[i, j]

    return bias_activation_dropout_forward_2d


@per_dtype
def softmax_rows(dtype):
    zero = dtype.type(0)

    @cuda.jit
    def softmax_rows(logits, probs):
        # One thread per row: an MLP's output layer has few classes, so a row is short.
        i = cuda.grid(1)
        if i < logits.shape[0]:
            k = logits.shape[1]
            m = logits[i, 0]
            for c in range(1, k):
                v = logits[i, c]
                if v > m:
                    m = v
            s = zero
            for c in range(k):
                e = math.exp(logits[i, c] - m)
                probs[i, c] = e
                s += e
            for c in range(k):
                probs[i, c] = probs[i, c] / s

    return softmax_rows


@per_dtype
def activation_backward_2d(dtype):
    derivative = device_functions(dtype).derivative

    @cuda.jit
    def activation_backward_2d(dH, Z, activation, dZ):
        j, i = cuda.grid(2)
        if i < dZ.shape[0] and j < dZ.shape[1]:
            dZ[i, j] = dH[i, j] * derivative(Z[i, j], activation)

    return activation_backward_2d


@per_dtype
def activation_dropout_backward_2d(dtype):
    derivative = device_functions(dtype).derivative

    @cuda.jit
    def activation_dropout_backward_2d(dH, Z, activation, mask, dZ):
        j, i = cuda.grid(2)
        if i < dZ.shape[0] and j < dZ.shape[1]:
            g = dH[i, j] * derivative(Z[i, j], activation)
            dZ[i, j] = g * mask[i, j]

    return activation_dropout_backward_2d


@per_dtype
def bias_grad_cols(dtype):
    DT = dtype.type
    zero = DT(0)

    @cuda.jit
    def bias_grad_cols(dZ, db):
        # A block owns 32 columns; its 8 thread rows each sum every 8th row (reads
        # coalesce along a row), then thread row 0 adds the 8 partial sums in order.
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        j = cuda.blockIdx.x * EW_BX + tx
        part = cuda.shared.array((EW_BY, EW_BX), DT)
        acc = zero
        if j < dZ.shape[1]:
            for i in range(ty, dZ.shape[0], EW_BY):
                acc += dZ[i, j]
        part[ty, tx] = acc
        cuda.syncthreads()
        if ty == 0 and j < dZ.shape[1]:
            total = part[0, tx]
            for r in range(1, EW_BY):
                total += part[r, tx]
            db[j] = total

    return bias_grad_cols


# Dropout masks: the element index is the C-order one, whatever the rank.
@per_dtype
def dropout_mask_1d(dtype):
    keep_value = device_functions(dtype).keep_value

    @cuda.jit
    def dropout_mask_1d(key, threshold, kept, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = keep_value(key, i, threshold, kept)

    return dropout_mask_1d


@per_dtype
def dropout_mask_2d(dtype):
    keep_value = device_functions(dtype).keep_value

    @cuda.jit
    def dropout_mask_2d(key, threshold, kept, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = keep_value(key, i * out.shape[1] + j, threshold, kept)

    return dropout_mask_2d


# ---------------------------------------------------------------- the public kernels
def apply_mask(X, mask, out):
    """out = X * mask: dropout on the input layer.  X, mask, out (n, d)."""
    launch_2d(apply_mask_2d(out.dtype), out, X, mask, out)


def bias_add(Z, b):
    """Z += b in place: the output layer's pre-activation.  Z (n, d), b (d,)."""
    launch_2d(bias_add_2d(Z.dtype), Z, Z, b)


def bias_activation_forward(Z, b, activation, H):
    """Z += b in place, H = f(Z) for the activation's code (``kernels.codes``).  Z, H (n, d), b (d,)."""
    launch_2d(bias_activation_forward_2d(Z.dtype), Z, Z, b, int(activation), H)


def bias_activation_dropout_forward(Z, b, activation, mask, H):
    """Z += b in place, H = f(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    launch_2d(bias_activation_dropout_forward_2d(Z.dtype), Z, Z, b, int(activation), mask, H)


def softmax(logits, probs):
    """probs = softmax of each row of logits, shifted by the row max for stability.  (n, k)."""
    n, k = logits.shape
    if n and k:
        softmax_rows(probs.dtype)[grid_1d(n, ROWS_BLOCK), ROWS_BLOCK](logits, probs)


def activation_backward(dH, Z, activation, dZ):
    """dZ = dH * f'(Z) for the activation's code, with relu'(0) = 0 exactly.  (n, d); dZ may be dH."""
    launch_2d(activation_backward_2d(dZ.dtype), dZ, dH, Z, int(activation), dZ)


def activation_dropout_backward(dH, Z, activation, mask, dZ):
    """dZ = dH * f'(Z) * mask, for the kept neurons.  (n, d); dZ may be dH."""
    launch_2d(activation_dropout_backward_2d(dZ.dtype), dZ, dH, Z, int(activation), mask, dZ)


def bias_grad(dZ, db):
    """db = sum of dZ over the minibatch rows.  dZ (n, d), db (d,)."""
    d = dZ.shape[1]
    if d:
        bias_grad_cols(db.dtype)[cdiv(d, EW_BX), EW_BLOCK_2D](dZ, db)


def dropout_mask(seed, stream, keep, out):
    """Fill ``out`` with 1/keep for kept neurons and 0 for removed ones, each kept with probability keep.

    Bit-identical to the reference: element i (in C order) is a pure function of
    (seed, stream, i), see ``kernels.counter_rng``.  out: a C-contiguous device array.
    """
    key = np.uint64(stream_key(seed, stream))
    threshold = np.uint64(keep_threshold(keep))
    kept = out.dtype.type(1.0 / keep)
    if out.size == 0:
        return
    if out.ndim == 2:
        dropout_mask_2d(out.dtype)[grid_2d(*out.shape), EW_BLOCK_2D](key, threshold, kept, out)
    else:
        flat = out if out.ndim == 1 else out.reshape(out.size)
        dropout_mask_1d(out.dtype)[grid_1d(flat.shape[0]), EW_BLOCK_1D](key, threshold, kept, flat)
