"""The CUDA backend: the reference's kernels as Numba CUDA kernels on device arrays.

Same functions, signatures and in-place conventions as ``kernels.numpy_backend``
(the specification); arguments are device arrays made by ``to_device``,
``empty`` or ``zeros``, and every function only queues work on the default
stream, so nothing waits for the GPU except ``to_host``, ``synchronize`` and
``regularization_loss`` (which returns a Python float).

Design notes
------------
* Kernels are built per dtype by small factories (``functools.lru_cache``) so
  that every constant in a kernel body (zero, one, shared-memory dtype) is a
  closure constant of the array dtype: a float32 model never touches float64
  arithmetic, except where the reference itself accumulates a loss in float64.
* The matrix products are shared-memory tiled and register blocked: a block
  of 16x16 threads computes a BM x BN tile of ``out`` with each thread holding
  TM x TN accumulators in registers (4x4 for large outputs, 2x2 otherwise, so
  that the small products of an MLP still spread over every SM).  A naive
  one-thread-per-output kernel and a plain 16x16 shared-memory tiled kernel are
  kept as ``ALTERNATIVES`` for tests and benchmarks.
* Losses are reduced on the device in two deterministic passes (per-block
  partial sums in float64, then one block sums the partials into
  ``loss_out``), using a reusable scratch buffer instead of atomics, so the
  same inputs always give the same loss bits.
* Kernels compile lazily, on first use of each dtype and array rank.
* ``TRAINING`` lists kernels beside the standard set for ``mlp.epoch_cuda``'s
  device-resident training step: a minibatch gather on the device (with the
  input dropout mask), losses that also sum the epoch's loss on the device, and
  a whole layer's SGD / momentum update in one launch.
* Grids are sized to the problem; an MLP's kernels are often smaller than the
  128 blocks below which numba-cuda warns about low occupancy, a warning that
  would fire on most launches here, so it is switched off for this process.
"""
import functools
import math

import numpy as np
from numba import cuda

from .counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24, keep_threshold, stream_key

try:  # the maintained target keeps its own config module
    from numba.cuda.core import config as _cuda_config
except ImportError:  # pragma: no cover - older numba-cuda / numba's built-in target
    from numba.core import config as _cuda_config

NAME = "cuda"

_SIMULATOR = bool(getattr(_cuda_config, "ENABLE_CUDASIM", False))
if not _SIMULATOR:
    _cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

# Device functions are inlined at the NVVM level so that the local accumulator
# arrays they fill can live in registers; the simulator's jit takes no such option.
_DEVICE_INLINE = {} if _SIMULATOR else {"forceinline": True}

# ---------------------------------------------------------------- launch configuration
EW_BX, EW_BY = 32, 8    # (columns, rows) of a 2-D block: a warp reads 32 consecutive elements of a row
EW_BLOCK_2D = (EW_BX, EW_BY)
EW_BLOCK_1D = 256
REDUCE_BLOCK = 256      # threads of every block-level reduction; a power of two
ROWS_BLOCK = 128        # softmax: one thread per row
NAIVE_BLOCK = (16, 16)
TILE = 16               # the plain tiled alternative


class MatmulConfig(tuple):
    """Register-blocking shape: (TY, TX) threads, each computing TM x TN outputs, K slices of BK.

    A block computes a (TY*TM) x (TX*TN) tile of ``out``; thread (ty, tx) owns rows
    ``ty + TY*a`` and columns ``tx + TX*b`` (strided, so a warp's shared-memory reads
    are conflict free and its stores to ``out`` coalesce).
    """

    __slots__ = ()

    def __new__(cls, ty, tx, tm, tn, bk):
        return super().__new__(cls, (ty, tx, tm, tn, bk))

    ty = property(lambda self: self[0])
    tx = property(lambda self: self[1])
    tm = property(lambda self: self[2])
    tn = property(lambda self: self[3])
    bk = property(lambda self: self[4])
    bm = property(lambda self: self[0] * self[2])
    bn = property(lambda self: self[1] * self[3])


MATMUL_LARGE = MatmulConfig(16, 16, 4, 4, 16)   # 64x64 tiles, 16 outputs per thread
MATMUL_SMALL = MatmulConfig(16, 16, 2, 2, 16)   # 32x32 tiles, 4 outputs per thread

@functools.lru_cache(maxsize=None)
def _sm_count():
    # The simulator's fake device has no SM count; 128 is numba-cuda's own rule of thumb.
    return int(getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 128))


def _matmul_config(m, n):
    """64x64 tiles once they alone fill every SM, else 32x32 tiles for more blocks."""
    if _cdiv(m, MATMUL_LARGE.bm) * _cdiv(n, MATMUL_LARGE.bn) >= _sm_count():
        return MATMUL_LARGE
    return MATMUL_SMALL


def _cdiv(a, b):
    return (a + b - 1) // b


def _grid_2d(rows, cols, block=EW_BLOCK_2D):
    return (_cdiv(cols, block[0]), _cdiv(rows, block[1]))


def _grid_1d(size, block=EW_BLOCK_1D):
    return _cdiv(size, block)


# ---------------------------------------------------------------- arrays
def _is_device_array(a):
    return bool(getattr(a, "__cuda_ndarray__", False))


def to_device(a, dtype=None):
    """A C-contiguous device array with the contents of ``a`` (host or device array).

    A device array that is already C-contiguous and of the requested dtype is
    returned as is (no copy), as the reference does for host arrays.
    """
    if not _is_device_array(a) and hasattr(a, "__cuda_array_interface__") and not _SIMULATOR:
        a = cuda.as_cuda_array(a)  # a foreign GPU array (CuPy, PyTorch...): wrap, don't copy
    if _is_device_array(a):
        if (dtype is None or np.dtype(dtype) == a.dtype) and a.is_c_contiguous():
            return a
        a = a.copy_to_host()  # a dtype change or a gather: rare, so done on the host
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def to_host(a):
    """A NumPy array with the contents of ``a`` (waits for the work that writes it)."""
    if _is_device_array(a):
        return a.copy_to_host()
    return np.asarray(a)


def empty(shape, dtype):
    """An uninitialised device array."""
    return cuda.device_array(shape, dtype=np.dtype(dtype))


def zeros(shape, dtype):
    """A device array of zeros (allocation is not in the hot loop, so a host copy is fine)."""
    return cuda.to_device(np.zeros(shape, dtype=dtype))


def synchronize():
    """Wait until all queued GPU work has finished."""
    cuda.synchronize()


# ---------------------------------------------------------------- scratch buffers
# Per-block loss partials and the (1,) result of regularization_loss. Kernels on the
# default stream run in order, so one buffer serves every call.
_scratch = {}


def _partials_buffer(count):
    buf = _scratch.get("partials")
    if buf is None or buf.shape[0] < count:
        buf = cuda.device_array(max(count, 1024), dtype=np.float64)
        _scratch["partials"] = buf
    return buf


def _scalar_buffer():
    buf = _scratch.get("scalar")
    if buf is None:
        buf = cuda.device_array(1, dtype=np.float64)
        _scratch["scalar"] = buf
    return buf


# Kernels whose float32 instantiation uses float64 on purpose: they accumulate a loss
# in float64 as the reference does. Every other kernel is pure in its array dtype.
FLOAT64_ACCUMULATORS = frozenset({
    "softmax_xent_rows", "squared_error_2d", "reg_loss_1d", "reg_loss_2d", "sum_partials",
})


# ---------------------------------------------------------------- kernel factories
@functools.lru_cache(maxsize=None)
def _reductions():
    """Dtype-independent float64 reductions (shared by every loss)."""
    zero64 = np.float64(0.0)

    @cuda.jit(device=True, **_DEVICE_INLINE)
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
        acc = zero64
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
        acc = zero64
        for i in range(tid, count, REDUCE_BLOCK):
            acc += partials[i]
        buf[tid] = acc
        total = block_sum64(buf, tid)
        if tid == 0:
            loss = (coef * total) / divisor
            out[0] = loss
            if epoch_stats[1] < zero64:
                if math.isnan(loss) or math.isinf(loss):
                    epoch_stats[1] = step
                else:
                    epoch_stats[0] += loss * weight

    return block_sum64, sum_partials, sum_partials_accumulate


def _finish_loss(partials, count, coef, divisor, out, epoch_stats=None, step=0):
    if epoch_stats is None:
        _reductions()[1][1, REDUCE_BLOCK](partials, np.int64(count), np.float64(coef),
                                          np.float64(divisor), out)
    else:
        _reductions()[2][1, REDUCE_BLOCK](partials, np.int64(count), np.float64(coef),
                                          np.float64(divisor), out, epoch_stats,
                                          np.float64(divisor), np.float64(step))


@functools.lru_cache(maxsize=None)
def _elementwise(dtype):
    """Every non-matmul kernel for arrays of ``dtype``, as a dict name -> kernel."""
    DT = np.dtype(dtype).type
    zero = DT(0)
    one = DT(1)
    zero64 = np.float64(0.0)
    block_sum64 = _reductions()[0]
    S30, S27, S31 = np.uint64(30), np.uint64(27), np.uint64(31)
    ONE64U = np.uint64(1)

    @cuda.jit(device=True, **_DEVICE_INLINE)
    def sign(x):
        if x > zero:
            return one
        if x < zero:
            return -one
        return zero

    @cuda.jit(device=True, **_DEVICE_INLINE)
    def relu(x):
        return x if x > zero else zero

    @cuda.jit(device=True, **_DEVICE_INLINE)
    def keep_value(key, index, threshold, kept):
        # splitmix64 of the element counter, exactly as kernels.counter_rng.
        z = key + GOLDEN * (np.uint64(index) + ONE64U)
        z = (z ^ (z >> S30)) * MIX1
        z = (z ^ (z >> S27)) * MIX2
        z = z ^ (z >> S31)
        return kept if (z >> SHIFT_TOP24) < threshold else zero

    # ---- forward
    @cuda.jit
    def apply_mask_2d(X, mask, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = X[i, j] * mask[i, j]

    @cuda.jit
    def bias_add_2d(Z, b):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            Z[i, j] += b[j]

    @cuda.jit
    def bias_relu_2d(Z, b, H):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = relu(z)

    @cuda.jit
    def bias_relu_dropout_2d(Z, b, mask, H):
        j, i = cuda.grid(2)
        if i < Z.shape[0] and j < Z.shape[1]:
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = relu(z) * mask[i, j]

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

    @cuda.jit
    def softmax_xent_rows(logits, labels, probs, dlogits, partials):
        # Per row: probs, dlogits = (probs - onehot)/n and the row's log-likelihood
        # (float64, as the reference sums it); each block leaves its rows' sum in partials.
        tid = cuda.threadIdx.x
        i = cuda.blockIdx.x * REDUCE_BLOCK + tid
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = logits.shape[0]
        row_ll = zero64
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

    @cuda.jit
    def squared_error_2d(outputs, targets, doutputs, partials):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        n = outputs.shape[0]
        sq = zero64
        if i < n and j < outputs.shape[1]:
            d = outputs[i, j] - targets[i, j]
            d64 = np.float64(d)
            sq = d64 * d64
            doutputs[i, j] = d / DT(n)
        buf[tid] = sq
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    # ---- backward
    @cuda.jit
    def relu_backward_2d(dH, Z, dZ):
        j, i = cuda.grid(2)
        if i < dZ.shape[0] and j < dZ.shape[1]:
            dZ[i, j] = dH[i, j] if Z[i, j] > zero else zero

    @cuda.jit
    def relu_dropout_backward_2d(dH, Z, mask, dZ):
        j, i = cuda.grid(2)
        if i < dZ.shape[0] and j < dZ.shape[1]:
            g = dH[i, j] if Z[i, j] > zero else zero
            dZ[i, j] = g * mask[i, j]

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

    # ---- regularisation and updates; parameters are 1-D (biases) or 2-D (weights)
    @cuda.jit
    def reg_grad_1d(W, dW, l2, l1):
        i = cuda.grid(1)
        if i < W.shape[0]:
            w = W[i]
            dW[i] += l2 * w + l1 * sign(w)

    @cuda.jit
    def reg_grad_2d(W, dW, l2, l1):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            w = W[i, j]
            dW[i, j] += l2 * w + l1 * sign(w)

    @cuda.jit
    def reg_loss_1d(W, half_l2, l1, partials):
        tid = cuda.threadIdx.x
        i = cuda.blockIdx.x * REDUCE_BLOCK + tid
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        v = zero64
        if i < W.shape[0]:
            w = np.float64(W[i])
            v = half_l2 * (w * w) + l1 * abs(w)
        buf[tid] = v
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.x] = total

    @cuda.jit
    def reg_loss_2d(W, half_l2, l1, partials):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * EW_BX + tx
        j = cuda.blockIdx.x * EW_BX + tx
        i = cuda.blockIdx.y * EW_BY + ty
        buf = cuda.shared.array(REDUCE_BLOCK, np.float64)
        v = zero64
        if i < W.shape[0] and j < W.shape[1]:
            w = np.float64(W[i, j])
            v = half_l2 * (w * w) + l1 * abs(w)
        buf[tid] = v
        total = block_sum64(buf, tid)
        if tid == 0:
            partials[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x] = total

    # With clip (l1 > 0), a weight the step would carry across zero stops at exactly 0
    # (and its velocity resets), as in the reference: L1 then yields exact zeros.
    @cuda.jit(device=True, **_DEVICE_INLINE)
    def sgd_step(p, g, lr, l2, l1, clip):
        new = p - lr * (g + l2 * p + l1 * sign(p))
        return zero if clip and new * p < zero else new

    @cuda.jit
    def sgd_1d(P, dP, lr, l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i] = sgd_step(P[i], dP[i], lr, l2, l1, clip)

    @cuda.jit
    def sgd_2d(P, dP, lr, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j] = sgd_step(P[i, j], dP[i, j], lr, l2, l1, clip)

    @cuda.jit(device=True, **_DEVICE_INLINE)
    def momentum_step(p, g, v, lr, momentum, l2, l1, clip):
        # (new parameter, new velocity)
        v = momentum * v - lr * (g + l2 * p + l1 * sign(p))
        new = p + v
        if clip and new * p < zero:
            return zero, zero
        return new, v

    @cuda.jit
    def momentum_1d(P, dP, V, lr, momentum, l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i], V[i] = momentum_step(P[i], dP[i], V[i], lr, momentum, l2, l1, clip)

    @cuda.jit
    def momentum_2d(P, dP, V, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j], V[i, j] = momentum_step(P[i, j], dP[i, j], V[i, j], lr, momentum, l2, l1, clip)

    # ---- a whole layer's update in one launch: thread (i, j) steps W[i, j], and the
    # threads of column 0 step b[i] too (no regularisation on biases, as the reference)
    @cuda.jit
    def layer_sgd_2d(W, dW, b, db, lr, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j] = sgd_step(W[i, j], dW[i, j], lr, l2, l1, clip)
            if j == 0:
                b[i] = sgd_step(b[i], db[i], lr, zero, zero, False)

    @cuda.jit
    def layer_momentum_2d(W, dW, VW, b, db, Vb, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            W[i, j], VW[i, j] = momentum_step(W[i, j], dW[i, j], VW[i, j], lr, momentum, l2, l1, clip)
            if j == 0:
                b[i], Vb[i] = momentum_step(b[i], db[i], Vb[i], lr, momentum, zero, zero, False)

    # ---- a minibatch gathered on the device from the resident data and its order
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

    # ---- dropout masks: element index in C order, whatever the rank
    @cuda.jit
    def mask_1d(key, threshold, kept, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = keep_value(key, i, threshold, kept)

    @cuda.jit
    def mask_2d(key, threshold, kept, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            out[i, j] = keep_value(key, i * out.shape[1] + j, threshold, kept)

    return {name: fn for name, fn in locals().items() if hasattr(fn, "py_func")}


def _ew(dtype):
    return _elementwise(np.dtype(dtype))


# ---------------------------------------------------------------- matmul kernels
# Orientation: out (M, N) = L R, where L (M, K) is A or A^T and R (K, N) is B^T or B.
_ORIENT = {"nt": (False, True), "tn": (True, False), "nn": (False, False)}


@functools.lru_cache(maxsize=None)
def _naive_kernel(dtype, trans_a, trans_b):
    zero = np.dtype(dtype).type(0)

    @cuda.jit
    def matmul_naive(A, B, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            K = A.shape[0] if trans_a else A.shape[1]
            acc = zero
            for p in range(K):
                a = A[p, i] if trans_a else A[i, p]
                b = B[j, p] if trans_b else B[p, j]
                acc += a * b
            out[i, j] = acc

    return matmul_naive


@functools.lru_cache(maxsize=None)
def _tiled_kernel(dtype, trans_a, trans_b):
    DT = np.dtype(dtype).type
    zero = DT(0)
    TILE_PAD = TILE + 1  # shared-array shapes must be compile-time constants, not expressions

    @cuda.jit
    def matmul_tiled(A, B, out):
        # Ls[i, p] = L[row0 + i, k0 + p], Rs[p, j] = R[k0 + p, col0 + j]. Each operand is
        # read along its contiguous axis by consecutive tx; the +1 column of padding
        # keeps the transposed shared-memory writes free of bank conflicts.
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row0 = cuda.blockIdx.y * TILE
        col0 = cuda.blockIdx.x * TILE
        M = out.shape[0]
        N = out.shape[1]
        K = A.shape[0] if trans_a else A.shape[1]
        Ls = cuda.shared.array((TILE, TILE_PAD), DT)
        Rs = cuda.shared.array((TILE, TILE_PAD), DT)
        acc = zero
        for k0 in range(0, K, TILE):
            if trans_a:   # A (K, M)
                r = k0 + ty
                c = row0 + tx
                Ls[tx, ty] = A[r, c] if r < K and c < M else zero
            else:         # A (M, K)
                r = row0 + ty
                c = k0 + tx
                Ls[ty, tx] = A[r, c] if r < M and c < K else zero
            if trans_b:   # B (N, K)
                r = col0 + ty
                c = k0 + tx
                Rs[tx, ty] = B[r, c] if r < N and c < K else zero
            else:         # B (K, N)
                r = k0 + ty
                c = col0 + tx
                Rs[ty, tx] = B[r, c] if r < K and c < N else zero
            cuda.syncthreads()
            for p in range(TILE):
                acc += Ls[ty, p] * Rs[p, tx]
            cuda.syncthreads()
        i = row0 + ty
        j = col0 + tx
        if i < M and j < N:
            out[i, j] = acc

    return matmul_tiled


# Epilogues of the register-blocked product: what each output element becomes.
_EPILOGUES = ("store", "bias", "bias_relu", "bias_relu_dropout", "relu_bwd", "relu_dropout_bwd")


@functools.lru_cache(maxsize=None)
def _blocked_kernel(dtype, trans_a, trans_b, cfg, epilogue):
    DT = np.dtype(dtype).type
    zero = DT(0)
    TY, TX, TM, TN, BK = cfg
    BM, BN = cfg.bm, cfg.bn
    BM_PAD, BN_PAD = BM + 1, BN + 1  # shared-array shapes must be constants, not expressions
    NT = TY * TX
    A_TILE = BM * BK
    B_TILE = BN * BK
    LOADS_A = _cdiv(A_TILE, NT)
    LOADS_B = _cdiv(B_TILE, NT)

    @cuda.jit(device=True, **_DEVICE_INLINE)
    def mainloop(A, B, acc, M, N):
        """acc[a, b] = sum_p L[row0 + ty + TY*a, p] R[p, col0 + tx + TX*b]."""
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BN
        K = A.shape[0] if trans_a else A.shape[1]
        # Stored k-major (Ls[p, i]) so the inner product reads rows of both tiles;
        # +1 padding avoids bank conflicts when a load writes along p.
        Ls = cuda.shared.array((BK, BM_PAD), DT)
        Rs = cuda.shared.array((BK, BN_PAD), DT)
        ra = cuda.local.array(TM, DT)
        rb = cuda.local.array(TN, DT)
        for a in range(TM):
            for b in range(TN):
                acc[a, b] = zero
        for k0 in range(0, K, BK):
            for e in range(LOADS_A):
                idx = tid + e * NT
                if idx < A_TILE:
                    if trans_a:   # A (K, M): consecutive threads walk i, A's contiguous axis
                        i = idx % BM
                        p = idx // BM
                        gi = row0 + i
                        gp = k0 + p
                        Ls[p, i] = A[gp, gi] if gi < M and gp < K else zero
                    else:         # A (M, K): consecutive threads walk p
                        p = idx % BK
                        i = idx // BK
                        gi = row0 + i
                        gp = k0 + p
                        Ls[p, i] = A[gi, gp] if gi < M and gp < K else zero
            for e in range(LOADS_B):
                idx = tid + e * NT
                if idx < B_TILE:
                    if trans_b:   # B (N, K): consecutive threads walk p
                        p = idx % BK
                        j = idx // BK
                        gj = col0 + j
                        gp = k0 + p
                        Rs[p, j] = B[gj, gp] if gj < N and gp < K else zero
                    else:         # B (K, N): consecutive threads walk j
                        j = idx % BN
                        p = idx // BN
                        gj = col0 + j
                        gp = k0 + p
                        Rs[p, j] = B[gp, gj] if gj < N and gp < K else zero
            cuda.syncthreads()
            for p in range(BK):
                for a in range(TM):
                    ra[a] = Ls[p, ty + TY * a]
                for b in range(TN):
                    rb[b] = Rs[p, tx + TX * b]
                for a in range(TM):
                    for b in range(TN):
                        acc[a, b] += ra[a] * rb[b]
            cuda.syncthreads()

    # Each epilogue is its own kernel (its own arguments); all share the main loop.
    if epilogue == "store":
        @cuda.jit
        def matmul_blocked(A, B, out):
            M = out.shape[0]
            N = out.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        out[i, j] = acc[a, b]
        kernel = matmul_blocked
    elif epilogue == "bias":
        @cuda.jit
        def matmul_bias(A, B, bias, Z):
            M = Z.shape[0]
            N = Z.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        Z[i, j] = acc[a, b] + bias[j]
        kernel = matmul_bias
    elif epilogue == "bias_relu":
        @cuda.jit
        def matmul_bias_relu(A, B, bias, Z, H):
            M = Z.shape[0]
            N = Z.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        z = acc[a, b] + bias[j]
                        Z[i, j] = z
                        H[i, j] = z if z > zero else zero
        kernel = matmul_bias_relu
    elif epilogue == "bias_relu_dropout":
        @cuda.jit
        def matmul_bias_relu_dropout(A, B, bias, mask, Z, H):
            M = Z.shape[0]
            N = Z.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        z = acc[a, b] + bias[j]
                        Z[i, j] = z
                        H[i, j] = (z if z > zero else zero) * mask[i, j]
        kernel = matmul_bias_relu_dropout
    elif epilogue == "relu_bwd":
        @cuda.jit
        def matmul_relu_backward(A, B, Z, dZ):
            M = dZ.shape[0]
            N = dZ.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        dZ[i, j] = acc[a, b] if Z[i, j] > zero else zero
        kernel = matmul_relu_backward
    elif epilogue == "relu_dropout_bwd":
        @cuda.jit
        def matmul_relu_dropout_backward(A, B, Z, mask, dZ):
            M = dZ.shape[0]
            N = dZ.shape[1]
            acc = cuda.local.array((TM, TN), DT)
            mainloop(A, B, acc, M, N)
            for a in range(TM):
                i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
                for b in range(TN):
                    j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                    if i < M and j < N:
                        g = acc[a, b] if Z[i, j] > zero else zero
                        dZ[i, j] = g * mask[i, j]
        kernel = matmul_relu_dropout_backward
    else:
        raise ValueError(f"unknown epilogue {epilogue!r}; expected one of {_EPILOGUES}")
    return kernel


def _check_matmul(A, B, out, orient):
    trans_a, trans_b = _ORIENT[orient]
    m, k = (A.shape[1], A.shape[0]) if trans_a else (A.shape[0], A.shape[1])
    kb, n = (B.shape[1], B.shape[0]) if trans_b else (B.shape[0], B.shape[1])
    # Out-of-range reads on a GPU are silent, so shapes are checked on the host.
    if k != kb or tuple(out.shape) != (m, n):
        raise ValueError(f"matmul_{orient}: shapes A {tuple(A.shape)}, B {tuple(B.shape)}, "
                         f"out {tuple(out.shape)} do not agree")
    if A.dtype != out.dtype or B.dtype != out.dtype:
        raise TypeError(f"matmul_{orient}: dtypes differ ({A.dtype}, {B.dtype}, out {out.dtype})")
    return m, n


def _matmul_blocked(A, B, out, orient, cfg=None):
    m, n = _check_matmul(A, B, out, orient)
    if m == 0 or n == 0:
        return
    cfg = cfg or _matmul_config(m, n)
    kern = _blocked_kernel(out.dtype, *_ORIENT[orient], cfg, "store")
    kern[(_cdiv(n, cfg.bn), _cdiv(m, cfg.bm)), (cfg.tx, cfg.ty)](A, B, out)


def _matmul_tiled(A, B, out, orient):
    m, n = _check_matmul(A, B, out, orient)
    if m == 0 or n == 0:
        return
    kern = _tiled_kernel(out.dtype, *_ORIENT[orient])
    kern[_grid_2d(m, n, (TILE, TILE)), (TILE, TILE)](A, B, out)


def _matmul_naive(A, B, out, orient):
    m, n = _check_matmul(A, B, out, orient)
    if m == 0 or n == 0:
        return
    kern = _naive_kernel(out.dtype, *_ORIENT[orient])
    kern[_grid_2d(m, n, NAIVE_BLOCK), NAIVE_BLOCK](A, B, out)


# ---------------------------------------------------------------- matrix products
def matmul_nt(A, B, out):
    """out = A B^T.  A (n, k), B (m, k), out (n, m): the forward product X W^T."""
    _matmul_blocked(A, B, out, "nt")


def matmul_tn(A, B, out):
    """out = A^T B.  A (n, m), B (n, k), out (m, k): the weight gradient delta^T H."""
    _matmul_blocked(A, B, out, "tn")


def matmul_nn(A, B, out):
    """out = A B.  A (n, m), B (m, k), out (n, k): back-propagating delta W."""
    _matmul_blocked(A, B, out, "nn")


def matmul_nt_naive(A, B, out):
    """``matmul_nt`` with one thread per output element and no shared memory."""
    _matmul_naive(A, B, out, "nt")


def matmul_tn_naive(A, B, out):
    """``matmul_tn`` with one thread per output element and no shared memory."""
    _matmul_naive(A, B, out, "tn")


def matmul_nn_naive(A, B, out):
    """``matmul_nn`` with one thread per output element and no shared memory."""
    _matmul_naive(A, B, out, "nn")


def matmul_nt_tiled(A, B, out):
    """``matmul_nt`` with 16x16 shared-memory tiles, one output element per thread."""
    _matmul_tiled(A, B, out, "nt")


def matmul_tn_tiled(A, B, out):
    """``matmul_tn`` with 16x16 shared-memory tiles, one output element per thread."""
    _matmul_tiled(A, B, out, "tn")


def matmul_nn_tiled(A, B, out):
    """``matmul_nn`` with 16x16 shared-memory tiles, one output element per thread."""
    _matmul_tiled(A, B, out, "nn")


# Alternative implementations beside the standard set, each mapped to the standard
# kernel it must agree with. Tests and benchmarks walk it.
ALTERNATIVES = {
    "matmul_nt_naive": "matmul_nt",
    "matmul_tn_naive": "matmul_tn",
    "matmul_nn_naive": "matmul_nn",
    "matmul_nt_tiled": "matmul_nt",
    "matmul_tn_tiled": "matmul_tn",
    "matmul_nn_tiled": "matmul_nn",
}


# ---------------------------------------------------------------- fused layer kernels
def _fused(A, B, orient, epilogue, out, *extra):
    m, n = _check_matmul(A, B, out, orient)
    if m == 0 or n == 0:
        return
    cfg = _matmul_config(m, n)
    kern = _blocked_kernel(out.dtype, *_ORIENT[orient], cfg, epilogue)
    kern[(_cdiv(n, cfg.bn), _cdiv(m, cfg.bm)), (cfg.tx, cfg.ty)](A, B, *extra)


def linear_forward(X, W, b, Z):
    """Z = X W^T + b in one kernel: ``matmul_nt`` then ``bias_add``.  X (n, k), W (m, k), b (m,), Z (n, m)."""
    _fused(X, W, "nt", "bias", Z, b, Z)


def linear_relu_forward(X, W, b, Z, H):
    """Z = X W^T + b, H = relu(Z) in one kernel: ``matmul_nt`` then ``bias_relu_forward``."""
    _fused(X, W, "nt", "bias_relu", Z, b, Z, H)


def linear_relu_dropout_forward(X, W, b, mask, Z, H):
    """Z = X W^T + b, H = relu(Z) * mask in one kernel: ``matmul_nt`` then ``bias_relu_dropout_forward``."""
    _fused(X, W, "nt", "bias_relu_dropout", Z, b, mask, Z, H)


def linear_relu_backward(dZ_next, W, Z, dZ):
    """dZ = (dZ_next W) * relu'(Z) in one kernel: ``matmul_nn`` then ``relu_backward``.

    dZ_next (n, m) the next layer's delta, W (m, k) its weights, Z, dZ (n, k).
    """
    _fused(dZ_next, W, "nn", "relu_bwd", dZ, Z, dZ)


def linear_relu_dropout_backward(dZ_next, W, Z, mask, dZ):
    """dZ = (dZ_next W) * relu'(Z) * mask in one kernel: ``matmul_nn`` then ``relu_dropout_backward``."""
    _fused(dZ_next, W, "nn", "relu_dropout_bwd", dZ, Z, mask, dZ)


# Fused kernels beside the standard set, each mapped to the standard kernels it
# replaces, in order (same arguments, merged): tests check them against that chain.
FUSED = {
    "linear_forward": ("matmul_nt", "bias_add"),
    "linear_relu_forward": ("matmul_nt", "bias_relu_forward"),
    "linear_relu_dropout_forward": ("matmul_nt", "bias_relu_dropout_forward"),
    "linear_relu_backward": ("matmul_nn", "relu_backward"),
    "linear_relu_dropout_backward": ("matmul_nn", "relu_dropout_backward"),
}


# ---------------------------------------------------------------- forward
def _launch_2d(kern, out, *args):
    rows, cols = out.shape
    if rows and cols:
        kern[_grid_2d(rows, cols), EW_BLOCK_2D](*args)


def apply_mask(X, mask, out):
    """out = X * mask: dropout on the input layer.  X, mask, out (n, d)."""
    _launch_2d(_ew(out.dtype)["apply_mask_2d"], out, X, mask, out)


def bias_add(Z, b):
    """Z += b in place: the output layer's pre-activation.  Z (n, d), b (d,)."""
    _launch_2d(_ew(Z.dtype)["bias_add_2d"], Z, Z, b)


def bias_relu_forward(Z, b, H):
    """Z += b in place, H = relu(Z).  Z, H (n, d), b (d,)."""
    _launch_2d(_ew(Z.dtype)["bias_relu_2d"], Z, Z, b, H)


def bias_relu_dropout_forward(Z, b, mask, H):
    """Z += b in place, H = relu(Z) * mask.  Z, mask, H (n, d), b (d,)."""
    _launch_2d(_ew(Z.dtype)["bias_relu_dropout_2d"], Z, Z, b, mask, H)


def softmax(logits, probs):
    """probs = softmax of each row of logits, shifted by the row max for stability.  (n, k)."""
    n, k = logits.shape
    if n and k:
        _ew(probs.dtype)["softmax_rows"][_grid_1d(n, ROWS_BLOCK), ROWS_BLOCK](logits, probs)


def softmax_cross_entropy(logits, labels, probs, dlogits, loss_out):
    """Softmax, mean cross-entropy and its gradient with respect to the logits, fused.

    logits, probs, dlogits (n, k); labels (n,) integers in [0, k) (a device array);
    loss_out (1,) float64 device array.
    loss_out[0] = -(1/n) sum_i log probs[i, labels[i]];  dlogits = (probs - onehot(labels)) / n.
    The loss is reduced on the device (per-block float64 partials, then one block).
    """
    n = logits.shape[0]
    blocks = _grid_1d(n, REDUCE_BLOCK)
    partials = _partials_buffer(blocks)
    _ew(probs.dtype)["softmax_xent_rows"][blocks, REDUCE_BLOCK](logits, labels, probs, dlogits, partials)
    _finish_loss(partials, blocks, -1.0, n, loss_out)


def squared_error(outputs, targets, doutputs, loss_out):
    """Squared error of an identity output layer and its gradient, fused.

    outputs, targets, doutputs (n, k); loss_out (1,) float64 device array.
    loss_out[0] = (1/2n) sum ||y_hat - y||^2;  doutputs = (y_hat - y) / n.
    """
    n, k = outputs.shape
    grid = _grid_2d(n, k)
    blocks = grid[0] * grid[1]
    partials = _partials_buffer(blocks)
    _ew(doutputs.dtype)["squared_error_2d"][grid, EW_BLOCK_2D](outputs, targets, doutputs, partials)
    _finish_loss(partials, blocks, 0.5, n, loss_out)


# ---------------------------------------------------------------- backward
def relu_backward(dH, Z, dZ):
    """dZ = dH * relu'(Z) with relu'(0) = 0 exactly.  (n, d)."""
    _launch_2d(_ew(dZ.dtype)["relu_backward_2d"], dZ, dH, Z, dZ)


def relu_dropout_backward(dH, Z, mask, dZ):
    """dZ = dH * relu'(Z) * mask, for the kept neurons.  (n, d)."""
    _launch_2d(_ew(dZ.dtype)["relu_dropout_backward_2d"], dZ, dH, Z, mask, dZ)


def bias_grad(dZ, db):
    """db = sum of dZ over the minibatch rows.  dZ (n, d), db (d,)."""
    d = dZ.shape[1]
    if d:
        _ew(db.dtype)["bias_grad_cols"][_cdiv(d, EW_BX), EW_BLOCK_2D](dZ, db)


# ---------------------------------------------------------------- regularisation and update
def _launch_param(name, P, *args):
    """Launch the 1-D or 2-D version of a parameter kernel, by the rank of ``P``."""
    kernels = _ew(P.dtype)
    if P.ndim == 1:
        if P.shape[0]:
            kernels[name + "_1d"][_grid_1d(P.shape[0]), EW_BLOCK_1D](*args)
    elif P.ndim == 2:
        _launch_2d(kernels[name + "_2d"], P, *args)
    else:
        raise ValueError(f"parameters must be 1-D or 2-D; got shape {tuple(P.shape)}")


def add_regularization_grad(W, dW, l2, l1):
    """dW += l2 * W + l1 * sign(W): the gradient of (l2/2)||W||_F^2 + l1 |W|.  W, dW (m, k) or (m,)."""
    t = W.dtype.type
    _launch_param("reg_grad", W, W, dW, t(l2), t(l1))


def regularization_loss(W, l2, l1):
    """(l2/2) ||W||_F^2 + l1 sum|W| as a Python float (accumulated in float64; waits for the GPU)."""
    out = _scalar_buffer()
    if W.size == 0:
        return 0.0
    if W.ndim == 1:
        blocks = _grid_1d(W.shape[0], REDUCE_BLOCK)
        partials = _partials_buffer(blocks)
        _ew(W.dtype)["reg_loss_1d"][blocks, REDUCE_BLOCK](
            W, np.float64(0.5 * l2), np.float64(l1), partials)
    elif W.ndim == 2:
        grid = _grid_2d(*W.shape)
        blocks = grid[0] * grid[1]
        partials = _partials_buffer(blocks)
        _ew(W.dtype)["reg_loss_2d"][grid, EW_BLOCK_2D](
            W, np.float64(0.5 * l2), np.float64(l1), partials)
    else:
        raise ValueError(f"W must be 1-D or 2-D; got shape {tuple(W.shape)}")
    _finish_loss(partials, blocks, 1.0, 1.0, out)
    return float(to_host(out)[0])


def sgd_update(P, dP, lr, l2, l1):
    """P -= lr * (dP + l2 * P + l1 * sign(P)) in place, the L1 step clipped at zero.

    With l1 > 0 a weight that the step would carry across zero stops at exactly 0
    (see the reference). Biases pass l2 = l1 = 0.  P, dP (m, k) or (m,).
    """
    t = P.dtype.type
    _launch_param("sgd", P, P, dP, t(lr), t(l2), t(l1), bool(l1 > 0))


def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
    """V = momentum * V - lr * (dP + l2 * P + l1 * sign(P));  P += V, in place.

    With l1 > 0, a weight the step carries across zero stops at exactly 0 and its
    velocity is reset to 0.  P, dP, V (m, k) or (m,).
    """
    t = P.dtype.type
    _launch_param("momentum", P, P, dP, V, t(lr), t(momentum), t(l2), t(l1), bool(l1 > 0))


# ---------------------------------------------------------------- dropout masks
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
    kernels = _ew(out.dtype)
    if out.ndim == 2:
        kernels["mask_2d"][_grid_2d(*out.shape), EW_BLOCK_2D](key, threshold, kept, out)
    else:
        flat = out if out.ndim == 1 else out.reshape(out.size)
        kernels["mask_1d"][_grid_1d(flat.shape[0]), EW_BLOCK_1D](key, threshold, kept, flat)


# ---------------------------------------------------------------- training-loop kernels
# Beside the standard set (not in ``kernels.KERNELS``, no host counterpart): what
# ``mlp.epoch_cuda`` needs so that a training step never leaves the GPU. Each is
# checked against the standard kernels it merges (tests/test_cuda_training.py).
TRAINING = {
    "gather_minibatch": ("dropout_mask", "apply_mask"),
    "softmax_cross_entropy_accumulate": ("softmax_cross_entropy",),
    "squared_error_accumulate": ("squared_error",),
    "layer_sgd_update": ("sgd_update", "sgd_update"),
    "layer_sgd_momentum_update": ("sgd_momentum_update", "sgd_momentum_update"),
}

_no_labels = {}


def _dummy_labels():
    buf = _no_labels.get("labels")
    if buf is None:
        buf = _no_labels["labels"] = cuda.device_array(1, dtype=np.int64)
    return buf


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
        labels = labels_out = _dummy_labels()
    _ew(out.dtype)["gather_minibatch_2d"][_grid_2d(rows, d), EW_BLOCK_2D](
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
    n = logits.shape[0]
    blocks = _grid_1d(n, REDUCE_BLOCK)
    partials = _partials_buffer(blocks)
    _ew(probs.dtype)["softmax_xent_rows"][blocks, REDUCE_BLOCK](logits, labels, probs, dlogits, partials)
    _finish_loss(partials, blocks, -1.0, n, loss_out, epoch_stats, step)


def squared_error_accumulate(outputs, targets, doutputs, loss_out, epoch_stats, step):
    """``squared_error``, then the epoch's loss bookkeeping (see ``softmax_cross_entropy_accumulate``)."""
    n, k = outputs.shape
    grid = _grid_2d(n, k)
    blocks = grid[0] * grid[1]
    partials = _partials_buffer(blocks)
    _ew(doutputs.dtype)["squared_error_2d"][grid, EW_BLOCK_2D](outputs, targets, doutputs, partials)
    _finish_loss(partials, blocks, 0.5, n, loss_out, epoch_stats, step)


def layer_sgd_update(W, dW, b, db, lr, l2, l1):
    """``sgd_update(W, dW, lr, l2, l1)`` and ``sgd_update(b, db, lr, 0, 0)`` in one launch.

    W, dW (m, k); b, db (m,).
    """
    t = W.dtype.type
    _launch_2d(_ew(W.dtype)["layer_sgd_2d"], W, W, dW, b, db, t(lr), t(l2), t(l1), bool(l1 > 0))


def layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_momentum_update`` of W (with l2, l1) and of b (without) in one launch.

    W, dW, VW (m, k); b, db, Vb (m,).
    """
    t = W.dtype.type
    _launch_2d(_ew(W.dtype)["layer_momentum_2d"], W, W, dW, VW, b, db, Vb, t(lr), t(momentum),
               t(l2), t(l1), bool(l1 > 0))
